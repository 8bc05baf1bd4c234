"""The commands of the ``taylorsketch`` command line, one function each
(``cmd_*(args) -> (data for --json, text)``), and what they share: reading the
training data and sketches, the measurement and the deletion set from the
options, and writing files only where asked (``--force``).  The parser and the
error handling are in :mod:`taylorsketch.cli`.
"""

import os

import numpy as np

from . import measure as measures
from . import paper, reproduce
from .data import Vocab
from .deletion import deletion_indicator
from .interaction import interactions
from .models import MicroGPT
from .precomputation import precompute
from .progress import Bar
from .sketch import Sketch
from .sketch_file import SketchFileError
from .training import retrain
from .validation import validate


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------
# data and model from the command line or from a sketch's metadata


def _read_docs(path):
    try:
        with open(path, encoding="utf-8") as f:
            docs = [line.strip() for line in f if line.strip()]
    except OSError as err:
        raise CLIError(f"cannot read documents from {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise CLIError(f"{path} is not UTF-8 text") from None
    if not docs:
        raise CLIError(f"{path} has no documents")
    return docs


def _data(source):
    """(docs, model, init) from a data description dict."""
    if source["source"] == "paper":
        s = paper.setup(seed=source["seed"])
        if source.get("explicit_n_docs") and source["n_docs"] > len(s.docs):
            raise CLIError(f"--n-docs {source['n_docs']}: the paper's names list has only {len(s.docs)}")
        docs = s.docs[: source["n_docs"]]
        return docs, MicroGPT(s.vocab), s.init
    docs = _read_docs(source["path"])
    if source.get("explicit_n_docs") and source["n_docs"] > len(docs):
        raise CLIError(f"--n-docs {source['n_docs']}: {source['path']} has only {len(docs)} documents")
    docs = docs[: source["n_docs"]]
    model = MicroGPT(Vocab.from_documents(docs))
    return docs, model, model.init_params(seed=source["seed"])


def _source_from_args(args):
    n_docs = 1000 if args.n_docs is None else args.n_docs
    if args.docs is not None:
        source = {"source": "file", "path": os.path.abspath(args.docs), "seed": args.data_seed,
                  "n_docs": n_docs}
    else:
        source = {"source": "paper", "seed": args.data_seed, "n_docs": n_docs}
    docs, model, init = _data({**source, "explicit_n_docs": args.n_docs is not None})
    return source, docs, model, init


def _load_sketch(path):
    try:
        return Sketch.load(path)
    except FileNotFoundError:
        raise CLIError(f"no sketch at {path}") from None
    except PermissionError:
        raise CLIError(f"cannot read {path}: permission denied") from None
    except SketchFileError as err:
        raise CLIError(str(err)) from None


def _sketch_data(sketch):
    source = sketch.meta.get("data")
    if not source:
        raise CLIError("this sketch does not record its training data; use the Python API")
    docs, _, init = _data(source)
    sketch.check_docs(docs)
    return docs, sketch.model, init


def _deleted(args, docs):
    if args.delete_contains is not None:
        needle = args.delete_contains
        indices = [i for i, d in enumerate(docs) if needle in d]
        if not indices:
            raise CLIError(f"no document contains {needle!r}: nothing to delete")
    elif args.delete_indices is not None:
        try:
            indices = [int(x) for x in args.delete_indices.split(",") if x.strip()]
        except ValueError:
            raise CLIError(f"--delete-indices must be comma-separated integers; got {args.delete_indices!r}") from None
        if not indices:
            raise CLIError("--delete-indices lists no document")
        bad = [i for i in indices if not 0 <= i < len(docs)]
        if bad:
            raise CLIError(f"document indices out of range 0..{len(docs) - 1}: {bad}")
        if len(set(indices)) != len(indices):
            raise CLIError("--delete-indices lists a document twice")
    else:
        raise CLIError("say what to delete: --delete-contains TEXT or --delete-indices I,J,...")
    return indices


def _measure(args, model):
    try:
        if args.continuation is not None:
            return measures.logprob(model, args.prefix or "", args.continuation)
        return measures.doc_loss(model, args.doc)
    except ValueError as err:
        raise CLIError(str(err)) from None


# ----------------------------------------------------------------------------
# commands


def cmd_precompute(args):
    if args.folder:
        _folder_writable(args)
    else:
        if args.resume:
            raise CLIError("--resume continues a sketch folder: give --folder")
        _writable(args.out, args.force)   # before the expensive part
    source, docs, model, init = _source_from_args(args)
    if args.exact_contains is not None:
        indicator = deletion_indicator(docs, lambda d: args.exact_contains in d)
        if not indicator.any():
            raise CLIError(f"no document contains {args.exact_contains!r}: the exact direction would be zero")
        directions = indicator[None, :]
    elif args.documents:
        directions = "documents"
    else:
        directions = args.directions
    if args.folder and directions == "documents":
        raise CLIError("--folder writes random or explicit directions; a documents sketch is one file")
    executor = _scheduler(args.scheduler, args.workers)
    where = {"workers": args.workers} if executor is None else {"executor": executor}
    try:
        with Bar(args.progress) as bar:     # precompute sizes and labels it; the summary names the file
            sketch = precompute(model, init, docs, order=args.order, directions=directions, seed=args.seed,
                                steps=args.steps, batch_size=args.batch_size, shard=args.shard,
                                num_shards=args.num_shards, progress=bar, data=source,
                                out=args.out if args.folder else None, resume=args.resume, **where)
            if not args.folder:
                _save(sketch, args.out, args.force)
            bar.close(written=args.out)
    except (FileExistsError, SketchFileError) as err:
        raise CLIError(str(err)) from None
    except ValueError as err:
        if "another run" not in str(err):
            raise
        raise CLIError(str(err)) from None
    finally:
        if executor is not None:
            executor.close()
    return {"out": args.out, "order": sketch.order, "n_directions": sketch.n_directions,
            "n_docs": sketch.n_docs, "kind": sketch.kind}, f"wrote {sketch!r} to {args.out}"


def _query(args):
    """What ``predict`` and ``plan`` read: the sketch, its documents sketch (or None),
    the measurement and the deleted documents."""
    sketch = _load_sketch(args.sketch)
    docs, model, _ = _sketch_data(sketch)
    per = None if args.documents is None else _load_sketch(args.documents)
    return sketch, per, _measure(args, model), _deleted(args, docs)


def cmd_predict(args):
    sketch, per, phi, deleted = _query(args)
    t = np.array(args.t) if len(args.t) > 1 else args.t[0]
    if sketch.kind != "documents":      # the coefficients, with their bar (cached for predict)
        sketch.coefficients(phi, progress=args.progress)
    p = sketch.predict(phi, deleted, degree=args.degree, groups=args.groups, t=t, documents=per,
                       method=args.method)
    out = {"measure": phi.name, "deleted": len(deleted), **p.as_dict()}
    how = {"exact": "exact direction", "additive": "parameter-additive model, per-document series",
           "sum": "sum of per-document series",
           "residual": f"residual estimator, {p.n_directions} directions"}.get(p.method, f"{p.n_directions} directions")
    lines = [f"{phi.name} with {len(deleted)} documents deleted ({how}); unperturbed {p.base:.6f}"]
    terms = np.reshape(p.terms, (p.degree, len(args.t)))
    errs = np.reshape(p.term_stderr, (p.degree, len(args.t)))
    values, stderrs = np.ravel(p.value), np.ravel(p.stderr)
    sampled = not np.all(np.isnan(stderrs))
    for i, t in enumerate(args.t):
        lines.append(f"  t = {t:g}:")
        for r in range(p.degree):
            lines.append(f"    order {r + 1} term   {terms[r, i]:+.6f}" + (f" +- {errs[r, i]:.6f}" if sampled else ""))
        lines.append(f"    prediction     {values[i]:.6f}" + (f" +- {stderrs[i]:.6f}" if sampled else
                                                             "   (no sampling error; interactions not estimated)"))
    return out, "\n".join(lines)


def cmd_leave_one_out(args):
    sketch = _load_sketch(args.sketch)
    docs, model, _ = _sketch_data(sketch)
    phi = _measure(args, model)
    loo = sketch.leave_one_out(phi, docs=docs)
    return loo.as_dict(top=args.top), loo.format(top=args.top)


def cmd_plan(args):
    sketch, per, phi, deleted = _query(args)
    p = sketch.predict(phi, deleted, degree=args.degree, documents=per, method=args.method)
    needed = sketch.required_directions(phi, deleted, args.target, degree=args.degree, documents=per,
                                        method=args.method, groups=args.groups)
    text = (f"{phi.name} with {len(deleted)} documents deleted ({p.method}): standard error "
            f"{p.stderr:.6f} with the pilot's {sketch.n_directions} directions; {args.target:g} needs "
            f"about {needed} directions")
    return {"measure": phi.name, "deleted": len(deleted), "method": p.method, "pilot_directions": sketch.n_directions,
            "pilot_stderr": p.stderr, "target_stderr": args.target, "required_directions": needed}, text


def cmd_retrain(args):
    _, docs, model, init = _source_from_args(args)
    phi = _measure(args, model)
    deleted = _deleted(args, docs)
    rows = []
    steps = len(docs) if args.steps is None else args.steps
    label = f"retraining, {len(args.t)} weight{'s' * (len(args.t) != 1)} t, {steps} steps each"
    with Bar(args.progress, total=len(args.t) * steps, label=label, unit="step") as bar:
        for t in args.t:
            params = retrain(model, init, docs, deleted, t, steps=args.steps, progress=bar)
            rows.append({"t": t, "value": float(phi(params))})
    text = "\n".join([f"{phi.name} after retraining, {len(deleted)} documents weighted by (1 - t):"]
                     + [f"  t = {r['t']:.3f}: {r['value']:.10f}" for r in rows])
    return {"measure": phi.name, "deleted": len(deleted), "results": rows}, text


def cmd_stability(args):
    sketch = _load_sketch(args.sketch)
    _, model, _ = _sketch_data(sketch)
    phi = _measure(args, model)
    if sketch.kind == "random":
        sketch.coefficients(phi, progress=args.progress)
    st = sketch.stability(phi)
    lines = [f"log2 ||T_r||_F estimates for {phi.name}:"]
    lines += [f"  r = {r:3d}: {v:9.3f}" for r, v in zip(st.orders, st.combined)]
    lines.append(f"  quadratic fit curvature {st.curvature:.4f} (negative: faster than linear decay)")
    return {"measure": phi.name, **st.as_dict()}, "\n".join(lines)


def cmd_validate(args):
    sketch = _load_sketch(args.sketch)
    docs, model, init = _sketch_data(sketch)
    phi = _measure(args, model)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise CLIError(f"--sizes must be comma-separated integers; got {args.sizes!r}") from None
    v = validate(sketch, model, init, docs, phi, sizes=sizes, sets_per_size=args.sets,
                 seed=args.seed, groups=args.groups, progress=args.progress)
    return {"measure": phi.name, **v.as_dict()}, v.format()


def cmd_merge(args):
    out = os.path.realpath(args.out)
    if any(os.path.realpath(p) == out for p in args.inputs):
        raise CLIError(f"the output {args.out} is one of the inputs: it would be overwritten "
                       f"(the output comes first: merge OUT SHARD SHARD ...)")
    if len(args.inputs) < 2 and not args.complete:
        raise CLIError(f"merge needs at least two shards; got {len(args.inputs)} (the output "
                       f"comes first: merge OUT SHARD SHARD ...; --complete if one shard is the whole set)")
    _writable(args.out, args.force)
    sketches = [_load_sketch(p) for p in args.inputs]
    try:
        merged = Sketch.merge(sketches, complete=args.complete)
    except ValueError as err:
        raise CLIError(str(err)) from None
    _save(merged, args.out, args.force)
    return {"out": args.out, "n_directions": merged.n_directions}, f"wrote {merged!r} to {args.out}"


def cmd_reproduce(args):
    return reproduce.run(args.figure, preset=args.preset, out=args.out, progress=args.progress,
                         workers=args.workers, resume=args.resume, force=args.force)


def _group(spec):
    """``"0,5,7+9"`` -> ``[[0], [5], [7, 9]]``: members by commas, documents of one member by ``+``."""
    try:
        group = [[int(i) for i in member.split("+")] for member in spec.split(",")]
    except ValueError:
        raise CLIError(f"--group must be document indices, members separated by ',' and the "
                       f"documents of one member joined by '+' (e.g. 0,5,7+9); got {spec!r}") from None
    return group


def cmd_interactions(args):
    _, docs, model, init = _source_from_args(args)
    phi = _measure(args, model)
    res = interactions(model, init, docs, _group(args.group), phi, steps=args.steps,
                       progress=args.progress)
    return res.as_dict(top=args.top), res.format(top=args.top)


def _writable(path, force):
    """A file may be written at ``path``: not a folder, in a writable folder, and
    not an existing file unless ``--force``."""
    if not path:
        raise CLIError("the output path is empty")
    if os.path.isdir(path):
        raise CLIError(f"cannot write {path}: it is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise CLIError(f"cannot write {path}: folder {folder} does not exist or is not writable")
    if os.path.lexists(path) and not force:
        raise CLIError(f"{path} exists; pass --force to overwrite it")


def _folder_writable(args):
    """``--out`` may be a sketch folder: new, empty, or (``--resume``) an earlier run's."""
    if not args.out:
        raise CLIError("the output path is empty")
    if args.force:
        raise CLIError("a sketch folder is never overwritten: remove it, or continue it with --resume")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise CLIError(f"{args.out} exists and is not a folder")
    if os.path.isdir(args.out) and os.listdir(args.out) and not args.resume:
        raise CLIError(f"{args.out} holds files; pass --resume to continue that run")


def _scheduler(address, workers):
    """A Dask client of the scheduler at ``address`` (None without one)."""
    if address is None:
        return None
    if workers != 1:
        raise CLIError("--scheduler trains on the cluster's workers; --workers is for a local run")
    try:
        from distributed import Client
    except ImportError:
        raise CLIError("--scheduler needs Dask: pip install 'taylorsketch[dask]'") from None
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as err:
        raise CLIError(f"cannot reach the Dask scheduler at {address}: {err}") from None


def _save(sketch, path, force):
    try:
        sketch.save(path, overwrite=force)
    except FileExistsError:
        raise CLIError(f"{path} exists; pass --force to overwrite it") from None
    except OSError as err:
        raise CLIError(f"cannot write {path}: {err.strerror or err}") from None
