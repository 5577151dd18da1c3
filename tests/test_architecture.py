"""The package's shape (scripts/architecture.py): stages import only earlier stages, no module over 300 lines.

The check itself is tested on a copy of the package with planted faults: an upward import at
module level, one inside a function, a relative one, a module import through `from mawt.<stage>
import <module>`, a long module, and a module outside any stage folder.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import architecture  # noqa: E402  (scripts/architecture.py)


def test_the_package_has_no_upward_import_and_no_long_module():
    assert architecture.violations() == []
    # every stage folder exists, so a renamed stage cannot silently drop out of the check
    assert sorted(p.name for p in architecture.PACKAGE.iterdir() if (p / "__init__.py").exists()) == sorted(
        architecture.STAGES)


def test_the_check_finds_planted_upward_imports_long_modules_and_strays(tmp_path):
    pkg = tmp_path / "mawt"
    shutil.copytree(architecture.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "layer" / "upward.py").write_text(
        "from mawt.training.runconfig import TrainConfig\n"
        "def f():\n"
        "    from mawt.analysis import report\n"
        "    from ..studies.study import load_setup\n"
        "    import mawt.evaluation.worth\n"
        "from mawt.common import atomic\n"  # earlier stage: allowed
        "from . import config\n"  # same stage: allowed
    )
    (pkg / "data" / "long.py").write_text("x = 1\n" * 301)
    (pkg / "stray.py").write_text("")
    (pkg / "common" / "nested").mkdir()
    (pkg / "common" / "nested" / "__init__.py").write_text("from mawt.layer import patching\n")
    found = architecture.violations(pkg)
    upward = [v for v in found if v.startswith("mawt/layer/upward.py")]
    assert [v.split(":")[1] for v in upward] == ["1", "3", "4", "5"], found
    assert "of the later stage 'training'" in upward[0] and "'analysis'" in upward[1]
    assert "mawt.studies.study" in upward[2] and "mawt.evaluation.worth" in upward[3]
    assert "mawt/data/long.py: 301 lines (at most 300)" in found
    assert any(v.startswith("mawt/common/nested/__init__.py:1:") for v in found), found
    assert "mawt/stray.py: not in a stage folder" in " ".join(found)


def test_the_script_exits_non_zero_on_a_violation_and_zero_on_the_package():
    ok = subprocess.run([sys.executable, str(ROOT / "scripts" / "architecture.py")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    assert "0 violation(s)" in ok.stderr


def test_the_check_finds_planted_import_cycles_lazy_ones_included(tmp_path):
    pkg = tmp_path / "mawt"
    shutil.copytree(architecture.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    assert architecture.cycles(pkg) == []
    # the cycle issue 32 cut, planted back as it was: a lazy import inside a method
    runconfig = pkg / "training" / "runconfig.py"
    runconfig.write_text(runconfig.read_text() + "\n\ndef _lazy():\n    from mawt.training.preflight import Shape\n")
    # and a cycle of three through a name imported from a package (`from mawt.data import pong`)
    (pkg / "data" / "ping.py").write_text("from mawt.data import pong\n")
    (pkg / "data" / "pong.py").write_text("def f():\n    import mawt.data.pang\n")
    (pkg / "data" / "pang.py").write_text("from .ping import nothing\n")
    found = architecture.violations(pkg)
    assert [v for v in found if v.startswith("import cycle")] == [
        "import cycle: mawt.data.pang -> mawt.data.ping -> mawt.data.pong -> mawt.data.pang",
        "import cycle: mawt.training.preflight -> mawt.training.runconfig -> mawt.training.preflight"], found
