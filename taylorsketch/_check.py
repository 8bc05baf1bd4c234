"""Argument checks at the package's boundary, written once (tier 0).

Every public function checks what it is given before any work, with a
``TypeError`` (wrong kind of value) or a ``ValueError`` (right kind, wrong
range) whose message names the argument and the expected form.  The rules
are in docs/errors.md.
"""

import math
import numbers


def integer(value, name, low=None, high=None):
    """``value`` as an ``int`` in ``low..high`` (either bound optional).  Floats (even
    ``2.0``) are refused rather than truncated: a ``ValueError`` (a number, but not
    an integer), like a value out of range; a non-number or a bool is a ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        error = ValueError if isinstance(value, numbers.Real) and not isinstance(value, bool) else TypeError
        raise error(f"{name} must be an integer{_range(low, high)}; got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer{_range(low, high)}; got {value}")
    return value


def optional_integer(value, name, low=None, high=None):
    """``None`` or :func:`integer`."""
    return None if value is None else integer(value, name, low, high)


def real(value, name, low=None, high=None):
    """``value`` as a finite ``float`` in ``[low, high]`` (either bound optional)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{_range(low, high)}; got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be a finite number{_range(low, high)}; got {value!r}")
    return value


def choice(value, name, options):
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def documents(docs, name="docs"):
    """A list of the training documents; a single string (whose characters would
    silently become documents) or a non-iterable is a ``TypeError``."""
    if isinstance(docs, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of documents, not a single string")
    try:
        return list(docs)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of documents; got {type(docs).__name__}") from None


def _range(low, high):
    if low is not None and high is not None:
        return f" in {low}..{high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""
