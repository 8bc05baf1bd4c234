"""Adam, the paper's variant: epsilon inside the square root, linear learning-rate decay.

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    p <- p - lr_s (m / (1 - beta1^(s+1))) / sqrt(v / (1 - beta2^(s+1)) + eps)
    lr_s = lr (1 - s / total_steps)

With ``eps`` inside the root the update is analytic in ``g`` (``sqrt(v_hat) +
eps`` is not, at ``v_hat = 0``), which is what makes a whole training run
analytic in the loss weights.  The state works on a flat parameter vector,
plain or a Jet; for Jets one fused kernel updates every coefficient.
"""

from dataclasses import dataclass

import numba
import numpy as np

from . import _check, kernels
from ._config import PARALLEL_MIN_COEFFICIENTS
from .jet import Jet
from .multijet import MultiJet
from .multijet_rules import adam_update as multijet_adam_update


@dataclass
class Adam:
    """The paper's Adam (method.md section 4); ``eps = 1e-3`` sits inside the square root.

    >>> import numpy as np, taylorsketch as ts
    >>> opt = ts.Adam(total_steps=10)
    >>> p = np.zeros(3)
    >>> opt.step(p, np.array([1.0, -2.0, 0.0]))      # updates p in place
    >>> np.round(p, 4)
    array([-0.01,  0.01,  0.  ])
    """

    lr: float = 0.01
    beta1: float = 0.85
    beta2: float = 0.99
    eps: float = 1e-3
    total_steps: int = 1000

    def __post_init__(self):
        _check.real(self.lr, "lr", low=0.0)
        for name in ("beta1", "beta2"):
            value = _check.real(getattr(self, name), name, low=0.0)
            if value >= 1.0:
                raise ValueError(f"{name} must be in [0, 1); got {value}")
        if _check.real(self.eps, "eps") <= 0:
            raise ValueError(f"eps must be > 0 (it keeps the square root analytic); got {self.eps}")
        _check.integer(self.total_steps, "total_steps", low=1)
        self.t = 0
        self.m = None
        self.v = None

    def describe(self):
        """The settings (JSON-ready), as a sketch records them."""
        return {"optimizer": "Adam", "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2,
                "eps": self.eps, "schedule": "linear decay"}

    def learning_rate(self, step):
        return self.lr * (1.0 - step / self.total_steps)

    def step(self, params, grads):
        """One update of ``params`` (flat array or flat Jet) in place, with ``grads`` alike."""
        if self.m is None:
            self.m = _zeros_like(params)
            self.v = _zeros_like(params)
        lr = self.learning_rate(self.t)
        bias1 = 1.0 - self.beta1 ** (self.t + 1)
        bias2 = 1.0 - self.beta2 ** (self.t + 1)
        if isinstance(params, Jet):
            threads = numba.get_num_threads()
            if params.series.size < PARALLEL_MIN_COEFFICIENTS:
                numba.set_num_threads(1)
            try:
                fused = multijet_adam_update if isinstance(params, MultiJet) else kernels.adam_update
                fused(params.primal, self.m.primal, self.v.primal, grads.primal,
                      params.series, self.m.series, self.v.series, grads.series,
                      self.beta1, self.beta2, lr, bias1, bias2, self.eps)
            finally:
                numba.set_num_threads(threads)
        else:
            self.m *= self.beta1
            self.m += (1.0 - self.beta1) * grads
            self.v *= self.beta2
            self.v += (1.0 - self.beta2) * grads * grads
            params -= lr * (self.m / bias1) / np.sqrt(self.v / bias2 + self.eps)
        self.t += 1


def _zeros_like(x):
    if isinstance(x, Jet):
        return type(x).wrap(np.zeros_like(x.primal), np.zeros_like(x.series))
    return np.zeros_like(x)
