"""Progress of the long loops, counted in the unit the user thinks in.

The mechanism
-------------
A loop reports the work it has done to a *counter*: any object with
``add(k)``, called with ``k`` units each time some are finished.  The unit
of training is the **direction-step**: one training step along one
direction, so a step of jet training along ``M`` directions adds ``M``, and
a whole precomputation is ``steps x M`` of them (plain training counts
steps).  The loop neither knows nor cares whether anybody watches:

* :class:`Counter` only counts (``n``);
* :class:`Bar` is a counter that shows itself, with rate and time left
  (``tqdm.auto``: a widget in a notebook with ipywidgets, one updating line
  in a terminal or a notebook without), and prints one summary line
  (what, how much, how long, and where it was written) when closed;
* :class:`SharedCounter` is the counter of a worker process: it adds up
  locally and publishes into a ``multiprocessing.Value`` at most every
  ``interval`` seconds; the parent polls the value and adds what is new to
  its own bar.  No message per step, no pipe.

A long call takes ``progress=None`` and opens its work with :func:`task`::

    with task(progress, total=steps * M, label="jet training, order 3, 500 directions",
              unit="direction-step") as counter:
        for step in range(steps):
            ...
            counter.add(M)

``progress`` is ``True`` (a bar), ``False`` (silent), ``None`` (a bar when
stderr is a terminal or the code runs in a Jupyter kernel), or the counter
of an enclosing call: then the loop reports into that one, which its owner
closes (so a batch job, a worker or ``validate`` adds to one bar, and the
summary is printed once).  An enclosing :class:`Bar` made without a size is
sized by the first call that opens a task in it: the command line makes one,
lets ``precompute`` describe the work, and closes it with the file it wrote.

A batch loop plugs in the same way.  ``precomputation._run(train, jobs,
workers, counter)`` calls ``train(job, counter)`` for every job, in this
process or in spawned workers; ``train`` reports into whatever counter it
is given (``train_flat(..., progress=counter)`` does it step by step), and
in a worker that is a :class:`SharedCounter`.  A job whose batches do
different amounts of work (documents that start at different steps) sizes
its task with the sum over batches of ``(steps - start) x batch size`` and
adds the batch size after each step it trains: the bar then reaches 100 %
in the same unit.
"""

import contextlib
import sys
import time


def shown(progress):
    """Whether ``progress`` (True, False or None) asks for a visible bar."""
    if progress is None:
        return _on_terminal() or _in_jupyter()
    return bool(progress)


def _on_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):      # replaced or closed stderr
        return False


def _in_jupyter():
    """A Jupyter kernel: its stderr is no terminal, but it renders a bar (a widget or one line)."""
    return "ipykernel" in sys.modules


def format_duration(seconds):
    """``0.8 s``, ``12.3 s``, ``4 min 12 s``, ``1 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Counter:
    """Work done, in one unit: a loop calls ``add(k)``; ``n`` is the total so far."""

    def __init__(self):
        self.n = 0

    def add(self, k=1):
        self.n += k


class Bar(Counter):
    """One progress bar for one long call, and its summary line.

    ``show`` is True, False or None (see :func:`shown`); a hidden bar still
    counts.  ``prefix`` goes before the label (``reproduce`` puts the figure
    there).  The bar is drawn once :meth:`start` gives its size and label
    (directly, or through :func:`task`), and :meth:`close` removes it and
    prints the summary line on stderr, once, unless ``summary`` is False.
    """

    def __init__(self, show=None, prefix="", summary=True, total=None, label="", unit="step"):
        super().__init__()
        self.show = shown(show)
        self.prefix = prefix
        self.summary = summary
        self.total = self.label = self.unit = None
        self._bar = None
        self._start = None
        self._closed = False
        if total is not None:
            self.start(total, label, unit)

    @property
    def started(self):
        return self.total is not None

    def start(self, total, label, unit="step"):
        """Size and label the bar, and draw it."""
        self.total, self.label, self.unit = int(total), label, unit
        self._start = time.perf_counter()
        if self.show:
            self._bar = _tqdm(total=self.total, desc=self.prefix + label, unit=unit,
                              leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.2,
                              unit_scale=self.total >= 10_000)

    def add(self, k=1):
        self.n += k
        if self._bar is not None:
            self._bar.update(k)

    @property
    def seconds(self):
        return 0.0 if self._start is None else time.perf_counter() - self._start

    def summary_line(self, written=None):
        """``jet training, order 3, 8 directions: 240 direction-steps in 1.2 s; wrote s.npz``."""
        done = f"{self.n:,} {self.unit}{'s' * (self.n != 1)} in {format_duration(self.seconds)}"
        return f"{self.prefix}{self.label}: {done}" + (f"; wrote {written}" if written else "")

    def close(self, written=None, failed=False):
        """Remove the bar; print the summary line (unless ``failed``), the first time only."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        if self.show and self.summary and self.started and not failed:
            print(self.summary_line(written), file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.close(failed=kind is not None)


def _tqdm(**options):
    """A ``tqdm.auto`` bar, without its warning when a notebook lacks ipywidgets (it falls
    back to the one-line bar, which a notebook renders in place)."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from tqdm.auto import tqdm
    return tqdm(**options)


def task(progress, total, label, unit="step", summary=True):
    """The counter one long call reports into (a context manager).

    ``progress`` True/False/None: a :class:`Bar` of its own, closed (with its
    summary line, unless ``summary`` is False) when the block ends.  A counter
    (anything with ``add``): that one, left open for its owner; an unsized
    :class:`Bar` is sized with this call's ``total``, ``label`` and ``unit``.
    """
    if hasattr(progress, "add"):
        if isinstance(progress, Bar) and not progress.started:
            progress.start(total, label, unit)
        return contextlib.nullcontext(progress)
    return Bar(progress, summary=summary, total=total, label=label, unit=unit)


class SharedCounter:
    """The counter of a worker process: ``add`` sums locally and publishes the sum into the
    shared ``multiprocessing.Value`` ``value`` at most every ``interval`` seconds (and at
    :meth:`flush`), so a training step costs a clock reading, not a lock or a message."""

    def __init__(self, value, interval=0.2):
        self.value = value
        self.interval = interval
        self._pending = 0
        self._last = time.monotonic()

    def add(self, k=1):
        self._pending += k
        now = time.monotonic()
        if now - self._last >= self.interval:
            self.flush(now)

    def flush(self, now=None):
        if self._pending:
            with self.value.get_lock():
                self.value.value += self._pending
            self._pending = 0
        self._last = time.monotonic() if now is None else now
