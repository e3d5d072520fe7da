"""The whole pipeline, offline: DVC stages, MLflow's run and registry, the promotion gate, serving files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BETTER, EXPERIMENT, MODEL_NAME, Lab, run_script

yaml = pytest.importorskip("yaml")
joblib = pytest.importorskip("joblib")
mlflow_models = pytest.importorskip("mlflow.models")

STAGES = ["prepare", "train", "evaluate", "promote"]
KSERVE_MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")


def lock(project: Path) -> dict:
    return yaml.safe_load((project / "dvc.lock").read_text())


def out_md5(project: Path, stage: str, path: str) -> str:
    return next(out["md5"] for out in lock(project)["stages"][stage]["outs"] if out["path"] == path)


def test_first_repro_runs_every_stage_in_order(lab: Lab):
    assert lab.first.ran == STAGES


def test_stages_write_their_outputs(lab: Lab):
    project = lab.project
    train = (project / "data/prepared/train.csv").read_text().splitlines()
    test = (project / "data/prepared/test.csv").read_text().splitlines()
    assert train[0] == test[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    assert (len(train) - 1, len(test) - 1) == (105, 45)
    assert (project / "models/model.joblib").stat().st_size > 0
    metrics = lab.snapshots["first"]["metrics"]
    assert set(metrics) == {"accuracy", "f1_macro", "precision_macro", "recall_macro", "test_rows"}
    assert metrics["test_rows"] == 45
    assert 0.85 <= metrics["f1_macro"] <= 1
    confusion = (project / "plots/confusion.csv").read_text().splitlines()
    assert confusion[0] == "actual,predicted" and len(confusion) == 46


def test_lock_records_every_stage_and_dvc_ignores_the_cached_outputs(lab: Lab):
    assert set(lock(lab.project)["stages"]) == set(STAGES)
    ignored = subprocess.run(
        ["git", "check-ignore", "data/prepared/train.csv", "models/model.joblib", "reports/promotion.json"],
        cwd=lab.project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["data/prepared/train.csv", "models/model.joblib", "reports/promotion.json"]


def test_push_sends_data_and_model_to_the_remote(lab: Lab):
    pushed = {path.parent.name + path.name for path in lab.remote.rglob("*") if path.is_file()}
    for path in ("data/prepared/train.csv", "data/prepared/test.csv", "models/model.joblib", "models/run.json"):
        stage = "prepare" if path.startswith("data") else "train"
        assert out_md5(lab.project, stage, path) in pushed, path


def test_second_repro_with_nothing_changed_runs_no_stage(lab: Lab):
    assert lab.second.ran == []
    assert sorted(lab.second.skipped) == sorted(STAGES)


def test_training_run_has_params_metrics_and_tags(lab: Lab):
    client = lab.client()
    run = client.get_run(lab.snapshots["first"]["run"]["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert run.data.params == {
        "estimator": "logistic_regression",
        "C": "1.0",
        "max_iter": "200",
        "data.test_size": "0.3",
        "data.seed": "42",
        "experiment": EXPERIMENT,
        "registered_model": MODEL_NAME,
    }
    metrics = lab.snapshots["first"]["metrics"]
    assert run.data.metrics["train_accuracy"] > 0.9
    for name in ("accuracy", "f1_macro", "precision_macro", "recall_macro"):
        assert run.data.metrics[f"test_{name}"] == pytest.approx(metrics[name])
    tags = run.data.tags
    assert tags["git_commit"] == tags["mlflow.source.git.commit"] == lab.first_commit
    assert tags["git_dirty"] == "false"
    assert tags["dvc.data.train.md5"] == out_md5(lab.project, "prepare", "data/prepared/train.csv")
    assert tags["dvc.data.test.md5"] == out_md5(lab.project, "prepare", "data/prepared/test.csv")
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.version"] == "1"
    assert [artifact.path for artifact in client.list_artifacts(run.info.run_id, "evaluation")] == [
        "evaluation/confusion.csv"
    ]


def test_logged_model_has_signature_input_example_and_test_metrics(lab: Lab):
    client = lab.client()
    run_info = lab.snapshots["first"]["run"]
    logged = client.get_logged_model(run_info["model_id"])
    assert logged.source_run_id == run_info["run_id"]
    assert {metric.key for metric in logged.metrics} >= {"train_accuracy", "test_f1_macro"}
    model_dir = Path(logged.artifact_location.removeprefix("file://"))
    meta = mlflow_models.Model.load(str(model_dir / "MLmodel"))
    tensor = {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": (-1, 4)}}
    assert meta.signature.inputs.to_dict() == [tensor]
    assert meta.saved_input_example_info["artifact_path"] == "input_example.json"
    first_row = (lab.project / "data/prepared/train.csv").read_text().splitlines()[1].split(",")[:4]
    assert json.loads((model_dir / "input_example.json").read_text())[0] == [float(value) for value in first_row]
    assert meta.flavors["sklearn"]["serialization_format"] == "pickle"
    assert meta.flavors["sklearn"]["sklearn_version"] == "1.5.2"


def test_first_candidate_is_registered_and_takes_the_champion_alias(lab: Lab):
    first = lab.snapshots["first"]
    assert first["versions"] == [1]
    assert first["aliases"] == {"champion": "1"}
    assert first["promotion"]["decision"] == "promoted"
    assert first["promotion"]["reason"].startswith("no champion yet")
    version = lab.client().get_model_version(MODEL_NAME, "1")
    assert version.run_id == first["run"]["run_id"]
    assert version.source == f"models:/{first['run']['model_id']}"


@pytest.mark.parametrize("name", ["worse", "better"])
def test_a_param_change_reruns_train_evaluate_and_promote_only(lab: Lab, name: str):
    repro = lab.snapshots[name]["repro"]
    assert repro.ran == ["train", "evaluate", "promote"]
    assert repro.skipped == ["prepare"]


def test_worse_candidate_is_refused_and_the_alias_stays(lab: Lab):
    worse = lab.snapshots["worse"]
    report = worse["promotion"]
    assert (report["decision"], report["promoted"]) == ("refused", False)
    assert report["reason"].startswith("worse than the champion")
    assert report["candidate"]["value"] < report["champion"]["value"] == lab.snapshots["first"]["metrics"]["f1_macro"]
    assert report["champion"]["version"] == "1"
    assert worse["aliases"] == {"champion": "1"}
    assert worse["versions"] == [1], "a refused candidate is not registered"
    _, tracking_uri, _ = lab.branches["worse"]
    tags = lab.client(tracking_uri).get_run(worse["run"]["run_id"]).data.tags
    assert tags["promotion.decision"] == "refused"
    assert tags["git_dirty"] == "true", "params.yaml was changed and not committed"


def test_better_candidate_takes_the_alias_and_the_old_champion_is_kept(lab: Lab):
    better = lab.snapshots["better"]
    report = better["promotion"]
    assert (report["decision"], report["promoted"]) == ("promoted", True)
    assert report["reason"].startswith("better by the margin")
    assert report["candidate"]["value"] - report["champion"]["value"] >= report["margin"]
    assert better["versions"] == [1, 2]
    assert better["aliases"] == {"champion": "2", "previous-champion": "1"}
    assert report["aliases"] == {"champion": "2", "previous-champion": "1"}
    _, tracking_uri, _ = lab.branches["better"]
    client = lab.client(tracking_uri)
    assert client.get_run(better["run"]["run_id"]).data.params["C"] == str(BETTER["C"])
    assert client.get_model_version(MODEL_NAME, "2").tags["promotion.replaced_version"] == "1"


def test_rollback_gives_the_alias_back_to_the_previous_champion(lab: Lab):
    assert lab.rollback_status == 0
    assert lab.after_rollback == {"champion": "1", "previous-champion": "2"}
    assert "champion is version 1 again" in lab.rollback_output


def test_model_uri_points_at_a_directory_kserve_sklearnserver_loads(lab: Lab):
    """What kserve/sklearnserver v0.20.0 does with the directory: one *.joblib/*.pkl/*.pickle, joblib.load."""
    output, status = run_script("model_uri", ["--model", MODEL_NAME, "--alias", "champion", "--json"], lab.tracking_uri)
    assert status == 0
    details = json.loads(output)
    model_id = lab.snapshots["first"]["run"]["model_id"]
    assert details["version"] == "1"
    assert details["storage_uri"].endswith(f"/models/{model_id}/artifacts")
    model_dir = Path(details["storage_uri"].removeprefix("file://"))
    loadable = [name for name in os.listdir(model_dir) if name.endswith(KSERVE_MODEL_EXTENSIONS)]
    assert loadable == ["model.pkl"] == [details["model_file"]]
    model = joblib.load(model_dir / loadable[0])
    setosa, virginica = [5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.4, 2.1]
    assert model.predict([setosa, virginica]).tolist() == [0, 2]


def test_metrics_diff_compares_with_the_committed_run(lab: Lab):
    project, _, env = lab.branches["better"]
    result = subprocess.run(
        [sys.executable, "scripts/metrics_diff.py", "--base", "HEAD", "--promotion", "reports/promotion.json"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    first, better = lab.snapshots["first"]["metrics"], lab.snapshots["better"]["metrics"]
    change = better["f1_macro"] - first["f1_macro"]
    assert f"| f1_macro | {first['f1_macro']:.4f} | {better['f1_macro']:.4f} | {change:+.4f} |" in result.stdout
    assert f"| train.C | 1.0 | {BETTER['C']} |" in result.stdout
    assert "**Promotion gate: promoted.**" in result.stdout
