"""Stage 8, analysis: a study's results, comparisons and verdicts, tables, plots, the HTML report.

A stage imports only earlier stages (tests/test_architecture.py)."""
