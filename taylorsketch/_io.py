"""Atomic file writes: a temporary file in the target folder, renamed into place.

An interrupted write (Ctrl-C, full disk, crash) never leaves a half-written
file at the target path; at worst the previous version stays.  With
``overwrite=False`` an existing file is never replaced, not even by a
concurrent writer (the temporary file is hard-linked into place, which fails
if the name exists).
"""

import json
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write, mode="wb", overwrite=True):
    """Call ``write(file)`` on a temporary file, then rename it to ``path``.

    The file gets the permissions an ordinary ``open(path, "w")`` would give.
    ``overwrite=False``: a ``FileExistsError`` if ``path`` exists (checked
    first, and again atomically at the end).
    """
    path = os.fspath(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (not overwritten)")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)      # FileExistsError if another writer got there first
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, data):
    atomic_write(path, lambda f: json.dump(data, f, indent=2, allow_nan=True), mode="w")


def write_text(path, text):
    atomic_write(path, lambda f: f.write(text), mode="w")
