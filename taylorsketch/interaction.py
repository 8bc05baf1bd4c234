r"""Exact interactions between deleted documents: one training run in d nilpotent variables.

Give each member ``i`` of a group (one document, or several deleted
together) its own variable ``z_i`` and train with the loss weights
``w = sum_i z_i 1_{D_i}`` in :class:`~taylorsketch.MultiJet` arithmetic
(``z_i^2 = 0``).  A measurement ``g`` of the trained model then comes out as

    g(z) = sum_{S subset group} c_S z_S,     c_S = d^|S| g / prod_{i in S} dw_{D_i}  at w = 0,

every mixed partial derivative of every subset of the group, from one run.
Deleting the members in ``T`` is ``z = 1_T``; the part of ``g(1_T)`` that is
multilinear in the members is

    sum_{S subset T} c_S,

exact up to the terms with a repeated member (``z_i^2`` and higher), which
the nilpotent variables drop.  ``c_{i,j}`` is what deleting ``i`` and ``j``
together changes beyond the sum of deleting each alone (in that multilinear
part); higher ``c_S`` are the corresponding higher-order interactions.

Cost: a training run in MultiJet arithmetic carries ``2^d - 1`` series and
costs about ``d^2 2^d / 2`` times a plain one per scalar operation; see
``docs/performance.md``.  Use it for groups of up to ~12; the random sketch
(:func:`taylorsketch.precompute`) is for deletion sets that are not known
before training.
"""

import numbers
from dataclasses import dataclass

import numpy as np

from .measure import as_measure
from .multijet import MultiJet, subset_mask
from .training import train

MAX_GROUP = 12     # 2^12 - 1 = 4,095 series per parameter: MicroGPT's state is ~0.5 GB at d = 12


@dataclass
class Interactions:
    """Every mixed partial of a measurement over the subsets of a group of documents.

    ``mixed[S]`` (bitmask ``S``, bit ``i`` for member ``i``) is ``c_S``;
    ``mixed[0]`` is the measurement of the ordinary training run.  ``members``
    holds each member's document indices and ``labels`` a name for each.

    >>> import taylorsketch as ts
    >>> data = ts.MLP.synthetic_dataset(8, seed=0)
    >>> model = ts.MLP(n_in=2, n_hidden=4, n_out=1)
    >>> phi = lambda params: model.loss(params, data[0])
    >>> res = ts.interactions(model, model.init_params(seed=0), data, [1, [2, 3]], phi, progress=False)
    >>> res.mixed.shape, res.members
    ((4,), [(1,), (2, 3)])
    >>> bool(abs(res.multilinear([0, 1]) - res.mixed.sum()) < 1e-15)
    True
    """

    mixed: np.ndarray
    members: list
    labels: list
    measure: str = "measure"

    @property
    def n_members(self):
        return len(self.members)

    @property
    def base(self):
        """The measurement after ordinary training (``c_{}``)."""
        return float(self.mixed[0])

    def coefficient(self, subset):
        """``c_S`` for ``subset`` (member indices, or a bitmask)."""
        return float(self.mixed[subset_mask(subset, self.n_members)])

    def multilinear(self, subset):
        """``sum_{S subset T} c_S``: the multilinear part of the measurement after deleting ``T``."""
        mask = subset_mask(subset, self.n_members)
        return float(sum(self.mixed[s] for s in range(mask + 1) if s & mask == s))

    def table(self, top=10, min_order=2):
        """The ``top`` strongest ``c_S`` with ``|S| >= min_order``, largest ``|c_S|`` first.

        Each row: ``{"members": [i, ...], "labels": [...], "order": |S|, "value": c_S}``.
        """
        masks = [m for m in range(1, len(self.mixed)) if bin(m).count("1") >= min_order]
        masks.sort(key=lambda m: (-abs(self.mixed[m]), m))
        rows = []
        for mask in masks[:top]:
            idx = [i for i in range(self.n_members) if mask >> i & 1]
            rows.append({"members": idx, "labels": [self.labels[i] for i in idx],
                         "order": len(idx), "value": float(self.mixed[mask])})
        return rows

    def format(self, top=10):
        """A readable summary: the members, their single effects and the strongest interactions."""
        lines = [f"{self.measure}: mixed partials over {self.n_members} group members; "
                 f"unperturbed {self.base:.6f}",
                 "  member  d/dw          documents"]
        for i, label in enumerate(self.labels):
            lines.append(f"  {i:6d}  {self.mixed[1 << i]:+.6e}  {label}")
        rows = self.table(top)
        if rows:
            lines.append("  strongest interactions (order >= 2):")
            for row in rows:
                members = "{" + ",".join(map(str, row["members"])) + "}"
                lines.append(f"    {members:<16s} {row['value']:+.6e}")
        return "\n".join(lines)

    def as_dict(self, top=10):
        return {"measure": self.measure, "members": [list(m) for m in self.members],
                "labels": list(self.labels), "mixed": self.mixed.tolist(), "base": self.base,
                "table": self.table(top)}


def group_directions(n_docs, group):
    """Member document indices and the indicator rows ``(d, n)`` of a group.

    Each member is one document index or a sequence of them; members must be
    nonempty and disjoint (a shared document would be weighted ``z_i + z_j``).
    """
    if isinstance(group, (str, bytes)) or not hasattr(group, "__iter__"):
        raise ValueError(f"group must be a sequence of members (indices or lists of indices); got {group!r}")
    group = list(group)
    if not 1 <= len(group) <= MAX_GROUP:
        raise ValueError(f"a group needs 1..{MAX_GROUP} members (the cost doubles with each); "
                         f"got {len(group)}")
    members = []
    for member in group:
        if isinstance(member, numbers.Integral):
            docs = [member]
        elif hasattr(member, "__iter__") and not isinstance(member, (str, bytes)):
            docs = list(member)
        else:
            raise ValueError(f"group member {member!r}: a member is a document index (integer) "
                             f"or a list of them")
        if not docs:
            raise ValueError("a group member lists no document")
        for i in docs:
            if not isinstance(i, numbers.Integral) or isinstance(i, bool) or not 0 <= i < n_docs:
                raise ValueError(f"group member {member!r}: document indices must be integers in "
                                 f"0..{n_docs - 1}; got {i!r}")
        members.append(tuple(int(i) for i in docs))
    flat = [i for m in members for i in m]
    if len(set(flat)) != len(flat):
        raise ValueError("group members must be disjoint: a document appears twice")
    directions = np.zeros((len(members), n_docs))
    for row, member in enumerate(members):
        directions[row, list(member)] = 1.0
    return members, directions


def interactions(model, init_params, docs, group, measure, steps=None, progress=None, labels=None):
    """Every mixed partial of ``measure`` over the subsets of ``group``, from one training run.

    Parameters
    ----------
    model, init_params, docs, steps, progress : as for :func:`taylorsketch.train`
    group : sequence of members, each a document index or a list of indices (1..12 members)
    measure : callable ``params -> scalar`` (or a :class:`~taylorsketch.measure.Measure`)
    labels : optional names of the members (default: their documents)

    Returns
    -------
    Interactions
    """
    docs = list(docs)
    members, directions = group_directions(len(docs), group)
    phi = as_measure(measure)
    if labels is None:
        labels = [" + ".join(_label(docs[i], i) for i in m) for m in members]
    elif len(labels) != len(members):
        raise ValueError(f"{len(labels)} labels for {len(members)} group members")
    weights = MultiJet.from_directions(np.zeros(len(docs)), directions)
    params = train(model, init_params, docs, steps=steps, weights=weights, progress=progress)
    value = phi(params)
    if not isinstance(value, MultiJet):
        raise ValueError("the measurement does not depend on the parameters it is given "
                         "(it must be written with ts operations)")
    if value.size != 1:
        raise ValueError(f"the measurement must be a scalar; got shape {value.shape}")
    mixed = value.coefficients().reshape(-1)
    if np.iscomplexobj(mixed):
        mixed = mixed.real
    if not np.all(np.isfinite(mixed)):
        raise ValueError("the measurement's mixed partials are not finite")
    return Interactions(np.asarray(mixed, dtype=float), members, [str(x) for x in labels], phi.name)


def _label(doc, index):
    return repr(doc) if isinstance(doc, str) else f"doc {index}"
