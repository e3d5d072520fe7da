"""Review guidelines in Qdrant: seeded on startup, searched for every review.

Qdrant may start after the agent, go away or lose the collection; the store never fails the
agent's startup and, while not ready, retries seeding (at most every `retry_interval_s`) from
the request path, so the collection appears as soon as Qdrant does.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable

from qdrant_client import QdrantClient, models

from agent.embedding import DIMENSIONS, embed
from agent.roles import Guideline, guidelines_for

logger = logging.getLogger(__name__)

# Point ids must be unsigned ints or UUIDs; deriving them from guideline ids makes upserts idempotent.
_ID_NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-5c6d-9e0f-112233445566")


def point_id(guideline_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, guideline_id))


class RetrievalError(RuntimeError):
    """Qdrant could not be reached or answered with an error."""


class GuidelineStore:
    """One role's guidelines in a shared collection, filtered by the `role` payload field."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        role: str,
        *,
        retry_interval_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.collection = collection
        self.role = role
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._next_attempt = 0.0

    @property
    def ready(self) -> bool:
        """Whether seeding succeeded; the last known state, no call to Qdrant."""
        return self._ready

    def ensure_seeded(self) -> int:
        """Create the collection if missing and upsert this role's guidelines; return how many."""
        with self._lock:
            return self._seed()

    def _seed(self) -> int:
        self._next_attempt = self._clock() + self.retry_interval_s
        try:
            self._create_collection_if_missing()
            guidelines = guidelines_for(self.role)
            self.client.upsert(
                collection_name=self.collection,
                points=[
                    models.PointStruct(
                        id=point_id(g.id),
                        vector=embed(f"{g.title}. {g.text}"),
                        payload={"guideline_id": g.id, "role": g.role, "title": g.title, "text": g.text},
                    )
                    for g in guidelines
                ],
                wait=True,
            )
        except Exception as exc:
            self._ready = False
            raise RetrievalError(f"seeding {self.collection!r} failed: {exc}") from exc
        self._ready = True
        return len(guidelines)

    def search(self, text: str, limit: int) -> list[Guideline]:
        """The `limit` guidelines of this role closest to `text`; RetrievalError if Qdrant fails."""
        # Retry seeding from one request at a time; the others go straight to the query.
        if not self._ready and self._clock() >= self._next_attempt and self._lock.acquire(blocking=False):
            try:
                count = self._seed()
                logger.info("seeded %d guidelines for %s into %s", count, self.role, self.collection)
            except RetrievalError as exc:
                logger.warning("guideline seeding retry failed: %s", exc)
            finally:
                self._lock.release()
        try:
            response = self.client.query_points(
                collection_name=self.collection,
                query=embed(text),
                query_filter=models.Filter(
                    must=[models.FieldCondition(key="role", match=models.MatchValue(value=self.role))]
                ),
                limit=limit,
                with_payload=True,
            )
        except Exception as exc:
            # Qdrant went away or lost the collection: report it in /healthz and seed again later.
            self._ready = False
            raise RetrievalError(f"query on {self.collection!r} failed: {exc}") from exc
        return [
            Guideline(
                id=str(p.payload["guideline_id"]),
                role=str(p.payload["role"]),
                title=str(p.payload.get("title", "")),
                text=str(p.payload.get("text", "")),
            )
            for p in response.points
            if p.payload and "guideline_id" in p.payload
        ]

    def _create_collection_if_missing(self) -> None:
        if self.client.collection_exists(self.collection):
            return
        try:
            self.client.create_collection(
                collection_name=self.collection,
                vectors_config=models.VectorParams(size=DIMENSIONS, distance=models.Distance.COSINE),
            )
        except Exception:
            # Both agents seed the same collection at startup; the loser of the race finds it there.
            if not self.client.collection_exists(self.collection):
                raise
        with warnings.catch_warnings():
            # The in-memory client used in tests warns that payload indexes do nothing there.
            warnings.simplefilter("ignore", UserWarning)
            self.client.create_payload_index(
                collection_name=self.collection, field_name="role", field_schema=models.PayloadSchemaType.KEYWORD
            )
        logger.info("created Qdrant collection %s", self.collection)
