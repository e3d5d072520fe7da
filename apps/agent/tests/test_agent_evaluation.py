"""The retrieval evaluation: the labelled set, the scores, hybrid against each vector alone, MLflow logging."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from qdrant_client import QdrantClient

from agent.evaluate import DEFAULT_SET, VARIANTS, LabelledQuery, evaluate, load_set, main, score
from agent.mlflow_rest import MlflowError, log_run


def test_the_set_has_realistic_queries_for_both_roles() -> None:
    queries = load_set(DEFAULT_SET)
    assert 40 <= len(queries) <= 60
    assert min(Counter(q.role for q in queries).values()) >= 20
    assert len({q.text for q in queries}) == len(queries), "no query twice"


def test_a_label_of_another_role_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "set.toml"
    path.write_text('[[query]]\nrole = "code-critic"\nrelevant = ["pr-001"]\ntext = "eval(x)"\n')
    with pytest.raises(ValueError, match="query 1 has role 'code-critic'"):
        load_set(path)


def test_recall_and_mrr() -> None:
    queries = [
        LabelledQuery("code-critic", "a", frozenset({"cc-001"})),
        LabelledQuery("code-critic", "b", frozenset({"cc-002", "cc-003"})),
    ]
    scores = score(queries, [["cc-004", "cc-001"], ["cc-003", "cc-005", "cc-006", "cc-002"]])
    assert scores.recall == {1: pytest.approx((0 + 0.5) / 2), 3: pytest.approx((1 + 0.5) / 2)}
    assert scores.mrr == pytest.approx((1 / 2 + 1) / 2)


def test_hybrid_is_at_least_as_good_as_either_vector_alone(memory_qdrant: QdrantClient) -> None:
    dense, bm25, hybrid = (v for v in VARIANTS if v.name in ("dense", "sparse", "hybrid-rrf"))
    results = evaluate(memory_qdrant, "evaluation", load_set(DEFAULT_SET), [dense, bm25, hybrid], reranker=None)
    for alone in ("dense", "sparse"):
        assert results["hybrid-rrf"].recall[3] >= results[alone].recall[3]
        assert results["hybrid-rrf"].mrr >= results[alone].mrr


class FakeMlflow:
    """An MLflow tracking server that knows no experiment yet; keeps every request."""

    def __init__(self, fail_log_batch: bool = False) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_log_batch = fail_log_batch

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/mlflow/api/2.0/mlflow/")
        if path == "experiments/get-by-name":
            return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such experiment"})
        if path == "experiments/create":
            return httpx.Response(200, json={"experiment_id": "7"})
        if path == "runs/create":
            return httpx.Response(200, json={"run": {"info": {"run_id": "r1"}}})
        if path == "runs/log-batch" and self.fail_log_batch:
            return httpx.Response(400, json={"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"})
        return httpx.Response(200, json={})

    def calls(self) -> list[tuple[str, str, dict[str, object]]]:
        return [
            (r.method, r.url.path.rsplit("/mlflow/", 1)[1], json.loads(r.content) if r.content else dict(r.url.params))
            for r in self.requests
        ]


def test_the_run_is_logged_through_mlflows_rest_api(tmp_path: Path) -> None:
    small_set = tmp_path / "set.toml"
    small_set.write_text(
        '[[query]]\nrole = "code-critic"\nrelevant = ["cc-001"]\ntext = "x = eval(s)"\n'
        '[[query]]\nrole = "prompt-reviewer"\nrelevant = ["pr-002"]\ntext = "Answer in JSON."\n'
    )
    server, out = FakeMlflow(), io.StringIO()
    environ = {
        "MLFLOW_TRACKING_URI": "http://mlflow.test/mlflow",
        "MLFLOW_TRACKING_USERNAME": "lab",
        "MLFLOW_TRACKING_PASSWORD": "s3cret",
    }
    assert main(["--set", str(small_set)], environ, out, mlflow_transport=httpx.MockTransport(server.handle)) == 0

    (get, create, run, batch, update) = server.calls()
    assert get == ("GET", "experiments/get-by-name", {"experiment_name": "agent-retrieval"})
    assert create == ("POST", "experiments/create", {"name": "agent-retrieval"})
    assert run[:2] == ("POST", "runs/create") and run[2]["experiment_id"] == "7"
    assert str(run[2]["run_name"]).startswith("retrieval-") and isinstance(run[2]["start_time"], int)
    assert batch[:2] == ("POST", "runs/log-batch") and batch[2]["run_id"] == "r1"
    params = {p["key"]: p["value"] for p in batch[2]["params"]}  # type: ignore[attr-defined]
    assert params["set_size"] == "2" and params["k"] == "1,3" and params["qdrant"] == "in-process"
    assert params["variants"].split(",") == [v.name for v in VARIANTS]
    metrics = {m["key"]: m for m in batch[2]["metrics"]}  # type: ignore[attr-defined]
    assert set(metrics) == {f"{v.name}/{m}" for v in VARIANTS for m in ("recall_at_1", "recall_at_3", "mrr")}
    assert all(0 <= m["value"] <= 1 and m["step"] == 0 and isinstance(m["timestamp"], int) for m in metrics.values())
    assert update[:2] == ("POST", "runs/update") and update[2]["status"] == "FINISHED"
    assert update[2]["run_id"] == "r1"
    auth = "Basic " + base64.b64encode(b"lab:s3cret").decode()
    assert all(r.headers["authorization"] == auth for r in server.requests)
    assert "hybrid-rrf-rerank" in out.getvalue() and "logged MLflow run r1" in out.getvalue()


def test_a_run_whose_logging_fails_is_marked_failed() -> None:
    server = FakeMlflow(fail_log_batch=True)
    with (
        httpx.Client(base_url="http://mlflow.test/mlflow", transport=httpx.MockTransport(server.handle)) as http,
        pytest.raises(MlflowError, match="runs/log-batch: HTTP 400"),
    ):
        log_run(http, "agent-retrieval", "run", {"k": "3"}, {"dense/mrr": 0.5})
    _, path, body = server.calls()[-1]
    assert path == "runs/update" and body["status"] == "FAILED"
    assert "authorization" not in server.requests[0].headers
