"""When do two texts mean the same? The semantic cache's similarity, offline and deterministic.

Embeddings: WordLlama's `l2_supercat` token embeddings (256 dimensions, 32,000 tokens of the Llama 2
tokenizer), which ship inside the `wordllama` wheel: a text is the mean of its tokens' vectors, so
nothing is downloaded and there is no neural network to run (well under a millisecond a text).
The 16 MB of float16 weights are memory-mapped, not read; the tokenizer takes about 18 MB. The
files are used straight from the installed package, without importing it: its `__init__`
configures the root logger, and its loader looks for the tokenizer where the wheel does not put
it and would then try the network.

A mean of token vectors alone cannot tell "a haiku about the ocean" from "a haiku about the desert"
(cosine 0.82), and a wrong cache hit is worse than a miss, so `similarity` is stricter:

- prose (prompt-reviewer): texts are normalized (Unicode, case, contractions, "no more than" -> "at
  most", number words -> digits). Numbers, operators and words that flip a meaning (negations,
  only/except, more/less, most/least, ascending/descending, before/after, first/last, from,
  always/never, months, weekdays, gendered words) must match exactly. Every other content word of
  each text must appear in the other (same word or same stem) or have a close synonym there: the
  similarity is the lower of the two texts' cosine and the weakest word's best match (a BERTScore-
  like alignment over the same token vectors). "ocean"/"sea" 0.68, "husband"/"wife" 0.71, "kids"/
  "children" 0.88.
- code (code-critic): comments and layout do not count (TODO/FIXME/XXX/HACK markers do); the rest
  must be the same sequence of tokens, string quotes aside. Renaming a variable changes what a
  review has to say, so it is not a paraphrase. The embedding only finds the candidates.

`tests/paraphrase_pairs.py` labels pairs of each kind; `tests/benchmark.py` measures precision and
recall at the threshold against them and compares the hashing embedding of `agent/embedding.py`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import struct
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

PROSE = "prose"
CODE = "code"

WEIGHTS_FILE = "weights/l2_supercat_256.safetensors"
TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
DIMENSIONS = 256

Vector = NDArray[np.float32]


class EmbeddingUnavailableError(RuntimeError):
    """The wordllama package, or one of its files, is not installed."""


def map_safetensor(path: Path, name: str) -> NDArray[np.float16]:
    """A float16 tensor of a .safetensors file, memory-mapped read-only rather than read.

    The format is an 8-byte little-endian header length, a JSON header (dtype, shape and byte
    offsets of each tensor) and the data. Mapped, only the rows of the tokens a process meets are
    read, and they stay clean file pages the kernel can drop: the agent does not hold 16 MB.
    """
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    meta = header.get(name)
    if not isinstance(meta, dict) or meta.get("dtype") != "F16" or len(meta.get("shape", ())) != 2:
        raise EmbeddingUnavailableError(f"{path.name} has no 2-dimensional float16 tensor {name!r}")
    start, end = meta["data_offsets"]
    rows, columns = meta["shape"]
    if end - start != rows * columns * 2:
        raise EmbeddingUnavailableError(f"{path.name}: the size of {name!r} does not match its shape")
    return np.memmap(path, dtype=np.float16, mode="r", offset=8 + length + start, shape=(rows, columns))


class EmbeddingModel:
    """Static token embeddings: a text's vector is the unit-length mean of its tokens' vectors."""

    # The BPE tokenizer caches the tokens of each "word" it has seen, 10,000 by default; this one has
    # no pre-tokenizer, so a word is a whole text: up to tens of MB of old texts. Off: 0.2 ms a text.
    TOKENIZER_CACHE_WORDS = 0

    def __init__(self, weights: NDArray[Any], tokenizer: Any) -> None:
        self.weights = weights
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        resize = getattr(self.tokenizer.model, "_resize_cache", None)
        if resize is not None:  # tokenizers >= 0.20
            resize(self.TOKENIZER_CACHE_WORDS)

    @classmethod
    def load(cls) -> EmbeddingModel:
        """From the installed wordllama wheel; EmbeddingUnavailableError if it is not there."""
        spec = importlib.util.find_spec("wordllama")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddingUnavailableError("the wordllama package is not installed")
        root = Path(next(iter(spec.submodule_search_locations)))
        weights_path, tokenizer_path = root / WEIGHTS_FILE, root / TOKENIZER_FILE
        if not weights_path.is_file() or not tokenizer_path.is_file():
            raise EmbeddingUnavailableError(f"wordllama has no {WEIGHTS_FILE} and {TOKENIZER_FILE}")
        # A few words at a time need no thread pool (one per core of the node, not of the container).
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from tokenizers import Tokenizer  # noqa: PLC0415 (only a process with the cache on needs it)

        return cls(map_safetensor(weights_path, "embedding.weight"), Tokenizer.from_file(str(tokenizer_path)))

    @property
    def dimensions(self) -> int:
        return int(self.weights.shape[1])

    def _pool(self, ids: list[int]) -> Vector:
        if not ids:
            return np.zeros(self.dimensions, dtype=np.float32)
        vector = self.weights[np.clip(ids, 0, self.weights.shape[0] - 1)].astype(np.float32).mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed(self, text: str) -> Vector:
        """The unit-length vector of a text (zeros for an empty one)."""
        return self._pool(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_words(self, words: list[str]) -> NDArray[np.float32]:
        """One unit-length row per word, each embedded as it appears inside a sentence (after a space)."""
        encodings = self.tokenizer.encode_batch([f" {w}" for w in words], add_special_tokens=False)
        return np.stack([self._pool(e.ids) for e in encodings]) if words else np.zeros((0, self.dimensions))


_shared: EmbeddingModel | None = None
_shared_lock = threading.Lock()


def shared_model() -> EmbeddingModel:
    """The process's one model, loaded on first use (about 0.1 s; the tokenizer's 18 MB)."""
    global _shared  # noqa: PLW0603 (a process-wide, read-only singleton)
    with _shared_lock:
        if _shared is None:
            _shared = EmbeddingModel.load()
        return _shared


# --- prose ------------------------------------------------------------------------------------

_CONTRACTIONS = {
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "isn't": "is not",
    "aren't": "are not",
    "wasn't": "was not",
    "weren't": "were not",
    "shouldn't": "should not",
    "mustn't": "must not",
    "wouldn't": "would not",
    "couldn't": "could not",
    "haven't": "have not",
    "hasn't": "has not",
    "i'm": "i am",
    "you're": "you are",
    "it's": "it is",
    "let's": "let us",
}
_CONTRACTION = re.compile(r"\b(?:" + "|".join(re.escape(c) for c in _CONTRACTIONS) + r")\b")
_PHRASES = (
    (re.compile(r"\bno more than\b"), "at most"),
    (re.compile(r"\bnot more than\b"), "at most"),
    (re.compile(r"\bno (?:less|fewer) than\b"), "at least"),
    (re.compile(r"\bup to\b"), "at most"),
)
_NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "thirty": "30",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "single": "1",
    "once": "1",
    "twice": "2",
    "dozen": "12",
    "half": "0.5",
}
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b")
# Words whose change flips what is asked: compared exactly. A word maps to its group's spelling.
_FLIP_GROUPS: tuple[tuple[str, ...], ...] = (
    ("not", "no", "never", "none", "nothing", "without", "nor", "neither", "nobody", "nowhere"),
    ("only", "exclusively", "solely", "just"),
    ("except", "but", "unless", "excluding", "including"),
    ("most", "max", "maximum"),
    ("least", "min", "minimum"),
    ("more", "less", "fewer", "higher", "lower", "greater", "smaller", "larger", "bigger", "shorter", "longer"),
    ("ascending", "descending", "increasing", "decreasing", "increase", "decrease"),
    ("before", "after", "first", "last", "next", "previous", "earlier", "later"),
    ("always", "sometimes", "often", "rarely", "usually"),
    ("from", "above", "below", "under", "over", "between"),
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october"),
    ("november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ("he", "she", "him", "her", "his", "hers", "man", "woman", "men", "women", "boy", "girl", "male", "female"),
    ("husband", "wife", "father", "mother", "son", "daughter", "brother", "sister", "king", "queen"),
)
_FLIP = {word: word for group in _FLIP_GROUPS for word in group} | {
    "maximum": "max",
    "minimum": "min",
    "exclusively": "only",
    "solely": "only",
}
# fmt: off
_STOP_WORDS = frozenset((
    "a", "an", "the", "to", "into", "onto", "of", "for", "in", "on", "at", "with", "this", "that", "these",
    "those", "it", "its", "is", "are", "be", "been", "being", "am", "as", "and", "or", "so", "by", "i", "me", "my",
    "mine", "you", "your", "yours", "we", "us", "our", "they", "them", "their", "there", "here", "what", "which",
    "who", "whom", "how", "do", "does", "did", "done", "please", "kindly", "can", "could", "would", "will",
    "shall", "should", "may", "might", "must", "also", "very", "really", "some", "any", "all", "each", "every",
    "such", "then", "than", "about",
))
# fmt: on
_WORD = re.compile(r"[a-z0-9_]+(?:'[a-z]+)?")
_OPERATORS = re.compile(r"[+*/%=<>&|^~$€£#@]+|(?<=\s)-(?=\s)|!=")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def stem(word: str) -> str:
    """A crude suffix stripper, the same on both sides: summarise/summarize/summarizing -> summar."""
    word = re.sub(r"(?<=[a-z]{3})is(e|es|ed|ing|ation|ations)$", r"iz\1", word)
    for suffix in (
        "izations",
        "ization",
        "ations",
        "ation",
        "izing",
        "ings",
        "ing",
        "ies",
        "ied",
        "ed",
        "es",
        "s",
        "e",
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not (suffix == "s" and word.endswith("ss")):
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


def _normalize_prose(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _CONTRACTION.sub(lambda m: _CONTRACTIONS[m.group(0)], text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    text = _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m.group(0)], text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass(frozen=True)
class Features:
    """What a text is compared by."""

    kind: str
    normalized: str
    """The text that is embedded."""
    exact: tuple[str, ...]
    """Tokens that must be the same on both sides (sorted for prose, in order for code)."""
    content: frozenset[str] = frozenset()
    """Prose: words matched by stem or by a close synonym."""

    @property
    def stems(self) -> frozenset[str]:
        return frozenset(stem(w) for w in self.content)


def prose_features(text: str) -> Features:
    normalized = _normalize_prose(text)
    words = [w.removesuffix("'s") for w in _WORD.findall(normalized)]
    operators = _OPERATORS.findall(_WORD.sub(" ", normalized))
    exact = [f"#{w}" for w in words if w.replace(".", "", 1).isdigit()]
    exact += [f"~{_FLIP[w]}" for w in words if w in _FLIP]
    exact += [f"!{op}" for op in operators]
    content = frozenset(w for w in words if w not in _STOP_WORDS and w not in _FLIP and not w[0].isdigit())
    return Features(PROSE, normalized, tuple(sorted(exact)), content)


# --- code -------------------------------------------------------------------------------------

_CODE_TOKEN = re.compile(
    r"""(?P<string>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)"""
    r"""|(?P<comment>\#(?!include|define|if|endif|pragma|import)[^\n]*|//[^\n]*|/\*[\s\S]*?\*/|(?:^|(?<=\s))--\s[^\n]*)"""
    r"""|(?P<word>[A-Za-z_][A-Za-z0-9_]*|\#[a-z]+)"""
    r"""|(?P<number>\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)"""
    r"""|(?P<symbol>==|!=|<=|>=|->|=>|\*\*|//|<<|>>|&&|\|\||\+=|-=|\*=|/=|\+\+|--|::|[^\s\w])""",
    re.MULTILINE,
)
_MARKER = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b")


def code_tokens(code: str) -> list[str]:
    """Identifiers, literals and symbols in order; comments dropped but their TODO-style markers kept."""
    tokens: list[str] = []
    for match in _CODE_TOKEN.finditer(code):
        kind, value = match.lastgroup, match.group(0)
        if kind == "comment":
            tokens += [f"#{marker}" for marker in _MARKER.findall(value)]
        elif kind == "string" and value[0] == "'" and not value.startswith("'''"):
            tokens.append('"' + value[1:-1] + '"')  # 'x' and "x" are the same string
        else:
            tokens.append(value)
    return tokens


def code_features(code: str) -> Features:
    tokens = code_tokens(code)
    return Features(CODE, " ".join(tokens), tuple(tokens))


# --- similarity -------------------------------------------------------------------------------


class Matcher:
    """Features, vectors and similarity for one kind of text (PROSE or CODE)."""

    def __init__(self, model: EmbeddingModel, kind: str) -> None:
        if kind not in (PROSE, CODE):
            raise ValueError(f"kind must be {PROSE} or {CODE}, got {kind!r}")
        self.model = model
        self.kind = kind

    def features(self, text: str) -> Features:
        return prose_features(text) if self.kind == PROSE else code_features(text)

    def vector(self, features: Features) -> Vector:
        return self.model.embed(features.normalized)

    def similarity(self, a: Features, b: Features, va: Vector | None = None, vb: Vector | None = None) -> float:
        """In [0, 1]; 1 for texts that are the same after normalization, 0 when an exact token differs."""
        if a.exact != b.exact:
            return 0.0
        if a.normalized == b.normalized:
            return 1.0
        va = self.vector(a) if va is None else va
        vb = self.vector(b) if vb is None else vb
        score = max(0.0, min(1.0, float(np.dot(va, vb))))
        for one, other in ((a, b), (b, a)):
            other_stems = other.stems
            unmatched = sorted(w for w in one.content - other.content if stem(w) not in other_stems)
            if not unmatched:
                continue
            if not other.content:
                return 0.0
            similarities = self.model.embed_words(unmatched) @ self.model.embed_words(sorted(other.content)).T
            score = min(score, float(similarities.max(axis=1).min()))
        return max(0.0, score)
