"""Documents and vocabularies: the names dataset shipped with the package, and
the character vocabulary of the paper's MicroGPT (sorted characters plus BOS)."""

from dataclasses import dataclass
from importlib import resources

import numpy as np


def load_names():
    """The names dataset (32,033 lowercase names, one per line), as shipped.

    Documents are the stripped non-empty lines, in file order.
    """
    text = resources.files("taylorsketch").joinpath("data/names.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.strip().split("\n") if line.strip()]


@dataclass(frozen=True)
class Vocab:
    """Characters ``chars`` (ids 0..len-1) plus one BOS token with the next id.

    >>> v = Vocab.from_documents(["ab", "ba"])
    >>> v.encode("ab"), v.size
    (array([2, 0, 1, 2]), 3)
    """

    chars: str

    def __post_init__(self):
        if not isinstance(self.chars, str):
            raise TypeError(f"Vocab chars must be a string; got {type(self.chars).__name__}")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(f"Vocab chars must be distinct characters; got {self.chars!r}")

    @classmethod
    def from_documents(cls, docs):
        return cls("".join(sorted(set("".join(docs)))))

    @property
    def bos(self):
        return len(self.chars)

    @property
    def size(self):
        return len(self.chars) + 1

    def encode(self, doc):
        """``[BOS] + ids + [BOS]``; unknown characters and empty documents are errors."""
        if not isinstance(doc, str):
            raise TypeError(f"a document must be a string; got {type(doc).__name__}")
        if not doc:
            raise ValueError("empty document: a document needs at least one character")
        ids = [self.chars.find(ch) for ch in doc]
        if -1 in ids:
            bad = sorted({ch for ch, i in zip(doc, ids) if i == -1})
            raise ValueError(f"document {doc!r} has characters outside the vocabulary: {bad}")
        return np.array([self.bos] + ids + [self.bos])

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids if i != self.bos)
