"""Reorder retrieved guidelines by meaning: WordLlama's cosine of the text and each guideline.

Both of Qdrant's vectors count words, so a prompt that shares no word with the guideline it needs
("Write a cover letter for me." and "Provide context") gets it ranked by chance; the static token
embeddings of semantic.py (the cache's model, already loaded) know related words. Alone they are
the weaker signal: ordering by the cosine alone scored below no reranking on recall@1, recall@3
and MRR of the evaluation set. So the cosine's order is fused with Qdrant's by reciprocal rank,
with the usual k of 60 (not tuned on the set): better on all three (README, "Retrieval").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from agent.retrieval import document
from agent.roles import Guideline
from agent.semantic import EmbeddingModel, EmbeddingUnavailableError, Vector, shared_model

logger = logging.getLogger(__name__)

RANK_CONSTANT = 60


class Reranker:
    def __init__(self, model: EmbeddingModel) -> None:
        self.model = model
        self._vectors: dict[str, Vector] = {}

    def _vector(self, guideline: Guideline) -> Vector:
        text = document(guideline)
        if text not in self._vectors:  # a dozen guidelines: kept for the process's life
            self._vectors[text] = self.model.embed(text)
        return self._vectors[text]

    def rerank(self, text: str, guidelines: Sequence[Guideline]) -> list[Guideline]:
        """`guidelines` (in Qdrant's order) by the sum of 1 / (k + rank) in both orders."""
        query = self.model.embed(text)
        similarity = [float(np.dot(query, self._vector(g))) for g in guidelines]
        by_meaning = sorted(range(len(guidelines)), key=lambda i: -similarity[i])
        meaning_rank = {i: rank for rank, i in enumerate(by_meaning)}
        fused = sorted(
            range(len(guidelines)),
            key=lambda i: -(1 / (RANK_CONSTANT + i + 1) + 1 / (RANK_CONSTANT + meaning_rank[i] + 1)),
        )
        return [guidelines[i] for i in fused]


def make_reranker() -> Reranker | None:
    """The reranker, or None where the embedding model is not installed (retrieval goes on without it)."""
    try:
        return Reranker(shared_model())
    except EmbeddingUnavailableError as exc:
        logger.warning("retrieval reranking off: no embedding model (%s)", exc)
        return None
