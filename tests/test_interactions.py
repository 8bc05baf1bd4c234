"""``ts.interactions`` and ``taylorsketch interactions``: mixed partials of a training run.

Oracles, each independent of the subset transforms:

* nested central differences of retraining (plain float training runs),
  Richardson-extrapolated, for groups of 2 and 3 members;
* polarisation through one univariate Jet training of order d along the
  unions of the members' indicators;
* a group of one against ``Jet`` of order 1 along that member's indicator.
"""

import itertools
import json

import numpy as np
import pytest

import taylorsketch as ts
from taylorsketch import Jet
from taylorsketch.cli import main
from taylorsketch.interaction import group_directions

DATA = ts.MLP.synthetic_dataset(10, seed=1)
MODEL = ts.MLP(n_in=2, n_hidden=5, n_out=1)
INIT = MODEL.init_params(seed=2)
STEPS = 14


def phi(params):
    return MODEL.loss(params, DATA[0])


def _retrained(weights):
    return phi(ts.train(MODEL, INIT, DATA, steps=STEPS, weights=weights, progress=False))


def _central_mixed(directions, subset, h):
    """``d^|S| g / prod dw`` by the tensor product of central differences: error ``O(h^2)``."""
    total = 0.0
    for signs in itertools.product([1.0, -1.0], repeat=len(subset)):
        w = sum(s * h * directions[i] for s, i in zip(signs, subset))
        total += np.prod(signs) * _retrained(w)
    return total / (2.0 * h) ** len(subset)


@pytest.mark.parametrize("group", [[3, 7], [1, [2, 5], 8]])
def test_mixed_partials_match_nested_differences_of_retraining(group):
    res = ts.interactions(MODEL, INIT, DATA, group, phi, steps=STEPS, progress=False)
    members, directions = group_directions(len(DATA), group)
    assert res.members == members
    assert res.base == pytest.approx(_retrained(np.zeros(len(DATA))), rel=1e-13)
    for mask in range(1, 1 << len(group)):
        subset = [i for i in range(len(group)) if mask >> i & 1]
        # Richardson: (4 D(h/2) - D(h)) / 3 leaves O(h^4); rounding ~ eps |g| / h^|S| ~ 1e-10
        h = 0.02
        want = (4.0 * _central_mixed(directions, subset, h / 2) - _central_mixed(directions, subset, h)) / 3.0
        scale = np.max(np.abs(res.mixed))
        assert res.coefficient(subset) == pytest.approx(want, rel=1e-5, abs=1e-6 * scale), subset


def test_mixed_partials_match_polarised_univariate_training():
    group = [0, [4, 6], 9]
    res = ts.interactions(MODEL, INIT, DATA, group, phi, steps=STEPS, progress=False)
    _, directions = group_directions(len(DATA), group)
    d = len(group)
    unions = np.stack([directions[[i for i in range(d) if mask >> i & 1]].sum(axis=0)
                       for mask in range(1, 1 << d)])
    jet = phi(ts.train(MODEL, INIT, DATA, steps=STEPS, progress=False,
                       weights=Jet.from_directions(np.zeros(len(DATA)), unions, order=d)))
    for mask in range(1, 1 << d):
        rank = bin(mask).count("1")
        want = sum((-1) ** (rank - bin(sub).count("1")) * jet.series[rank - 1, sub - 1]
                   for sub in range(1, mask + 1) if sub & mask == sub)
        assert res.mixed[mask] == pytest.approx(want, rel=1e-9, abs=1e-14)


def test_group_of_one_is_jet_of_order_one():
    res = ts.interactions(MODEL, INIT, DATA, [[2, 3]], phi, steps=STEPS, progress=False)
    indicator = np.zeros(len(DATA))
    indicator[[2, 3]] = 1.0
    jet = phi(ts.train(MODEL, INIT, DATA, steps=STEPS, progress=False,
                       weights=Jet.from_directions(np.zeros(len(DATA)), indicator[None], order=1)))
    np.testing.assert_allclose(res.mixed, jet.coefficients()[:, 0], rtol=1e-12, atol=1e-16)


def test_tiny_microgpt_mixed_partial_matches_differences_of_retraining():
    docs = ["ab", "ba", "abc", "cab", "bb"]
    model = ts.MicroGPT(ts.Vocab("abc"), n_embd=4, n_head=2, block_size=4)
    init = model.init_params(seed=3)
    measure = ts.measure.doc_loss(model, "abc")
    res = ts.interactions(model, init, docs, [1, 3], measure, progress=False)

    def g(a, b):
        return measure(ts.train(model, init, docs, weights=np.array([0, a, 0, b, 0.0]), progress=False))

    def mixed(h):
        return (g(h, h) - g(h, -h) - g(-h, h) + g(-h, -h)) / (4 * h * h)
    want = (4.0 * mixed(0.01) - mixed(0.02)) / 3.0
    assert res.mixed[0] == pytest.approx(g(0.0, 0.0), rel=1e-13)
    assert res.mixed[3] == pytest.approx(want, rel=1e-5, abs=1e-8)


# ----------------------------------------------------------------------------
# the result object


def test_result_multilinear_table_and_dict():
    mixed = np.array([1.0, 0.5, -0.25, 0.125, 2.0, -3.0, 0.01, 0.0])
    res = ts.Interactions(mixed, [(0,), (1,), (2, 3)], ["a", "b", "c+d"], "m")
    assert res.multilinear([]) == 1.0
    assert res.multilinear([0, 1]) == 1.0 + 0.5 - 0.25 + 0.125
    assert res.multilinear(0b101) == 1.0 + 0.5 + 2.0 - 3.0
    assert res.multilinear([0, 1, 2]) == pytest.approx(mixed.sum())
    rows = res.table(top=2)
    assert [(r["members"], r["value"]) for r in rows] == [([0, 2], -3.0), ([0, 1], 0.125)]
    assert rows[0]["labels"] == ["a", "c+d"] and rows[0]["order"] == 2
    assert [r["members"] for r in res.table(top=5, min_order=3)] == [[0, 1, 2]]
    out = res.as_dict(top=1)
    assert out["mixed"] == mixed.tolist() and out["base"] == 1.0 and len(out["table"]) == 1
    assert "{0,2}" in res.format(top=1)


@pytest.mark.parametrize("group, message", [
    (list(range(13)), "1..12 members"),
    ([], "1..12 members"),
    ([0, [1, 0]], "disjoint"),
    ([0, 10], "0..9"),
    ([0, []], "no document"),
    ([0, 1.5], "document index"),
    ([0, [1.5]], "integers"),
    (3, "sequence of members"),
])
def test_bad_group_is_refused(group, message):
    with pytest.raises(ValueError, match=message):
        ts.interactions(MODEL, INIT, DATA, group, phi, steps=2, progress=False)


def test_bad_measurement_is_refused():
    with pytest.raises(ValueError, match="scalar"):
        ts.interactions(MODEL, INIT, DATA, [0], lambda p: p["w1"], steps=2, progress=False)
    with pytest.raises(ValueError, match="does not depend"):
        ts.interactions(MODEL, INIT, DATA, [0], lambda p: 1.0, steps=2, progress=False)
    with pytest.raises(ValueError, match="not finite"), np.errstate(all="ignore"):
        ts.interactions(MODEL, INIT, DATA, [0], lambda p: phi(p) / 0.0, steps=2, progress=False)
    bad = {k: np.full_like(v, np.nan) for k, v in INIT.items()}
    with pytest.raises(ValueError, match="non-finite"):
        ts.interactions(MODEL, bad, DATA, [0], phi, steps=2, progress=False)


# ----------------------------------------------------------------------------
# the command


def test_cli_interactions_json(capsys):
    assert main(["--json", "interactions", "--n-docs", "12", "--steps", "6", "--group", "0,3+4",
                 "--top", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["members"] == [[0], [3, 4]] and len(out["mixed"]) == 4 and len(out["table"]) == 1
    assert out["measure"] == "loss('max')"


@pytest.mark.parametrize("group", ["0,x", "0,0", "0,999", ",".join(map(str, range(13)))])
def test_cli_interactions_bad_group_exits_2(group, capsys):
    assert main(["interactions", "--n-docs", "20", "--steps", "2", "--group", group]) == 2
    assert "taylorsketch interactions: error:" in capsys.readouterr().err
