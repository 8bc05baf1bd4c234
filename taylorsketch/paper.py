"""The paper's set-up, with its random streams (method.md section 4).

``random.Random(seed)`` shuffles the documents, then draws every parameter
with ``gauss(0, 0.08)`` in the paper's order.  With seed 42 this reproduces
the paper's code exactly.
"""

import random
from dataclasses import dataclass

from .data import Vocab, load_names
from .models import GPTConfig, MicroGPT


@dataclass
class PaperSetup:
    docs: list      # every document, shuffled as the paper's code shuffles them
    vocab: Vocab
    init: dict      # parameter name -> array, in the paper's order
    seed: int
    sizes: dict     # n_layer, n_embd, n_head, block_size

    def model(self):
        """The MicroGPT these parameters belong to."""
        return MicroGPT(self.vocab, **self.sizes)


def setup(seed=42, n_layer=GPTConfig.n_layer, n_embd=GPTConfig.n_embd, n_head=GPTConfig.n_head,
          block_size=GPTConfig.block_size):
    """The paper's documents, vocabulary and initial parameters.

    >>> import taylorsketch as ts
    >>> s = ts.paper.setup(seed=42)
    >>> len(s.docs), s.vocab.size, s.init["wte"][0, :2].round(6).tolist()
    (32033, 27, [-0.042732, 0.076961])
    """
    rng = random.Random(seed)
    docs = load_names()
    rng.shuffle(docs)
    vocab = Vocab.from_documents(docs)
    sizes = {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "block_size": block_size}
    model = MicroGPT(vocab, **sizes)
    return PaperSetup(docs=docs, vocab=vocab, init=model.init_params(rng=rng), seed=seed, sizes=sizes)
