"""A deterministic local text embedding: feature hashing of words (the "hashing trick").

No model download, no network, the same vector in every process (hashlib, not the salted
built-in hash), so retrieval works offline and tests can assert which guidelines come back.
Good enough to match `eval(` in code with the guideline about eval; not a semantic model.
Stop words are dropped and there are no word pairs: with a dozen short guidelines, both only
added hash collisions that pushed unrelated guidelines up.
"""

from __future__ import annotations

import hashlib
import math
import re

DIMENSIONS = 1024
_TOKEN = re.compile(r"[a-z0-9]+")
# fmt: off
_STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in",
    "is", "it", "of", "on", "or", "so", "that", "the", "this", "to", "with",
))
# fmt: on


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers, stop words dropped; the sparse BM25 vectors use the same ones, stemmed."""
    return [w for w in _TOKEN.findall(text.lower()) if w not in _STOP_WORDS]


def _features(text: str) -> list[str]:
    return tokens(text) or ["<empty>"]


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """A unit-length vector: each feature adds +1 or -1 (by hash) to one of `dimensions` slots."""
    vector = [0.0] * dimensions
    for feature in _features(text):
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        vector[digest % dimensions] += 1.0 if digest >> 63 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:  # every feature cancelled out; any fixed unit vector will do
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]
