"""Every script in ``examples/`` runs, small, in a fresh interpreter.

To add a script: put it in ``examples/`` with a flag that makes it small, and
add a line to ``SMOKE_RUNS`` (arguments, and a regular expression that its
output must contain).  A script without a line fails here, so that no example
goes untested.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script name -> (command-line arguments for a small run, regex expected in stdout)
SMOKE_RUNS = {
    "check_first_order.py": (["--docs", "30", "--directions", "16", "--seeds", "5", "--workers", "1"],
                             r"max relative difference \d\.\de-1[0-9]"),
    "delete_names.py": (["--docs", "20", "--directions", "8"], r"loss on 'max' after training on all 20 names"),
    "interacting_names.py": (["--docs", "20", "--group", "3", "--check", "1"],
                             r"retrained: joint - sum of singles\n'\w+' \+ '\w+' +[-+]\d\.\d{5} +[-+]\d\.\d{5}"),
    "mlp_outliers.py": (["--points", "30", "--directions", "32"], r"predicted change\s+retrained change"),
    "taylor_basics.py": ([], r"direction 7 agrees with a separate run: True"),
    "train_microgpt.py": (["--steps", "20", "--docs", "50", "--samples", "3"],
                          r"loss on 'max': \d+\.\d+\nsamples:\n"),
}

SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script):
    if script not in SMOKE_RUNS:
        pytest.fail(f"examples/{script} has no smoke-test arguments: add it to SMOKE_RUNS in {__file__}")
    args, expected = SMOKE_RUNS[script]
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                            text=True, timeout=300, cwd=EXAMPLES.parent)
    assert result.returncode == 0, f"examples/{script} failed:\n{result.stderr[-3000:]}"
    assert re.search(expected, result.stdout), f"unexpected output of examples/{script}:\n{result.stdout}"


def test_smoke_table_lists_only_existing_scripts():
    assert sorted(set(SMOKE_RUNS) - set(SCRIPTS)) == []
