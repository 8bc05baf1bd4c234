"""The documentation's code runs, and prints what the documentation says it prints.

Every ```python block of each file in ``DOCS`` is executed in order, in one
namespace per file (a block may use what an earlier block defined).  A block
whose fence reads ```python no-run is skipped.  When a ```text block follows a
python block (blank lines between them allowed), it is the block's expected
standard output: text must match exactly (whitespace aside) and numbers to
the precision they are printed with.  A block that prints something without a
text block after it fails, so every output shown is checked.

To change a documented example: edit it, run it, and paste its output into the
text block below it.
"""

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from markdown import fenced_blocks, numbers_agree

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
DOCS = ["tutorial.md", "method.md", "api.md"]

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
TOKEN = re.compile(NUMBER.pattern + r"|[^\s\d.+-]+|[.+-]")

# numpy's defaults, so that no other test's print settings leak into the comparison
NUMPY_PRINT_DEFAULTS = dict(precision=8, threshold=1000, edgeitems=3, linewidth=75,
                            suppress=False, nanstr="nan", infstr="inf", sign="-",
                            floatmode="maxprec")


def code_blocks(path):
    """``[(line, source, expected_output or None)]`` for every runnable python block."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks = fenced_blocks(path)
    runnable = []
    for n, (words, line, body, end) in enumerate(blocks):
        if not words or words[0] != "python" or "no-run" in words[1:]:
            continue
        expected = None
        if n + 1 < len(blocks) and blocks[n + 1][0] == ["text"]:
            between = lines[end - 1:blocks[n + 1][1] - 1]
            if all(not text.strip() for text in between):
                expected = "\n".join(blocks[n + 1][2])
        runnable.append((line, "\n".join(body), expected))
    return runnable


def same_output(expected, actual):
    """Compare printed output token by token: words exactly, numbers to their printed precision."""
    want, got = TOKEN.findall(expected), TOKEN.findall(actual)
    if len(want) != len(got):
        return False
    for w, g in zip(want, got):
        if NUMBER.fullmatch(w) and NUMBER.fullmatch(g):
            if not numbers_agree(w, g):
                return False
        elif w != g:
            return False
    return True


def test_output_comparison():
    assert same_output("[ 1.  0.5]\nx 3.21065", "[1.  0.5 ]\nx   3.21066")
    assert not same_output("3.21065", "3.21068")
    assert not same_output("True", "False")
    assert not same_output("(32, 4)", "(32, 5)") and not same_output("[ 8. 12.]", "[ 8. 13.]")
    assert same_output("1.5e-03", "1.6e-03") and not same_output("1.5e-03", "1.7e-03")


@pytest.mark.parametrize("name", DOCS)
def test_doc_code_runs_and_prints_what_it_shows(name, tmp_path, monkeypatch):
    path = DOCS_DIR / name
    if not path.exists():
        pytest.skip(f"docs/{name} does not exist")
    blocks = code_blocks(path)
    monkeypatch.chdir(tmp_path)        # files a snippet writes land in a temporary folder
    namespace = {"__name__": f"docs_{path.stem}"}
    with np.printoptions(**NUMPY_PRINT_DEFAULTS):
        for line, source, expected in blocks:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                try:
                    exec(compile(source, f"docs/{name}:{line + 1}", "exec"), namespace)
                except Exception as err:
                    pytest.fail(f"docs/{name}, block at line {line}: {type(err).__name__}: {err}")
            printed = out.getvalue().rstrip("\n")
            if expected is None:
                assert not printed, (f"docs/{name}, block at line {line} prints output that the "
                                     f"docs do not show:\n{printed}")
            else:
                assert same_output(expected, printed), (
                    f"docs/{name}, block at line {line}: the docs show\n{expected}\nbut it prints\n{printed}")
