"""Helpers shared by the benchmark scripts in this folder.

Timing (median of repeated runs), formatting of times and sizes, memory (resident
set size), a description of the machine and its load, and writing one ``## ...``
section of a markdown report such as ``docs/performance.md``.  The scripts run as
``python benchmarks/bench_X.py``, which puts this folder on ``sys.path``, and
import from here with ``from _common import ...``.
"""

import os
import platform
import resource
import statistics
import sys
import tempfile
import time


# -- timing ------------------------------------------------------------------------------


def median_seconds(fn, min_runs=3, max_runs=7, min_total=1.0):
    """Median wall time of ``fn`` after one untimed warm-up call (which also loads the
    compiled kernels): at least ``min_runs`` runs, more (up to ``max_runs``) while the
    total is under ``min_total`` seconds.  ``min_runs == max_runs`` gives a fixed count."""
    fn()
    times = []
    while len(times) < min_runs or (len(times) < max_runs and sum(times) < min_total):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- formatting --------------------------------------------------------------------------


def format_seconds(value):
    """``219 us``, ``2.6 ms``, ``14.50 s``, ``541 s (9.0 min)``."""
    if value < 1e-3:
        return f"{value * 1e6:.0f} us"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    if value >= 120:
        return f"{value:.0f} s ({value / 60:.1f} min)"
    return f"{value:.2f} s"


def format_mib(value):
    """A number of bytes in whole MiB."""
    return f"{value / 2 ** 20:.0f} MiB"


# -- memory ------------------------------------------------------------------------------


def rss_bytes():
    """Current resident set size (Linux), or nan."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return float("nan")


def peak_rss_bytes(children=False):
    """Peak resident set size of this process so far (``children``: of its largest
    finished child process instead)."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss * 1024      # kB on Linux


# -- the machine -------------------------------------------------------------------------


def machine(numba_detail=None):
    """Cores, CPU model and the versions of Python, numpy and numba (with
    ``numba_detail``, e.g. the threading layer, in brackets after numba's)."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numba
    import numpy
    detail = f" ({numba_detail})" if numba_detail else ""
    return (f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
            f"Python {platform.python_version()}, numpy {numpy.__version__}, "
            f"numba {numba.__version__}{detail}")


def load_text(load_before, load_after, elapsed=None):
    """The sentence on the 1-minute load average around a run (and its duration)."""
    took = f"; the benchmark took {elapsed / 60:.1f} min." if elapsed is not None else "."
    return (f"Load average (1 min) {load_before:.2f} before and {load_after:.2f} after the run "
            f"(the machine is shared){took}")


# -- the report --------------------------------------------------------------------------


def write_section(path, text, heading):
    """Add or replace the section ``heading`` (a ``## ...`` line) of the markdown file
    ``path`` with ``text``, leaving the other sections alone.  A new section goes at the
    end; a missing file starts as ``# Performance``.  The file is replaced atomically."""
    lines = open(path).read().splitlines() if os.path.exists(path) else ["# Performance", ""]
    try:
        start = lines.index(heading)
    except ValueError:
        start = None
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *text.splitlines()]
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = text.splitlines() + ([""] if end < len(lines) else [])
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines).rstrip("\n") + "\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def publish(text, path, heading):
    """Print the report ``text`` and, if ``path`` is given, write it there as the section
    ``heading`` (see ``write_section``)."""
    print(text)
    if path:
        write_section(path, text, heading)
        print(f"written to {path}", file=sys.stderr)
