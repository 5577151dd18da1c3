#!/usr/bin/env bash
# docs/report.png: the top of a finished run's report in headless Chromium, 1400 px wide.
#   bash scripts/report_png.sh results/report.html docs/report.png
set -euo pipefail
report=$(realpath "${1:-results/report.html}")
out=$(realpath -m "${2:-docs/report.png}")
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome) \
    || { echo "report_png: no chromium on PATH (apt-get install chromium)" >&2; exit 2; }
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1800 \
    --screenshot="$out" "file://$report" >/dev/null 2>&1
echo "wrote $out from $report"
