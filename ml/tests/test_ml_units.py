"""The gate's rule, the storage URI mapping and the metrics diff, without running the pipeline."""

from __future__ import annotations

import pytest

promote = pytest.importorskip("iris_pipeline.promote", reason="the ml requirements are not installed")
model_uri = pytest.importorskip("model_uri", reason="the ml requirements are not installed")
metrics_diff = pytest.importorskip("metrics_diff", reason="the ml requirements are not installed")

MARGIN = 0.01


def gate(candidate: float, champion: float | None, **extra: object) -> promote.Decision:
    return promote.decide(
        metric="f1_macro", margin=MARGIN, candidate=candidate, champion=champion, champion_version="3", **extra
    )


def test_without_a_champion_the_candidate_is_promoted():
    decision = gate(0.5, None)
    assert decision.promoted
    assert decision.reason.startswith("no champion yet")


@pytest.mark.parametrize(
    ("candidate", "champion", "expected", "reason"),
    [
        (0.9554, 0.9333, "promoted", "better by the margin"),
        (0.9433, 0.9333, "promoted", "better by the margin"),  # exactly the margin (within float noise)
        (0.9400, 0.9333, "refused", "better, but by less than the margin"),
        (0.9333, 0.9333, "refused", "no better than the champion"),
        (0.8148, 0.9333, "refused", "worse than the champion"),
    ],
)
def test_the_candidate_must_beat_the_champion_by_the_margin(candidate, champion, expected, reason):
    decision = gate(candidate, champion)
    assert decision.decision == expected
    assert decision.reason.startswith(reason)
    assert "version 3" in decision.reason and "margin 0.0100" in decision.reason


def test_a_candidate_that_already_is_the_champion_changes_nothing():
    decision = gate(0.9333, None, candidate_is_champion=True)
    assert (decision.decision, decision.promoted) == ("unchanged", False)


@pytest.mark.parametrize(
    "settings",
    [
        {"metric": "log_loss", "margin": 0.01, "alias": "champion", "previous_alias": "previous-champion"},
        {"metric": "f1_macro", "margin": 0, "alias": "champion", "previous_alias": "previous-champion"},
        {"metric": "f1_macro", "margin": 0.01, "alias": "champion", "previous_alias": "champion"},
    ],
)
def test_gate_settings_are_checked(settings):
    with pytest.raises(SystemExit):
        promote.validate(settings)


def test_proxied_artifacts_map_onto_the_servers_destination():
    destination = "s3://llm-infra-lab-dev-artifacts-123456789012-us-east-1/mlflow/"
    for proxied in (
        "mlflow-artifacts:/1/models/m-abc/artifacts",
        "mlflow-artifacts://mlflow:5000/1/models/m-abc/artifacts",
    ):
        uri = model_uri.storage_uri(proxied, destination)
        assert uri == "s3://llm-infra-lab-dev-artifacts-123456789012-us-east-1/mlflow/1/models/m-abc/artifacts"
    assert model_uri.bucket_and_prefix(uri) == (
        "llm-infra-lab-dev-artifacts-123456789012-us-east-1",
        "mlflow/1/models/m-abc/artifacts",
    )
    assert model_uri.storage_uri("s3://bucket/mlflow/1/models/m-abc/artifacts", None).startswith("s3://bucket/")
    with pytest.raises(SystemExit, match="--artifacts-destination"):
        model_uri.storage_uri("mlflow-artifacts:/1/models/m-abc/artifacts", None)


def test_metrics_diff_renders_changes_and_missing_values():
    text = metrics_diff.render(
        base_metrics={"accuracy": 0.9333, "f1_macro": 0.9333, "test_rows": 45},
        head_metrics={"accuracy": 0.9556, "recall_macro": 0.9556, "test_rows": 45},
        base_params={"train": {"C": 1.0}, "data": {"seed": 42}},
        head_params={"train": {"C": 10.0}, "data": {"seed": 42}},
        base_name="`main`",
        promotion={"decision": "promoted", "reason": "better by the margin"},
    )
    assert "| accuracy | 0.9333 | 0.9556 | +0.0223 |" in text
    assert "| f1_macro | 0.9333 | — | — |" in text
    assert "| recall_macro | — | 0.9556 | — |" in text
    assert "| test_rows | 45 | 45 | +0 |" in text
    assert "| train.C | 1.0 | 10.0 |" in text and "data.seed" not in text
    assert text.rstrip().endswith("**Promotion gate: promoted.** better by the margin")


def test_committed_lock_matches_the_code_params_and_metrics():
    """dvc.lock in git is the record of a real run of this code: change a stage, run it, commit the lock."""
    yaml = pytest.importorskip("yaml")
    common = pytest.importorskip("iris_pipeline.common")
    stages = yaml.safe_load(common.path(common.Path("dvc.lock")).read_text())["stages"]
    params = common.params()
    for name, stage in stages.items():
        for dep in stage["deps"]:
            if dep["path"].startswith("iris_pipeline/"):
                assert common.md5(common.path(common.Path(dep["path"]))) == dep["md5"], f"{name}: {dep['path']}"
        for section in stage.get("params", {}).get("params.yaml", {}).items():
            key, value = section
            head, _, tail = key.partition(".")
            assert (params[head][tail] if tail else params[head]) == value, f"{name}: {key}"
    evaluate = {out["path"]: out["md5"] for out in stages["evaluate"]["outs"]}
    assert common.md5(common.path(common.METRICS)) == evaluate["metrics.json"]
    assert common.md5(common.path(common.CONFUSION)) == evaluate["plots/confusion.csv"]
