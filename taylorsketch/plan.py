"""Recorded training steps: one step's jet operations traced once, then replayed.

A training step in jet arithmetic is about 170 rule applications on small
arrays (paper MicroGPT), and most of its time went to Python: operator
dispatch, broadcasting, operand checks and the layers' own code around rules
whose kernels take microseconds.  The layers stay as they are (they are the
package's teaching material); instead the sequence of rule applications of one
step is *recorded* and afterwards *replayed*: the same rules, called with the
same parameters on the new step's arrays, in the same order, so a replayed
step is the eager step to the bit.  A rule with a specialization
(:func:`taylorsketch.rules.specialization`) is bound to what follows from its
recorded operands' layouts (shapes, dtypes, resolved axes), and the busiest
ones (products of matrices, products and quotients of series) are replaced by
their kernel calls worked out once: the rule's work without its checks and
dispatch, the same values.

What a step depends on
----------------------
A recording sees three kinds of values:

* jets made by recorded operations, and the step's *leaves* (the parameters,
  the loss weight): slots of the plan, recomputed at every replay;
* plain arrays made by :func:`array_operation` (the softmax shift, a primal
  maximum; the one-hot of the targets): recomputed at every replay too;
* everything else is a literal, fixed in the plan -- except an index that is
  (a slice of) one of the step's *inputs*, the arrays of the encoded
  document, which is read from the new document at every replay.

Two documents with the same input shapes give the same plan.  A plan is made
from two recordings of such documents and only if they agree in every
operation, parameter and literal (a literal that differed would be a value the
plan cannot recompute); otherwise that shape runs eagerly.  So every step is
either an eager step or the replay of a plan that two eager steps have
confirmed.  This holds for models written with ``ts`` operations whose
document- or value-dependent arrays go through :func:`array_operation` or are
indices of the inputs, as the layers of :mod:`taylorsketch.nn` are.
"""

import weakref
from functools import partial

import numpy as np

from .jet import RECORDING, Jet
from .rules import SPECIALIZED

RULE, ARRAY = 0, 1


class Unplannable(Exception):
    """A step that a plan cannot replay (the reason says why); it runs eagerly."""


def array_operation(fn, *args, **params):
    """``fn(*args, **params)`` on plain arrays, as a step that a recording sees.

    A Jet among ``args`` is passed as its primal.  Use it for an array that a
    model computes from a jet's primal or from the document (so that a
    replayed step computes it again), e.g. the shift of a softmax.
    """
    value = fn(*[a.primal if isinstance(a, Jet) else a for a in args], **params)
    recorder = getattr(RECORDING, "active", None)
    if recorder is not None:
        recorder.array_operation(fn, args, params, value)
    return value


class Recorder:
    """Records the rule applications of one step (a context manager).

    ``leaves`` are the jets the step starts from (slots ``0..L-1``), ``inputs``
    the arrays of the encoded document.
    """

    def __init__(self, leaves, inputs):
        self.inputs = inputs
        self.slots = {}          # id of a live jet or tracked array -> slot
        self.refs = []           # weak references that drop a value's id when it dies
        self.n_slots = 0
        self.program = []
        for leaf in leaves:
            self._new_slot(leaf)
        self.n_leaves = len(leaves)

    def __enter__(self):
        self.outer = getattr(RECORDING, "active", None)
        RECORDING.active = self
        return self

    def __exit__(self, *exc):
        RECORDING.active = self.outer

    def _new_slot(self, value):
        """A new slot for ``value``.  The value is not kept alive (a step's temporaries
        die as in an eager step); its id is forgotten when it dies, before the id
        can be reused."""
        key = id(value)
        self.slots[key] = slot = self.n_slots
        self.n_slots += 1
        self.refs.append(weakref.ref(value, lambda _, key=key, slots=self.slots: slots.pop(key, None)))
        return slot

    def _ref(self, value):
        """A slot number, an :class:`Input`, or ``(literal,)`` for a value the plan fixes."""
        slot = self.slots.get(id(value))
        if slot is not None:
            return slot
        if isinstance(value, Jet):
            raise Unplannable(f"an operand ({value!r}) was not made by a recorded operation")
        recipe = self._template(value) if isinstance(value, np.ndarray) else None
        return recipe if isinstance(recipe, Input) else (value,)

    def operation(self, name, operands, params, result):
        if type(result) is not Jet:
            raise Unplannable(f"a {type(result).__name__} operation ({name})")
        args = tuple(self._ref(o) for o in operands)
        layouts = tuple(layout(o) for o in operands) + (layout(result),)
        self.program.append((RULE, name, args, self._params(params), self._new_slot(result), layouts))

    def array_operation(self, fn, args, params, value):
        args = tuple(self._ref(a) for a in args)
        self.program.append((ARRAY, fn, args, self._params(params), self._new_slot(value), None))

    def _params(self, params):
        """Parameters as a template: indices drawn from the inputs become ``Input`` recipes."""
        return {key: self._template(value) for key, value in params.items()}

    def _template(self, value):
        if isinstance(value, tuple):
            return tuple(self._template(v) for v in value)
        if isinstance(value, np.ndarray):
            for k, source in enumerate(self.inputs):
                recipe = Input.of(value, source, k)
                if recipe is not None:
                    return recipe
        return value

    def finish(self):
        """Let go of the recorded values (only their slot numbers are kept)."""
        self.refs = self.slots = None

    def outputs(self, values):
        """Slots of the step's outputs (jets made by the recording)."""
        out = []
        for value in values:
            if type(value) is not Jet or id(value) not in self.slots:
                raise Unplannable("an output of the step is not a jet made by a recorded operation")
            out.append(self.slots[id(value)])
        return out


def layout(value):
    """``(primal shape, primal dtype, series shape, series dtype)`` of a jet, with
    ``None`` for the series of an array: what a rule's specialization may assume
    (:func:`taylorsketch.rules.specialization`)."""
    if isinstance(value, Jet):
        return np.shape(value.primal), np.asarray(value.primal).dtype, value.series.shape, value.series.dtype
    return np.shape(value), np.asarray(value).dtype, None, None


class Input:
    """An index that is input ``k`` of the step, or the contiguous 1-D slice
    ``[start:start + length]`` of it."""

    __slots__ = ("k", "start", "length")

    def __init__(self, k, start, length):
        self.k, self.start, self.length = k, start, length

    @classmethod
    def of(cls, value, source, k):
        if value is source:
            return cls(k, None, None)
        if not (isinstance(source, np.ndarray) and source.ndim == value.ndim == 1 and source.size
                and value.dtype == source.dtype and value.strides == source.strides == (source.itemsize,)):
            return None
        offset = value.ctypes.data - source.ctypes.data
        if 0 <= offset and offset + value.nbytes <= source.nbytes:
            return cls(k, offset // source.itemsize, value.size)
        return None

    def resolve(self, inputs):
        source = inputs[self.k]
        return source if self.start is None else source[self.start:self.start + self.length]

    def __eq__(self, other):
        return isinstance(other, Input) and (self.k, self.start, self.length) == (other.k, other.start, other.length)

    def __hash__(self):
        return hash((self.k, self.start, self.length))


def _resolve(value, inputs):
    if isinstance(value, Input):
        return value.resolve(inputs)
    if isinstance(value, tuple):
        return tuple(_resolve(v, inputs) for v in value)
    return value


def _has_inputs(value):
    if isinstance(value, Input):
        return True
    if isinstance(value, tuple):
        return any(_has_inputs(v) for v in value)
    if isinstance(value, dict):
        return any(_has_inputs(v) for v in value.values())
    return False


def same(a, b):
    """Two recorded values equal in kind, shape, dtype and every element (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (type(a) is type(b) and len(a) == len(b)) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


class Plan:
    """A confirmed recording, replayed on the leaves and inputs of a new step.

    Every value of the step has a slot, with its primal and its series (None
    for a plain array) in two lists: the recorded values, then the literals
    (filled once), then the indices read from the inputs (filled per replay).
    """

    def __init__(self, recorder, outputs, rules, specialized=None):
        self.n_leaves = recorder.n_leaves
        self.outputs = outputs
        self.primals = [None] * recorder.n_slots
        self.recipes = []                      # (slot, Input)
        slot_of = {}

        def slot(arg):
            if type(arg) is int:
                return arg
            key = id(arg[0]) if type(arg) is tuple else arg
            if key not in slot_of:
                slot_of[key] = len(self.primals)
                if type(arg) is tuple:
                    self.primals.append(arg[0])
                else:
                    self.primals.append(None)
                    self.recipes.append((slot_of[key], arg))
            return slot_of[key]

        program = []
        for kind, fn, args, params, out, layouts in recorder.program:
            indexed = _has_inputs(params)
            if kind == RULE:
                fn, params = _specialized(rules[fn], (specialized or {}).get(fn), layouts, params, indexed)
            program.append((kind == RULE, fn, tuple(slot(a) for a in args), params, indexed, out))
        # a value is let go after its last use, as an eager step's temporaries are
        # (at many directions they are the step's memory); leaves, literals, input
        # indices and outputs stay
        last_use = {}
        for position, entry in enumerate(program):
            last_use[entry[5]] = position          # a value nothing reads goes at once
            for a in entry[2]:
                last_use[a] = position
        keep = set(range(self.n_leaves)) | set(outputs) | set(range(recorder.n_slots, len(self.primals)))
        release = [[] for _ in program]
        for a, position in last_use.items():
            if a not in keep:
                release[position].append(a)
        self.program = [(_call_kind(is_rule, args, params, indexed), is_rule, fn, args, params, indexed, out,
                         tuple(done)) for (is_rule, fn, args, params, indexed, out), done in zip(program, release)]
        self.series = [None] * len(self.primals)

    @classmethod
    def confirmed(cls, first, second, outputs_first, outputs_second, rules, specialized=None):
        """The plan of two recordings of steps with equal input shapes, if they agree
        (rules with an entry in ``specialized`` are specialized to their layouts)."""
        if first.n_leaves != second.n_leaves or len(first.program) != len(second.program):
            raise Unplannable("the two recorded steps ran different numbers of operations")
        if outputs_first != outputs_second:
            raise Unplannable("the two recorded steps have different outputs")
        for a, b in zip(first.program, second.program):
            if a[:2] != b[:2] or a[4:] != b[4:] or not same(a[2], b[2]) or not same(a[3], b[3]):
                raise Unplannable(f"the two recorded steps differ at a {a[1]!r} operation "
                                  f"(a value the plan would fix changes from step to step)")
        return cls(first, outputs_first, rules, specialized)

    def replay(self, leaves, inputs):
        """The step's outputs (jets) from new ``leaves`` (jets) and ``inputs`` (arrays)."""
        primals, series = self.primals, self.series
        for k, leaf in enumerate(leaves):
            primals[k], series[k] = leaf.primal, leaf.series
        for k, recipe in self.recipes:
            primals[k] = recipe.resolve(inputs)
        for kind, is_rule, fn, args, params, indexed, out, done in self.program:
            if kind == UNARY:
                a, = args
                primals[out], series[out] = fn((primals[a],), (series[a],))
            elif kind == BINARY:
                a, b = args
                primals[out], series[out] = fn((primals[a], primals[b]), (series[a], series[b]))
            else:
                if indexed:
                    params = {key: _resolve(value, inputs) for key, value in params.items()}
                if is_rule:
                    primals[out], series[out] = fn(tuple([primals[a] for a in args]),
                                                   tuple([series[a] for a in args]), **params)
                else:
                    primals[out] = fn(*[primals[a] for a in args], **params)
            for a in done:
                primals[a] = series[a] = None
        outputs = [Jet.wrap(primals[k], series[k]) for k in self.outputs]
        for k in self.outputs:
            primals[k] = series[k] = None
        return outputs


UNARY, BINARY, OTHER = range(3)


def _call_kind(is_rule, args, params, indexed):
    """How a replay calls an entry: a rule of one or two operands without parameters
    (bound, or none) in a line of its own, the rest by the general call."""
    if not is_rule or params or indexed or len(args) > 2:
        return OTHER
    return UNARY if len(args) == 1 else BINARY


def _specialized(rule, plan, layouts, params, indexed):
    """``(rule, params)`` of a recorded rule application: the rule specialized to the
    recorded layouts (its parameters bound) where it has a specialization, else with
    its parameters bound (or as it is, where they are read from the inputs)."""
    extra = None if plan is None or indexed else plan(layouts, params)
    if not extra:
        return (rule, params) if indexed or not params else (partial(rule, **params), {})
    if set(extra) == {"_plan"}:              # the rule's work, planned: called as it is
        return extra["_plan"], {}
    return partial(rule, **params, **extra), {}


def inputs_of(encoded):
    """The arrays of an encoded document (an array, or a tuple of them)."""
    items = encoded if isinstance(encoded, tuple) else (encoded,)
    return tuple(np.asarray(item) if not isinstance(item, np.ndarray) else item for item in items)


def shape_key(inputs):
    return tuple((a.shape, a.dtype.str) for a in inputs)


class StepPlans:
    """``loss_and_grads`` of a model's jet training step, replayed where two steps confirmed a plan.

    For each shape of encoded document: the first step runs eagerly and is
    recorded, the second too and confirms (or refuses) a :class:`Plan`, the
    rest replay it.  ``stats`` counts eager and replayed steps and keeps the
    reasons of refusals.
    """

    def __init__(self, model, params):
        self.model = model
        self.params = params
        self.names = list(params)
        self.leaves = [params[n] for n in self.names]
        self.first = {}
        self.plans = {}
        self.refused = {}
        self.stats = {"eager": 0, "replayed": 0}

    def loss_and_grads(self, encoded, dloss):
        inputs = inputs_of(encoded)
        key = shape_key(inputs)
        plan = self.plans.get(key)
        if plan is not None and type(dloss) is Jet:
            self.stats["replayed"] += 1
            loss, *grads = plan.replay(self.leaves + [dloss], inputs)
            return loss, dict(zip(self.names, grads))
        self.stats["eager"] += 1
        if key in self.refused or type(dloss) is not Jet:
            return self.model.loss_and_grads(self.params, encoded, dloss)
        recorder = Recorder(self.leaves + [dloss], inputs)
        try:
            with recorder:
                loss, grads = self.model.loss_and_grads(self.params, encoded, dloss)
        except Unplannable as reason:      # the step stopped halfway: run it again, unrecorded
            self.refused[key] = str(reason)
            return self.model.loss_and_grads(self.params, encoded, dloss)
        try:
            outputs = recorder.outputs([loss] + [grads[n] for n in self.names])
            recorder.finish()
            if key in self.first:
                first, first_outputs = self.first.pop(key)
                self.plans[key] = Plan.confirmed(first, recorder, first_outputs, outputs, Jet.RULES, SPECIALIZED)
            else:
                self.first[key] = (recorder, outputs)
        except Unplannable as reason:
            self.first.pop(key, None)
            self.refused[key] = str(reason)
        return loss, grads
