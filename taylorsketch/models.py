"""The learning circuits: the paper's MicroGPT and a small MLP.

Both are written in reading order with the layers of :mod:`taylorsketch.nn`;
the backward of each model calls the layer backwards in literal reverse order.
A model knows its parameter shapes, how to turn one training document into
arrays (``encode``), and its loss and gradient for one document
(``loss_and_grads``), where the gradient is seeded with ``dloss`` (the
paper's loss weight ``1 - w_i``, a float or a Jet).
"""

import math
import random
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from . import _check, nn
from .data import Vocab
from .functions import log_softmax, primal, softmax, tanh
from .jet import Jet


@dataclass(frozen=True)
class GPTConfig:
    """MicroGPT sizes; the defaults are the paper's (method.md section 4)."""

    vocab_size: int = 27
    n_layer: int = 1
    n_embd: int = 16
    n_head: int = 4
    block_size: int = 16
    init_std: float = 0.08

    def __post_init__(self):
        for name in ("vocab_size", "n_layer", "n_embd", "n_head", "block_size"):
            _check.integer(getattr(self, name), name, low=1)
        _check.real(self.init_std, "init_std", low=0.0)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not a multiple of n_head={self.n_head}")


class BlockCache(NamedTuple):
    """What one transformer block's backward needs, in the order of its forward:
    rmsnorm, linear, attention and GELU caches of :mod:`taylorsketch.nn`."""

    norm_attn: tuple
    wq: tuple
    wk: tuple
    wv: tuple
    att: tuple
    wo: tuple
    norm_mlp: tuple
    fc1: tuple
    act: object
    fc2: tuple


class TrunkCache(NamedTuple):
    """Embedding, input norm, one :class:`BlockCache` per layer, the head's linear cache."""

    emb: tuple
    norm_in: tuple
    blocks: list
    head: tuple


class GPTCache(NamedTuple):
    """The forward pass of one document: the trunk and the cross-entropy cache."""

    trunk: TrunkCache
    ce: tuple


class Model:
    """What every learning circuit shares: its loss and gradient for one document."""

    def loss_and_grads(self, params, encoded, dloss=1.0):
        """Loss on one encoded document and the gradients of ``dloss * loss``."""
        loss, cache = self.forward(params, encoded)
        return loss, self.backward(params, cache, dloss)

    def loss(self, params, doc):
        """Loss on one document: a float for plain parameters, a 0-d Jet for jet parameters."""
        loss, _ = self.forward(params, self.encode(doc))
        return loss if isinstance(loss, Jet) else float(loss)


class MicroGPT(Model):
    """A one-file character-level GPT (Karpathy's microgpt with the paper's changes).

    No biases, no norm gains, exact GELU, rmsnorm with eps 1e-5; weights stored
    ``(n_out, n_in)``.  Every method takes parameters as a dict of arrays or of
    Jets.

    >>> import taylorsketch as ts
    >>> model = ts.MicroGPT(ts.Vocab("abc"), n_embd=8, n_head=2)
    >>> params = model.init_params(seed=0)
    >>> round(model.loss(params, "abc"), 6) > 0
    True
    """

    def __init__(self, vocab, n_layer=GPTConfig.n_layer, n_embd=GPTConfig.n_embd, n_head=GPTConfig.n_head,
                 block_size=GPTConfig.block_size, init_std=GPTConfig.init_std):
        if isinstance(vocab, str):
            vocab = Vocab(vocab)
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a Vocab or a string of its characters; got {type(vocab).__name__}")
        self.vocab = vocab
        self.config = GPTConfig(self.vocab.size, n_layer, n_embd, n_head, block_size, init_std)

    def __repr__(self):
        return f"MicroGPT({', '.join(f'{k}={v}' for k, v in asdict(self.config).items())})"

    def describe(self):
        """JSON-ready description (stored in sketches)."""
        return {"model": "MicroGPT", "chars": self.vocab.chars, **asdict(self.config)}

    def param_shapes(self):
        """Parameter names and shapes, in the paper's initialisation order."""
        c = self.config
        shapes = {"wte": (c.vocab_size, c.n_embd), "wpe": (c.block_size, c.n_embd),
                  "lm_head": (c.vocab_size, c.n_embd)}
        for i in range(c.n_layer):
            shapes[f"layer{i}.attn_wq"] = (c.n_embd, c.n_embd)
            shapes[f"layer{i}.attn_wk"] = (c.n_embd, c.n_embd)
            shapes[f"layer{i}.attn_wv"] = (c.n_embd, c.n_embd)
            shapes[f"layer{i}.attn_wo"] = (c.n_embd, c.n_embd)
            shapes[f"layer{i}.mlp_fc1"] = (4 * c.n_embd, c.n_embd)
            shapes[f"layer{i}.mlp_fc2"] = (c.n_embd, 4 * c.n_embd)
        return shapes

    def init_params(self, seed=0, rng=None):
        """N(0, init_std^2) draws with Python's ``random`` in the paper's order
        (matrix by matrix, row by row); pass ``rng`` to continue a stream."""
        rng = random.Random(seed) if rng is None else rng
        std = self.config.init_std
        return {name: np.array([[rng.gauss(0, std) for _ in range(cols)] for _ in range(rows)])
                for name, (rows, cols) in self.param_shapes().items()}

    def encode(self, doc):
        return self.vocab.encode(doc)

    # -- forward and backward ------------------------------------------------

    def forward(self, params, tokens):
        """Loss of one encoded document (mean over its positions) and the cache for backward."""
        n = min(self.config.block_size, len(tokens) - 1)
        inputs, targets = tokens[:n], tokens[1:n + 1]
        logits, trunk = self._logits_forward(params, inputs)                   # (n, V)
        loss, ce = nn.cross_entropy_forward(logits, targets)
        return loss, GPTCache(trunk, ce)

    def _logits_forward(self, params, inputs):
        """The trunk: embeddings, the blocks, the head; logits (n, V) and their caches."""
        x, emb = nn.embedding_forward(params["wte"], params["wpe"], inputs)   # (n, C)
        x, norm_in = nn.rmsnorm_forward(x)
        blocks = []
        for i in range(self.config.n_layer):
            x, block = self._block_forward(params, f"layer{i}.", x)
            blocks.append(block)
        logits, head = nn.linear_forward(x, params["lm_head"])                 # (n, V)
        return logits, TrunkCache(emb, norm_in, blocks, head)

    def _block_forward(self, params, p, x):
        """One block: ``x + Wo attention(Wq h, Wk h, Wv h)``, ``h = rmsnorm(x)``, then
        ``x + W2 gelu(W1 rmsnorm(x))``."""
        h, norm_attn = nn.rmsnorm_forward(x)
        q, wq = nn.linear_forward(h, params[p + "attn_wq"])
        k, wk = nn.linear_forward(h, params[p + "attn_wk"])
        v, wv = nn.linear_forward(h, params[p + "attn_wv"])
        a, att = nn.attention_forward(q, k, v, self.config.n_head)
        o, wo = nn.linear_forward(a, params[p + "attn_wo"])
        x = x + o
        h2, norm_mlp = nn.rmsnorm_forward(x)
        f, fc1 = nn.linear_forward(h2, params[p + "mlp_fc1"])                  # (n, 4C)
        g, act = nn.gelu_forward(f)
        o2, fc2 = nn.linear_forward(g, params[p + "mlp_fc2"])
        return x + o2, BlockCache(norm_attn, wq, wk, wv, att, wo, norm_mlp, fc1, act, fc2)

    def backward(self, params, cache, dloss=1.0):
        """Gradients of ``dloss * loss`` for every parameter (a dict like ``params``)."""
        trunk = cache.trunk
        grads = {}
        dlogits = nn.cross_entropy_backward(dloss, cache.ce)
        dx, grads["lm_head"] = nn.linear_backward(dlogits, trunk.head)
        for i in reversed(range(self.config.n_layer)):
            dx = self._block_backward(dx, trunk.blocks[i], f"layer{i}.", grads)
        dx = nn.rmsnorm_backward(dx, trunk.norm_in)
        grads["wte"], grads["wpe"] = nn.embedding_backward(dx, trunk.emb)
        return {name: grads[name] for name in self.param_shapes()}

    @staticmethod
    def _block_backward(dx, c, p, grads):
        """The block's forward in literal reverse order; weight gradients go into ``grads``."""
        # MLP block: x = x + W2 gelu(W1 rmsnorm(x))
        dg, grads[p + "mlp_fc2"] = nn.linear_backward(dx, c.fc2)
        df = nn.gelu_backward(dg, c.act)
        dh2, grads[p + "mlp_fc1"] = nn.linear_backward(df, c.fc1)
        dx = dx + nn.rmsnorm_backward(dh2, c.norm_mlp)
        # attention block: x = x + Wo attention(Wq h, Wk h, Wv h), h = rmsnorm(x)
        da, grads[p + "attn_wo"] = nn.linear_backward(dx, c.wo)
        dq, dk, dv = nn.attention_backward(da, c.att)
        dh_q, grads[p + "attn_wq"] = nn.linear_backward(dq, c.wq)
        dh_k, grads[p + "attn_wk"] = nn.linear_backward(dk, c.wk)
        dh_v, grads[p + "attn_wv"] = nn.linear_backward(dv, c.wv)
        return dx + nn.rmsnorm_backward(dh_q + dh_k + dh_v, c.norm_attn)

    # -- measurements and sampling ---------------------------------------------

    def logprob(self, params, prefix, continuation):
        """``log P(continuation | BOS + prefix)`` (continuation may end with the BOS id
        when ``continuation`` ends in the string ``"$"``, meaning end of name)."""
        end = continuation.endswith("$")
        body = continuation[:-1] if end else continuation
        ids = [self.vocab.bos] + list(self.vocab.encode(prefix + body)[1:-1]) if prefix + body else [self.vocab.bos]
        if end:
            ids.append(self.vocab.bos)
        n_cont = len(body) + end
        if n_cont == 0:
            raise ValueError("logprob: empty continuation")
        tokens = np.array(ids)
        if len(tokens) - 1 > self.config.block_size:
            raise ValueError(f"logprob: prefix + continuation longer than block_size={self.config.block_size}")
        logits = self.logits(params, tokens[:-1])
        logp = log_softmax(logits, axis=-1)
        positions = np.arange(len(tokens) - 1 - n_cont, len(tokens) - 1)
        return logp[positions, tokens[positions + 1]].sum()

    def logits(self, params, inputs):
        """Next-token logits (n, V) for every position of ``inputs`` (ids, at most block_size)."""
        return self._logits_forward(params, inputs)[0]

    def sample(self, params, n=10, temperature=0.5, seed=0):
        """Draw ``n`` names from the model (plain or jet parameters; a jet's primal is used)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        params = {k: np.asarray(primal(v)) for k, v in params.items()}
        rng = np.random.default_rng(seed)
        names = []
        for _ in range(n):
            ids = [self.vocab.bos]
            while len(ids) <= self.config.block_size:
                logits = self.logits(params, np.array(ids[-self.config.block_size:]))[-1]
                p = softmax(logits / temperature)
                nxt = int(rng.choice(len(p), p=p))
                if nxt == self.vocab.bos:
                    break
                ids.append(nxt)
            names.append(self.vocab.decode(ids[1:]))
        return names


class MLP(Model):
    """A small multilayer perceptron, ``y = W2 tanh(W1 x + b1) + b2``, as a second
    learning circuit: regression (mean squared error) or classification
    (softmax cross-entropy).  Documents are ``(x, y)`` pairs.

    >>> import taylorsketch as ts
    >>> data = ts.MLP.synthetic_dataset(32, seed=0)
    >>> model = ts.MLP(n_in=2, n_hidden=8, n_out=1)
    >>> params = ts.train(model, model.init_params(seed=0), data, progress=False)
    >>> model.loss(params, data[0]) < model.loss(model.init_params(seed=0), data[0])
    True
    """

    def __init__(self, n_in=2, n_hidden=16, n_out=1, task="regression", init_std=None):
        _check.choice(task, "task", ("regression", "classification"))
        self.n_in, self.n_hidden, self.n_out = (_check.integer(value, name, low=1) for value, name in
                                                ((n_in, "n_in"), (n_hidden, "n_hidden"), (n_out, "n_out")))
        if task == "classification" and self.n_out < 2:
            raise ValueError(f"a classification MLP needs n_out >= 2 classes; got {self.n_out}")
        self.task = task
        self.init_std = None if init_std is None else _check.real(init_std, "init_std", low=0.0)

    def describe(self):
        return {"model": "MLP", "n_in": self.n_in, "n_hidden": self.n_hidden,
                "n_out": self.n_out, "task": self.task}

    def param_shapes(self):
        return {"w1": (self.n_hidden, self.n_in), "b1": (self.n_hidden,),
                "w2": (self.n_out, self.n_hidden), "b2": (self.n_out,)}

    def init_params(self, seed=0):
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape in self.param_shapes().items():
            fan_in = shape[-1] if len(shape) == 2 else 1
            std = self.init_std if self.init_std is not None else 1.0 / math.sqrt(fan_in)
            params[name] = rng.normal(0.0, std, shape) if len(shape) == 2 else np.zeros(shape)
        return params

    @staticmethod
    def synthetic_dataset(n, seed=0, task="regression", n_in=2, n_classes=3):
        """``n`` examples ``(x, y)``: ``x ~ N(0, I)``; regression targets
        ``sin(x_0) + x_1^2 / 2`` plus noise, or class labels from the angle of ``x``."""
        n = _check.integer(n, "n", low=1)
        _check.choice(task, "task", ("regression", "classification"))
        n_in = _check.integer(n_in, "n_in", low=2)
        n_classes = _check.integer(n_classes, "n_classes", low=2)
        rng = np.random.default_rng(seed)
        xs = rng.normal(size=(n, n_in))
        if task == "regression":
            ys = np.sin(xs[:, 0]) + 0.5 * xs[:, 1] ** 2 + 0.1 * rng.normal(size=n)
            return [(x, np.array([y])) for x, y in zip(xs, ys)]
        angle = np.arctan2(xs[:, 1], xs[:, 0])
        labels = ((angle + np.pi) / (2 * np.pi) * n_classes).astype(int) % n_classes
        return [(x, int(c)) for x, c in zip(xs, labels)]

    def encode(self, doc):
        try:
            x, y = doc
        except (TypeError, ValueError):
            raise ValueError("an MLP document must be a pair (x, y)") from None
        x = np.asarray(x, dtype=float).reshape(1, -1)
        if x.shape[1] != self.n_in or not np.all(np.isfinite(x)):
            raise ValueError(f"x must be {self.n_in} finite numbers; got {np.asarray(doc[0])!r}")
        if self.task == "classification":
            if not (isinstance(y, (int, np.integer)) and 0 <= y < self.n_out):
                raise ValueError(f"label must be an integer in 0..{self.n_out - 1}; got {y!r}")
            return x, np.array([int(y)])
        y = np.asarray(y, dtype=float).reshape(1, -1)
        if y.shape[1] != self.n_out:
            raise ValueError(f"y must have {self.n_out} numbers; got {np.asarray(doc[1])!r}")
        return x, y

    def forward(self, params, encoded):
        x, y = encoded                                             # (1, n_in), target
        z, fc1 = nn.linear_forward(x, params["w1"])                # (1, n_hidden)
        z = z + params["b1"]
        h = tanh(z)
        out, fc2 = nn.linear_forward(h, params["w2"])              # (1, n_out)
        out = out + params["b2"]
        if self.task == "regression":
            loss, lcache = nn.mse_forward(out, y)
        else:
            loss, lcache = nn.cross_entropy_forward(out, y)
        return loss, (fc1, h, fc2, lcache)

    def backward(self, params, cache, dloss=1.0):
        fc1, h, fc2, lcache = cache
        if self.task == "regression":
            dout = nn.mse_backward(dloss, lcache)
        else:
            dout = nn.cross_entropy_backward(dloss, lcache)
        grads = {"b2": dout.sum(axis=0)}
        dh, grads["w2"] = nn.linear_backward(dout, fc2)
        dz = dh * (1.0 - h * h)                                    # tanh' = 1 - tanh^2
        grads["b1"] = dz.sum(axis=0)
        _, grads["w1"] = nn.linear_backward(dz, fc1)
        return {name: grads[name] for name in self.param_shapes()}

    def predict(self, params, x):
        x = np.asarray(x, dtype=float).reshape(1, -1)
        h = tanh(nn.linear_forward(x, params["w1"])[0] + params["b1"])
        return (nn.linear_forward(h, params["w2"])[0] + params["b2"])[0]
