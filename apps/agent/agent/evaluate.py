"""How well each retrieval mode finds the guidelines a text needs: `python -m agent.evaluate`.

Scores every variant (dense, sparse, hybrid with either fusion, with and without the reranker)
on the labelled queries of evaluation/retrieval.toml: recall@1, recall@3 (the share of a query's
relevant guidelines among the first k, averaged over queries) and MRR (1 / the rank of the first
relevant one). Against an in-process Qdrant unless --qdrant-url is given; there it uses a
collection of its own, so the agents' collection is never touched. Prints a table, and with
--mlflow-uri (or MLFLOW_TRACKING_URI) logs the figures as an MLflow run.

The set is not in the image (the Dockerfile copies `agent/` only): run this from the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx
from qdrant_client import QdrantClient, models

from agent import semconv as sc
from agent.mlflow_rest import MlflowError, log_run, tracking_client
from agent.rerank import Reranker, make_reranker
from agent.retrieval import FUSION, GuidelineStore
from agent.roles import ROLES, guidelines_for

DEFAULT_SET = Path(__file__).resolve().parent.parent / "evaluation" / "retrieval.toml"
KS = (1, 3)


@dataclass(frozen=True)
class LabelledQuery:
    role: str
    text: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class Variant:
    name: str
    mode: str
    fusion: models.Fusion = FUSION
    rerank: bool = False


VARIANTS = (
    Variant("dense", sc.RETRIEVAL_MODE_DENSE),
    Variant("sparse", sc.RETRIEVAL_MODE_SPARSE),
    Variant("hybrid-rrf", sc.RETRIEVAL_MODE_HYBRID, models.Fusion.RRF),
    Variant("hybrid-dbsf", sc.RETRIEVAL_MODE_HYBRID, models.Fusion.DBSF),
    Variant("hybrid-rrf-rerank", sc.RETRIEVAL_MODE_HYBRID, models.Fusion.RRF, rerank=True),
    Variant("hybrid-dbsf-rerank", sc.RETRIEVAL_MODE_HYBRID, models.Fusion.DBSF, rerank=True),
)


@dataclass(frozen=True)
class Scores:
    recall: dict[int, float]
    """k -> mean recall@k."""
    mrr: float


def load_set(path: Path) -> list[LabelledQuery]:
    """The queries, each checked to be labelled with existing guidelines of its own role."""
    with path.open("rb") as file:
        entries = tomllib.load(file)["query"]
    queries = []
    for number, entry in enumerate(entries, 1):
        role, relevant = entry["role"], frozenset(entry["relevant"])
        known = {g.id for g in guidelines_for(role)}
        if role not in ROLES or not relevant or not relevant <= known:
            raise ValueError(f"{path}: query {number} has role {role!r} and labels {sorted(relevant)}")
        queries.append(LabelledQuery(role, entry["text"], relevant))
    return queries


def score(queries: Sequence[LabelledQuery], rankings: Sequence[Sequence[str]]) -> Scores:
    recall = {
        k: sum(len(q.relevant & set(r[:k])) / len(q.relevant) for q, r in zip(queries, rankings, strict=True))
        / len(queries)
        for k in KS
    }
    reciprocal_ranks = (
        next((1 / rank for rank, gid in enumerate(r, 1) if gid in q.relevant), 0.0)
        for q, r in zip(queries, rankings, strict=True)
    )
    return Scores(recall, sum(reciprocal_ranks) / len(queries))


def evaluate(
    client: QdrantClient,
    collection: str,
    queries: Sequence[LabelledQuery],
    variants: Sequence[Variant],
    reranker: Reranker | None,
) -> dict[str, Scores]:
    """Each variant's scores; the rerank variants are left out without a reranker."""
    results = {}
    for variant in variants:
        if variant.rerank and reranker is None:
            continue
        stores = {
            role: GuidelineStore(
                client,
                collection,
                role,
                mode=variant.mode,
                fusion=variant.fusion,
                reranker=reranker if variant.rerank else None,
            )
            for role in sorted({q.role for q in queries})  # a fixed seeding order: ties rank the same every run
        }
        for store in stores.values():
            store.ensure_seeded()
        # The whole ranking of the role's guidelines, so MRR sees a relevant one at any rank.
        rankings = [[g.id for g in stores[q.role].search(q.text, limit=len(guidelines_for(q.role)))] for q in queries]
        results[variant.name] = score(queries, rankings)
    return results


def table(results: Mapping[str, Scores]) -> str:
    header = f"{'variant':<20}" + "".join(f"{f'recall@{k}':>10}" for k in KS) + f"{'MRR':>8}"
    rows = [
        f"{name:<20}" + "".join(f"{s.recall[k]:>10.3f}" for k in KS) + f"{s.mrr:>8.3f}" for name, s in results.items()
    ]
    return "\n".join([header, *rows])


def mlflow_figures(
    results: Mapping[str, Scores], queries: Sequence[LabelledQuery], digest: str, qdrant: str
) -> tuple[dict[str, str], dict[str, float]]:
    """MLflow params and metrics: `<variant>/recall_at_<k>` and `<variant>/mrr`."""
    params = {
        "variants": ",".join(results),
        "k": ",".join(map(str, KS)),
        "set_size": str(len(queries)),
        "set_sha256": digest,
        "qdrant": qdrant,
        "agent_default_fusion": FUSION.value,
    }
    metrics = {f"{name}/recall_at_{k}": s.recall[k] for name, s in results.items() for k in KS}
    metrics |= {f"{name}/mrr": s.mrr for name, s in results.items()}
    return params, metrics


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
    out: TextIO = sys.stdout,
    mlflow_transport: httpx.BaseTransport | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="the labelled queries (TOML)")
    parser.add_argument("--qdrant-url", help="a Qdrant server instead of an in-process one")
    parser.add_argument("--collection", default="retrieval-evaluation", help="the collection to seed and query")
    parser.add_argument("--mlflow-uri", default=environ.get("MLFLOW_TRACKING_URI"), help="log a run to MLflow")
    parser.add_argument("--experiment", default="agent-retrieval", help="the MLflow experiment")
    args = parser.parse_args(argv)
    if not args.set.is_file():
        parser.error(f"no evaluation set at {args.set}; pass --set")

    queries = load_set(args.set)
    digest = hashlib.sha256(args.set.read_bytes()).hexdigest()[:12]
    if args.qdrant_url:
        client = QdrantClient(url=args.qdrant_url, timeout=10, check_compatibility=False)
    else:
        client = QdrantClient(":memory:")
    try:
        results = evaluate(client, args.collection, queries, VARIANTS, make_reranker())
    finally:
        client.close()

    print(f"{args.set.name}: {len(queries)} queries, sha256 {digest}", file=out)
    print(table(results), file=out)
    if args.mlflow_uri:
        params, metrics = mlflow_figures(results, queries, digest, args.qdrant_url or "in-process")
        try:
            with tracking_client(args.mlflow_uri, environ, mlflow_transport) as http:
                run_id = log_run(http, args.experiment, f"retrieval-{digest}", params, metrics)
        except MlflowError as exc:
            print(f"MLflow logging failed: {exc}", file=sys.stderr)
            return 1
        print(f"logged MLflow run {run_id} in experiment {args.experiment!r} at {args.mlflow_uri}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
