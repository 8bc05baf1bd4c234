"""Progress bars for the long loops (training, precompute, validation)."""

import sys


def progress_bar(total, enabled, desc):
    """A tqdm bar on a terminal (or when asked), ``None`` otherwise.

    ``enabled`` is True, False, or None (a bar only when stderr is a terminal).
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, unit="step", leave=False)
