"""Log one MLflow run through the tracking server's REST API 2.0, with httpx.

The agent's image has no mlflow package (hundreds of MB for four HTTP calls): an experiment by name
(created if missing), a run, one log-batch of params and metrics, and the run's end.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

API = "/api/2.0/mlflow"


class MlflowError(RuntimeError):
    """The tracking server refused a call or could not be reached."""

    def __init__(self, message: str, error_code: str = "") -> None:
        super().__init__(message)
        self.error_code = error_code


def tracking_client(uri: str, environ: Mapping[str, str], transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client for the server at `uri`, with basic auth if MLFLOW_TRACKING_USERNAME/PASSWORD are set."""
    username, password = environ.get("MLFLOW_TRACKING_USERNAME"), environ.get("MLFLOW_TRACKING_PASSWORD")
    auth = httpx.BasicAuth(username, password) if username and password else None
    return httpx.Client(base_url=uri, auth=auth, timeout=10.0, transport=transport)


def _call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = http.request(method, f"{API}/{path}", **kwargs)
    except httpx.HTTPError as exc:
        raise MlflowError(f"{path}: {exc}") from exc
    if response.is_error:
        try:
            error_code = str(response.json().get("error_code", ""))
        except ValueError:
            error_code = ""
        raise MlflowError(f"{path}: HTTP {response.status_code} {response.text[:300]}", error_code)
    return dict(response.json())


def experiment_id(http: httpx.Client, name: str) -> str:
    """The id of the experiment `name`, created if it does not exist yet."""
    try:
        found = _call(http, "GET", "experiments/get-by-name", params={"experiment_name": name})
        return str(found["experiment"]["experiment_id"])
    except MlflowError as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    return str(_call(http, "POST", "experiments/create", json={"name": name})["experiment_id"])


def _now_ms() -> int:
    return int(time.time() * 1000)


def _end_run(http: httpx.Client, run_id: str, status: str) -> None:
    _call(http, "POST", "runs/update", json={"run_id": run_id, "status": status, "end_time": _now_ms()})


def log_run(
    http: httpx.Client,
    experiment: str,
    run_name: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
) -> str:
    """One finished run with these params and metrics; its id. A run whose logging fails is marked FAILED."""
    now = _now_ms()
    run = _call(
        http,
        "POST",
        "runs/create",
        json={"experiment_id": experiment_id(http, experiment), "run_name": run_name, "start_time": now},
    )
    run_id = str(run["run"]["info"]["run_id"])
    try:
        _call(
            http,
            "POST",
            "runs/log-batch",
            json={
                "run_id": run_id,
                "params": [{"key": k, "value": v} for k, v in params.items()],
                "metrics": [{"key": k, "value": v, "timestamp": now, "step": 0} for k, v in metrics.items()],
            },
        )
    except MlflowError:
        _end_run(http, run_id, "FAILED")
        raise
    _end_run(http, run_id, "FINISHED")
    return run_id
