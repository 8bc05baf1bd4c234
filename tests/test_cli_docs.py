"""docs/cli.md shows what the ``taylorsketch`` command really prints.

Every ```console block of docs/cli.md is run, in the order of the page, in one
temporary working directory shared by all blocks (so a later block may use a
sketch an earlier one wrote).  In a console block:

* a line ``$ COMMAND`` is a command; the lines after it, up to the next ``$``
  line, are its output, with trailing blank lines dropped (a blank line
  separates one command from the next);
* ``$ taylorsketch ARGS`` is run in-process as
  ``taylorsketch.cli.main(shlex.split(line)[1:])`` with the terminal width set
  to 80 columns (``COLUMNS=80``, which ``--help`` output depends on); a
  ``SystemExit`` (``--help``, argparse errors) gives its exit status;
* any other command (only ``printf ... > FILE`` on the page, to create an
  input file) is run by ``sh`` in the same directory;
* the output shown is the command's standard output followed by its standard
  error; it must match exactly, line by line after stripping trailing
  whitespace;
* a command must either succeed (exit status 0, nothing on standard error) or
  be an error example (exit status 2, its message on standard error).

A block whose fence reads ```console no-run is not run (``reproduce`` runs,
which take minutes, and commands that need a Dask cluster); every such block is listed by ``test_skipped_blocks`` so
that skipping is visible.  Output blocks of other kinds (```text) are not
checked.

To change an example: edit the command, run it in a scratch folder after the
commands above it, and paste its output below it.
"""

import re
import shlex
import subprocess
from pathlib import Path

from markdown import fenced_blocks, numbers_agree

from taylorsketch.cli import main

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def console_blocks(path=PAGE):
    """``[(first line number, no_run, [(command, expected output)])]`` for every console block."""
    blocks = []
    for words, start, body, _ in fenced_blocks(path):
        if not words or words[0] != "console":
            continue
        unknown = set(words[1:]) - {"no-run"}
        assert not unknown, f"docs/cli.md:{start}: unknown console block option(s) {sorted(unknown)}"
        commands = []
        for n, line in enumerate(body):
            if line.startswith("$ "):
                commands.append([start + 1 + n, line[2:], []])
            else:
                assert commands, f"docs/cli.md:{start + 1 + n}: output before any '$ ' command line"
                commands[-1][2].append(line.rstrip())
        assert commands, f"docs/cli.md:{start}: a console block without commands"
        blocks.append((start, "no-run" in words[1:],
                       [(line, command, "\n".join(out).rstrip("\n")) for line, command, out in commands]))
    return blocks


def run_command(command, capsys):
    """``(exit status, stdout, stderr)`` of one command line, run in the current directory."""
    argv = shlex.split(command)
    if argv[0] != "taylorsketch":
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr
    capsys.readouterr()
    try:
        status = main(argv[1:])
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def shown(out, err):
    """What the page shows for a command: stdout, then stderr, trailing whitespace stripped."""
    return "\n".join(line.rstrip() for line in (out + err).split("\n")).rstrip("\n")


NUMBER = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")


def same_output(actual, expected):
    """Equal text, and numbers equal to the digits the page prints.

    Full-precision numbers may differ in their last bits on another CPU or BLAS
    (a different summation order), and a printed rounding may flip one unit of
    its last digit; anything more is a real change.
    """
    if NUMBER.split(actual) != NUMBER.split(expected):
        return False
    return all(numbers_agree(e, a) for a, e in zip(NUMBER.findall(actual), NUMBER.findall(expected)))


def test_same_output_tolerates_only_the_last_printed_digit():
    assert same_output("loss 3.381015 +- 0.065144", "loss 3.381015 +- 0.065144")
    assert same_output("loss 3.381016", "loss 3.381015")
    assert not same_output("loss 3.381025", "loss 3.381015")
    assert not same_output("loss 3.381015 (8 directions)", "loss 3.381015 (9 directions)")
    assert same_output("3.2275280087398831", "3.2275280087398825")
    assert not same_output("3.2275290087398825", "3.2275280087398825")


def test_the_page_has_runnable_examples():
    blocks = console_blocks()
    commands = [c for _, no_run, cmds in blocks if not no_run for _, c, _ in cmds]
    assert len(commands) >= 20
    assert any(c.endswith("--help") for c in commands)
    assert not any(shlex.split(c)[:2] == ["taylorsketch", "reproduce"] and "--help" not in c
                   for c in commands), "a reproduce run takes minutes: mark its block 'console no-run'"


def test_skipped_blocks():
    """The blocks not run, by their marker: only ``reproduce`` runs and commands that
    need a Dask cluster (``dask ...``, ``--scheduler``) may be skipped."""
    skipped = [(line, cmds) for line, no_run, cmds in console_blocks() if no_run]
    for line, cmds in skipped:
        for _, command, _ in cmds:
            words = shlex.split(command.rstrip("&"))
            assert words[:2] == ["taylorsketch", "reproduce"] or words[0] == "dask" or "--scheduler" in words, (
                f"docs/cli.md:{line}: a console no-run block may only hold reproduce runs and Dask "
                f"cluster commands; got {command!r}")


def test_console_examples_print_what_the_page_shows(tmp_path, monkeypatch, capsys):
    # an error example writes a sketch of the default (expensive) size into /nonexistent
    assert not Path("/nonexistent").exists(), "docs/cli.md's error examples need /nonexistent not to exist"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("LINES", raising=False)
    failures = []
    for _, no_run, commands in console_blocks():
        if no_run:
            continue
        for line, command, expected in commands:
            status, out, err = run_command(command, capsys)
            where = f"docs/cli.md:{line}: $ {command}"
            if err and status != 2 or not err and status != 0:
                failures.append(f"{where}\nexit status {status}, stderr:\n{err}")
            actual = shown(out, err)
            if not same_output(actual, expected):
                failures.append(f"{where}\nthe page shows:\n{expected}\nbut it prints:\n{actual}")
    assert not failures, "\n\n".join(failures)
