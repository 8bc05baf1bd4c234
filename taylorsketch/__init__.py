"""taylorsketch: exact, fast Taylor-mode automatic differentiation, and the
data-deletion sketch of "How to sketch a learning algorithm" (Gunn, 2026).

>>> import taylorsketch as ts
>>> ts.taylor(ts.exp, 0.0, 1.0, order=3)
array([1.        , 1.        , 0.5       , 0.16666667])
"""

from .api import derivatives, taylor
from .functions import (compose, concatenate, cos, erf, exp, gelu, log, log_softmax, logsumexp,
                        matmul, mean, primal, reciprocal, reshape, scatter_add, sigmoid, sin,
                        softmax, sqrt, stack, sum, tanh, transpose)
from .jet import Jet
from .multijet import MultiJet, subset_convolution

__version__ = "0.1.0"

from . import nn, paper
from .data import Vocab, load_names
from .models import MLP, MicroGPT
from .optim import Adam
from .training import retrain, train
from .interaction import Interactions, interactions
from . import deletion, measure
from .estimator import Prediction, Stability
from .precomputation import precompute
from .sketch import Sketch
from .sketch_file import SketchFileError
from .validation import Validation, validate
