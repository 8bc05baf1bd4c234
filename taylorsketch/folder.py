"""Sketches on disk: a folder of shard files plus one JSON manifest.

``precompute(..., out=FOLDER)`` writes ``FOLDER/manifest.json`` first (the run's
metadata and the plan: which directions go in which shard file), then every
batch's worker writes its own shard, ``shard-00000.npz``, ... (the ordinary
sketch format, atomically), so the client never holds the series.  Each shard
is a complete sketch of its directions: ``Sketch.load`` reads one alone and
``Sketch.merge`` joins them.

``Sketch.load(FOLDER)`` checks the manifest and every shard (metadata the run's,
directions the planned ones, one primal, no shard missing) without reading
the series: they are memory-mapped (:mod:`taylorsketch.shards`).  A shard's
values are read, with their zip checksums, when a measurement is evaluated on
it (``Sketch.coefficients``, shard by shard).

Resuming: an interrupted precompute leaves the manifest and the shards that
were finished.  ``precompute(..., out=FOLDER, resume=True)`` checks that the
manifest describes the same run (same documents, model, training, seed,
order, directions and batches; otherwise a ``ValueError``, never a mix of two
runs), checks every finished shard in full and trains only the missing ones.
"""

import hashlib
import json
import os

import numpy as np

from ._io import atomic_write
from .shards import Joined, memmap_member
from .sketch import Sketch
from .sketch_file import FORMAT_VERSION, SketchFileError, checked_arrays, model_from_description

MANIFEST = "manifest.json"
FOLDER_FORMAT = "taylorsketch sketch folder"


def plan(meta, chunks, ids, psi):
    """The manifest of a run: its metadata and one shard per chunk ``(a, b)`` of directions."""
    return {"format": FOLDER_FORMAT, "format_version": FORMAT_VERSION, "run": meta,
            "first_id": int(ids[0]) if meta["kind"] == "random" else -1, "n_directions": len(ids),
            "directions_sha256": hashlib.sha256(np.ascontiguousarray(psi).tobytes()).hexdigest(),
            "shards": [{"file": f"shard-{i:05d}.npz", "start": int(a), "stop": int(b)}
                       for i, (a, b) in enumerate(chunks)]}


def shard_path(folder, manifest, i):
    return os.path.join(os.path.abspath(folder), manifest["shards"][i]["file"])


def prepare(folder, manifest, resume):
    """Create ``folder`` and write ``manifest`` (or, with ``resume``, check the one
    there): the indices of the shards already finished, each checked in full."""
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError(f"{folder} exists and is not a folder")
    entries = os.listdir(folder) if os.path.isdir(folder) else []
    if not entries:
        os.makedirs(folder, exist_ok=True)
        atomic_write(os.path.join(folder, MANIFEST), lambda f: f.write(json.dumps(manifest, indent=1)),
                     mode="w", overwrite=False)
        return set()
    if not resume:
        raise FileExistsError(f"{folder} holds files (an earlier run?); resume=True (--resume) continues "
                              "that run, or choose a new or empty folder")
    old = read_manifest(folder)
    for key in ("run", "first_id", "n_directions", "directions_sha256", "shards"):
        if old.get(key) != manifest[key]:
            what = next((k for k in manifest["run"] if old["run"].get(k) != manifest["run"][k]), key) \
                if key == "run" else key
            raise ValueError(f"{folder} holds another run (its {what!r} differs: other documents, model, "
                             "training, seed, order, directions or batch size); it is not resumed with "
                             "these arguments")
    done = set()
    for i in range(len(manifest["shards"])):
        path = shard_path(folder, manifest, i)
        if os.path.exists(path):
            _check_shard(Sketch.load(path), old, i, path)
            done.add(i)
    return done


def read_manifest(folder):
    """The manifest of a sketch folder, its form checked; a :class:`SketchFileError` otherwise."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise SketchFileError(f"{folder}: is a folder without {MANIFEST}, not a sketch folder")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        ok = (isinstance(manifest, dict) and manifest.get("format") == FOLDER_FORMAT
              and isinstance(manifest.get("run"), dict) and isinstance(manifest.get("shards"), list)
              and isinstance(manifest.get("first_id"), int) and manifest["shards"])
        if not ok:
            raise ValueError("not a taylorsketch folder manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {manifest.get('format_version')!r}; this taylorsketch "
                             f"reads version {FORMAT_VERSION}")
        stop = 0
        for shard in manifest["shards"]:
            if (not isinstance(shard, dict) or not isinstance(shard.get("file"), str)
                    or os.path.basename(shard["file"]) != shard["file"] or shard.get("start") != stop
                    or not isinstance(shard.get("stop"), int) or shard["stop"] <= stop):
                raise ValueError(f"shard entries must be files in the folder covering consecutive "
                                 f"directions; got {shard!r:.80}")
            stop = shard["stop"]
        if stop > manifest["run"].get("total_directions", 0):
            raise ValueError(f"the shards cover {stop} directions, more than the run's total")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise SketchFileError(f"{path}: {err}") from None
    return manifest


def _check_shard(sketch, manifest, i, path):
    """Raise unless shard ``i`` holds the run's metadata and its planned directions."""
    entry = manifest["shards"][i]
    meta = {k: v for k, v in sketch.meta.items() if k != "format_version"}
    if meta != manifest["run"]:
        key = next((k for k in set(meta) | set(manifest["run"]) if meta.get(k) != manifest["run"].get(k)), "?")
        raise SketchFileError(f"{path}: a shard of another run ({key!r} differs from the manifest)")
    m = entry["stop"] - entry["start"]
    first = manifest["first_id"]
    expected = np.full(m, -1) if first < 0 else np.arange(first + entry["start"], first + entry["stop"])
    if sketch.direction_ids.shape != (m,) or not np.array_equal(sketch.direction_ids, expected):
        raise SketchFileError(f"{path}: holds other directions than the manifest's "
                              f"{entry['start']}..{entry['stop'] - 1}")


def load_folder(folder):
    """A sketch folder as a :class:`Sketch` whose ``series`` is memory-mapped
    (:class:`~taylorsketch.shards.Joined`); ``sketch.shard_files`` lists its shards."""
    folder = os.fspath(folder)
    manifest = read_manifest(folder)
    try:
        model = model_from_description(manifest["run"].get("model"))
    except (KeyError, TypeError, ValueError) as err:
        raise SketchFileError(f"{folder}: unusable model description ({err})") from None
    primal, series, directions, ids, files = None, [], [], [], []
    for i, entry in enumerate(manifest["shards"]):
        path = shard_path(folder, manifest, i)
        if not os.path.exists(path):
            raise SketchFileError(f"{folder}: shard {entry['file']} (directions {entry['start']}.."
                                  f"{entry['stop'] - 1}) is missing: the precompute did not finish; "
                                  "run it again with resume=True (--resume) to complete it")
        shard = _open_lazily(path, model)
        _check_shard(shard, manifest, i, path)
        if primal is None:
            primal = shard.primal
        elif not np.array_equal(shard.primal, primal):
            raise SketchFileError(f"{path}: other trained parameters (primal) than the first shard")
        series.append(shard.series)
        directions.append(shard.directions)
        ids.append(shard.direction_ids)
        files.append(path)
    if manifest["shards"][-1]["stop"] != manifest.get("n_directions"):
        raise SketchFileError(f"{folder}: the shards do not cover the run's {manifest.get('n_directions')} directions")
    directions = np.concatenate(directions)
    if manifest["run"]["kind"] == "explicit" and \
            hashlib.sha256(np.ascontiguousarray(directions).tobytes()).hexdigest() != manifest["directions_sha256"]:
        raise SketchFileError(f"{folder}: the shards' directions are not the manifest's")
    sketch = Sketch(model, primal, Joined(series), directions, np.concatenate(ids), dict(manifest["run"]))
    sketch.shard_files = files
    return sketch


def _open_lazily(path, model):
    """One shard as a Sketch: metadata and small arrays read and checked, series memory-mapped."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("primal", "directions", "direction_ids", "meta")}
        arrays["series"] = memmap_member(path, "series")
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError("metadata is not a JSON object of this format version")
        return Sketch(model, *checked_arrays(meta, arrays, model, values=False), meta)
    except SketchFileError as err:
        raise SketchFileError(f"{path}: {err}") from None
    except Exception as err:     # an untrusted file: whatever numpy or zipfile trips on is damage
        raise SketchFileError(f"{path}: not a readable shard ({err})") from None
