"""The taylorsketch command line: precompute, predict, leave-one-out, plan,
retrain, stability, validate, merge, reproduce and interactions.

This module holds the parser, its option types and the error handling of
``main``; the commands themselves are in :mod:`taylorsketch.commands`.

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

from . import commands, reproduce
from .commands import CLIError

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
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="train the batches on this Dask scheduler's workers (tcp://host:8786)")
    p.add_argument("--out", default="sketch.npz", help="where to save the sketch (default sketch.npz)")
    p.add_argument("--folder", action="store_true",
                   help="--out is a sketch folder: one shard file per batch, written by the workers")
    p.add_argument("--resume", action="store_true",
                   help="with --folder: continue the interrupted run in --out")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=commands.cmd_precompute)

    p = sub.add_parser("predict", help="predict a measurement after deleting documents")
    p.add_argument("sketch")
    _measure_options(p)
    _deletion_options(p)
    p.add_argument("--t", type=_finite, nargs="+", default=[1.0], help="deletion weight(s) t (default 1)")
    p.add_argument("--degree", type=_integer(0), default=None, help="use orders 1..DEGREE only (default: all)")
    p.add_argument("--groups", type=_integer(1), default=None, help="median of means over this many groups")
    _estimator_options(p)
    p.set_defaults(run=commands.cmd_predict)

    p = sub.add_parser("leave-one-out", help="which documents move a measurement most (a documents sketch)")
    p.add_argument("sketch", help="a sketch made with precompute --documents")
    _measure_options(p)
    p.add_argument("--top", type=_integer(1), default=10, help="show the N documents with the largest effect (default 10)")
    p.set_defaults(run=commands.cmd_leave_one_out)

    p = sub.add_parser("plan", help="directions a sketch needs for a target standard error")
    p.add_argument("sketch", help="a pilot sketch of random directions")
    _measure_options(p)
    _deletion_options(p)
    p.add_argument("--target", type=_finite, required=True, help="the standard error wanted")
    p.add_argument("--degree", type=_integer(0), default=None, help="use orders 1..DEGREE only (default: all)")
    p.add_argument("--groups", type=_integer(1), default=None, help="plan for a median of means over this many groups")
    _estimator_options(p)
    p.set_defaults(run=commands.cmd_plan)

    p = sub.add_parser("retrain", help="ground truth: retrain with the documents weighted by 1 - t")
    _data_options(p)
    _measure_options(p)
    _deletion_options(p)
    p.add_argument("--t", type=_finite, nargs="+", default=[1.0], help="deletion weight(s) t (default 1)")
    p.set_defaults(run=commands.cmd_retrain)

    p = sub.add_parser("stability", help="per-order log2 ||T_r||_F estimates")
    p.add_argument("sketch")
    _measure_options(p)
    p.set_defaults(run=commands.cmd_stability)

    p = sub.add_parser("validate", help="compare predictions with retraining on random deletion sets")
    p.add_argument("sketch")
    _measure_options(p)
    p.add_argument("--sizes", default="1,5,20", help="deletion set sizes (default 1,5,20)")
    p.add_argument("--sets", type=_integer(1), default=3, help="sets per size (default 3)")
    p.add_argument("--seed", type=_integer(0), default=0, help="seed of the random deletion sets")
    p.add_argument("--groups", type=_integer(1), default=None, help="median of means over this many groups")
    p.set_defaults(run=commands.cmd_validate)

    p = sub.add_parser("merge", help="join shards of one precomputation")
    p.add_argument("out", help="the merged sketch (not one of the shards)")
    p.add_argument("inputs", nargs="+", help="the shards (at least two)")
    p.add_argument("--complete", action="store_true",
                   help="the shards given are the whole set (allows a single shard; checks that no direction is missing)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(run=commands.cmd_merge)

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
    p.set_defaults(run=commands.cmd_reproduce)

    p = sub.add_parser("interactions", help="exact mixed partials over a group of deleted documents")
    _data_options(p)
    _measure_options(p)
    p.add_argument("--group", required=True, metavar="I,J,K+L,...",
                   help="the group: 1..12 members separated by ',', each a document index or "
                        "indices joined by '+' (deleted together)")
    p.add_argument("--top", type=_integer(1), default=10, help="interactions to list (default 10)")
    p.set_defaults(run=commands.cmd_interactions)
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
