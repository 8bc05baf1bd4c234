"""Fenced code blocks of a Markdown page, for the tests that run the docs."""

import math
import re

FENCE = re.compile(r"^```(.*)$")


def fenced_blocks(path):
    """``[(info words, opening line number, body lines, line number after the closing fence)]``.

    Line numbers are 1-based, as an editor shows them.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        blocks.append((match.group(1).split(), start + 1, lines[start + 1:i], i + 2))
        i += 1
    return blocks


def printed_tolerance(printed):
    """One unit in the last printed decimal place (a rounding flip); integers and
    numbers printed without decimals (``12``, numpy's ``12.``) must match exactly."""
    mantissa, _, exponent = printed.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    if decimals == 0 and not exponent:
        return 0.0
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(printed, actual):
    """``actual`` equals the number the page prints, to the digits it prints (and to
    1e-9 relative, for numbers printed at full precision)."""
    return math.isclose(float(printed), float(actual), rel_tol=1e-9,
                        abs_tol=1.01 * printed_tolerance(printed))
