"""The taylorsketch command line: precompute, predict, leave-one-out, plan,
retrain, stability, validate, merge, reproduce and interactions.

Training data is the paper's set-up by default (the shuffled names list, the
paper's initial parameters); ``--docs FILE`` trains on a file of one
document per line instead.  Every command prints a readable summary, or JSON
with ``--json``.  No command overwrites a file without ``--force``; no
failure prints a traceback (docs/errors.md).
"""

import argparse
import json
import math
import os
import sys

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


BUG_REPORT = ("this is a bug in taylorsketch: please report it (the command line and this message) "
              "to the taylorsketch issue tracker")


# ----------------------------------------------------------------------------
# option types: a bad value is argparse's usage error (status 2), before any work


def _integer(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def _finite(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


def _text(what):
    def parse(text):
        if not text:
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        return text
    parse.__name__ = what
    return parse


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
    with Bar(args.progress) as bar:     # precompute sizes and labels it; the summary names the file
        sketch = precompute(model, init, docs, order=args.order, directions=directions, seed=args.seed,
                            steps=args.steps, batch_size=args.batch_size, shard=args.shard,
                            num_shards=args.num_shards, workers=args.workers, progress=bar,
                            data=source)
        _save(sketch, args.out, args.force)
        bar.close(written=args.out)
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


def _save(sketch, path, force):
    try:
        sketch.save(path, overwrite=force)
    except FileExistsError:
        raise CLIError(f"{path} exists; pass --force to overwrite it") from None
    except OSError as err:
        raise CLIError(f"cannot write {path}: {err.strerror or err}") from None


# ----------------------------------------------------------------------------
# parser


def _data_options(p):
    p.add_argument("--docs", type=_text("--docs FILE"),
                   help="file with one training document per line (default: the paper's names)")
    p.add_argument("--n-docs", type=_integer(1), default=None,
                   help="train on the first N documents (default 1000, or all of --docs if fewer)")
    p.add_argument("--data-seed", type=_integer(0), default=42,
                   help="seed of the shuffle (paper data only) and of the initial parameters (default 42, the paper's)")
    p.add_argument("--steps", type=_integer(0), default=None, help="training steps (default: one per document)")


def _measure_options(p):
    p.add_argument("--doc", default="max", type=_text("--doc"), help="measure the loss on this document (default 'max')")
    p.add_argument("--continuation", type=_text("--continuation"), help="measure log P(continuation | prefix) instead ('$' = end of name)")
    p.add_argument("--prefix", default="", help="prefix for --continuation")


def _deletion_options(p):
    group = p.add_mutually_exclusive_group()
    group.add_argument("--delete-contains", metavar="TEXT", type=_text("--delete-contains TEXT"), help="delete the documents containing TEXT")
    group.add_argument("--delete-indices", metavar="I,J,...", help="delete these documents")


def _estimator_options(p):
    p.add_argument("--documents", metavar="SKETCH", default=None,
                   help="a documents sketch of the same run (precompute --documents): the residual estimator")
    p.add_argument("--method", choices=["sketch", "residual", "additive", "sum", "exact"], default=None,
                   help="the estimator (default: the best one for what was precomputed)")


def build_parser():
    parser = argparse.ArgumentParser(prog="taylorsketch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("-q", "--quiet", dest="progress", action="store_const", const=False, default=None,
                        help="no progress bars, no summary line")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                        help="the same as --quiet")
    parser.add_argument("--progress", dest="progress", action="store_const", const=True,
                        help="show them even when standard error is not a terminal")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("precompute", help="train once in jet arithmetic and save the sketch")
    _data_options(p)
    p.add_argument("--order", type=_integer(1), default=3, help="jet order K (default 3)")
    p.add_argument("--directions", type=_integer(1), default=500, help="random complex directions M (default 500)")
    kinds = p.add_mutually_exclusive_group()
    kinds.add_argument("--exact-contains", metavar="TEXT", type=_text("--exact-contains TEXT"),
                       help="instead, one exact direction: the indicator of documents containing TEXT")
    kinds.add_argument("--documents", action="store_true",
                       help="instead, every document's own direction e_i (leave-one-out, the additive "
                            "models, and with a random sketch the residual estimator)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the random directions")
    p.add_argument("--batch-size", type=_integer(1), default=None, help="directions per training pass")
    p.add_argument("--shard", type=_integer(0), default=0, help="compute only this shard (0-based) of the directions")
    p.add_argument("--num-shards", type=_integer(1), default=1, help="split the directions into this many shards")
    p.add_argument("--workers", type=_integer(1), default=1, help="processes training batches in parallel")
    p.add_argument("--out", default="sketch.npz", help="where to save the sketch (default sketch.npz)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=cmd_precompute)

    p = sub.add_parser("predict", help="predict a measurement after deleting documents")
    p.add_argument("sketch")
    _measure_options(p)
    _deletion_options(p)
    p.add_argument("--t", type=_finite, nargs="+", default=[1.0], help="deletion weight(s) t (default 1)")
    p.add_argument("--degree", type=_integer(0), default=None, help="use orders 1..DEGREE only (default: all)")
    p.add_argument("--groups", type=_integer(1), default=None, help="median of means over this many groups")
    _estimator_options(p)
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("leave-one-out", help="which documents move a measurement most (a documents sketch)")
    p.add_argument("sketch", help="a sketch made with precompute --documents")
    _measure_options(p)
    p.add_argument("--top", type=_integer(1), default=10, help="show the N documents with the largest effect (default 10)")
    p.set_defaults(run=cmd_leave_one_out)

    p = sub.add_parser("plan", help="directions a sketch needs for a target standard error")
    p.add_argument("sketch", help="a pilot sketch of random directions")
    _measure_options(p)
    _deletion_options(p)
    p.add_argument("--target", type=_finite, required=True, help="the standard error wanted")
    p.add_argument("--degree", type=_integer(0), default=None, help="use orders 1..DEGREE only (default: all)")
    p.add_argument("--groups", type=_integer(1), default=None, help="plan for a median of means over this many groups")
    _estimator_options(p)
    p.set_defaults(run=cmd_plan)

    p = sub.add_parser("retrain", help="ground truth: retrain with the documents weighted by 1 - t")
    _data_options(p)
    _measure_options(p)
    _deletion_options(p)
    p.add_argument("--t", type=_finite, nargs="+", default=[1.0], help="deletion weight(s) t (default 1)")
    p.set_defaults(run=cmd_retrain)

    p = sub.add_parser("stability", help="per-order log2 ||T_r||_F estimates")
    p.add_argument("sketch")
    _measure_options(p)
    p.set_defaults(run=cmd_stability)

    p = sub.add_parser("validate", help="compare predictions with retraining on random deletion sets")
    p.add_argument("sketch")
    _measure_options(p)
    p.add_argument("--sizes", default="1,5,20", help="deletion set sizes (default 1,5,20)")
    p.add_argument("--sets", type=_integer(1), default=3, help="sets per size (default 3)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the random deletion sets")
    p.add_argument("--groups", type=_integer(1), default=None, help="median of means over this many groups")
    p.set_defaults(run=cmd_validate)

    p = sub.add_parser("merge", help="join shards of one precomputation")
    p.add_argument("out", help="the merged sketch (not one of the shards)")
    p.add_argument("inputs", nargs="+", help="the shards (at least two)")
    p.add_argument("--complete", action="store_true",
                   help="the shards given are the whole set (allows a single shard; checks that no direction is missing)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(run=cmd_merge)

    p = sub.add_parser("reproduce", help="reproduce the paper's figures (writes JSON, PNG, report.md)")
    p.add_argument("figure", choices=["fig1", "fig2", "fig3", "all"])
    p.add_argument("--preset", choices=sorted(reproduce.PRESETS), default="quick",
                   help="quick: about two minutes; full: the paper's scale (about half an hour on 2 cores)")
    p.add_argument("--out", default="results", help="folder for figN.json, figN.png and report.md")
    p.add_argument("--workers", type=_integer(1), default=2, help="processes training directions in parallel (default 2)")
    p.add_argument("--resume", action="store_true",
                   help="reuse figures already completed in --out with the same preset, "
                        "configuration and version")
    p.add_argument("--force", action="store_true", help="overwrite the files of an earlier run in --out")
    p.set_defaults(run=cmd_reproduce)

    p = sub.add_parser("interactions", help="exact mixed partials over a group of deleted documents")
    _data_options(p)
    _measure_options(p)
    p.add_argument("--group", required=True, metavar="I,J,K+L,...",
                   help="the group: 1..12 members separated by ',', each a document index or "
                        "indices joined by '+' (deleted together)")
    p.add_argument("--top", type=_integer(1), default=10, help="interactions to list (default 10)")
    p.set_defaults(run=cmd_interactions)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        data, text = args.run(args)
        print(json.dumps(_json_safe(data), indent=2) if args.json else text, flush=True)
    except BrokenPipeError:            # stdout closed early (``| head``): nothing left to say
        _silence_stdout()
        return 0
    except (CLIError, ValueError, TypeError) as err:   # bad input, explained in one line
        print(f"taylorsketch {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"taylorsketch {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:           # noqa: BLE001  (anything else is ours, not the user's)
        print(f"taylorsketch {args.command}: internal error: {type(err).__name__}: {_one_line(err)}; "
              f"{BUG_REPORT}", file=sys.stderr)
        return 1
    return 0


def _one_line(err):
    return " ".join(str(err).split())


def _silence_stdout():
    """Point stdout at /dev/null, so that Python's own flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # stdout without a file descriptor (captured)
        pass


def _json_safe(value):
    """NaN and infinities become null: strict JSON has no such numbers."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
