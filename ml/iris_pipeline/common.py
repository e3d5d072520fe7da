"""What the stages share: the project's paths, its parameters, file hashes, the git commit, MLflow's store."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
"""The DVC project (ml/): the stages run here, and every path below is relative to it."""
PARAMS = ROOT / "params.yaml"
TRAIN_CSV = Path("data/prepared/train.csv")
TEST_CSV = Path("data/prepared/test.csv")
MODEL = Path("models/model.joblib")
RUN_INFO = Path("models/run.json")
METRICS = Path("metrics.json")
CONFUSION = Path("plots/confusion.csv")
PROMOTION = Path("reports/promotion.json")

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
"""Iris's four measurements in centimetres, in the order the model (and KServe's `instances`) takes them."""
LABEL = "species"
SPECIES = ("setosa", "versicolor", "virginica")
"""The class each integer label stands for (scikit-learn's `load_iris().target_names`)."""

REPRO_WRITES = ("dvc.lock", "metrics.json", "plots")
"""Files under git that a `dvc repro` rewrites: not counted as uncommitted changes to the code or parameters."""

TAG_GIT_COMMIT = "git_commit"
TAG_GIT_DIRTY = "git_dirty"
TAG_TRAIN_MD5 = "dvc.data.train.md5"
TAG_TEST_MD5 = "dvc.data.test.md5"
"""The prepared data's DVC hashes (the md5 that dvc.lock records for each file): the data version."""


def params() -> dict[str, Any]:
    return yaml.safe_load(PARAMS.read_text())


def path(relative: Path) -> Path:
    return ROOT / relative


def md5(file: Path) -> str:
    """The hash DVC 3 records for a file: the md5 of its bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(file, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_split(file: Path, features: Any, labels: Any) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    with open(file, "w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([*FEATURES, LABEL])
        for row, label in zip(features, labels, strict=True):
            writer.writerow([*(repr(float(value)) for value in row), int(label)])


def read_split(file: Path) -> tuple[Any, Any]:
    """A prepared split as float features and integer labels (NumPy arrays)."""
    with open(file, newline="") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    if tuple(header) != (*FEATURES, LABEL):
        raise ValueError(f"{file}: unexpected header {header}")
    features = np.array([[float(value) for value in row[:-1]] for row in body], dtype=np.float64)
    labels = np.array([int(row[-1]) for row in body], dtype=np.int64)
    return features, labels


def write_json(file: Path, data: dict[str, Any]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(file: Path) -> dict[str, Any]:
    return json.loads(file.read_text())


def git_state() -> dict[str, str]:
    """The commit the code was at, and whether tracked files (code, params.yaml) differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        # Tracked files only, and not the ones `dvc repro` itself rewrites.
        changes = git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in REPRO_WRITES))
    except (OSError, subprocess.CalledProcessError):
        return {TAG_GIT_COMMIT: "unknown", TAG_GIT_DIRTY: "unknown"}
    return {TAG_GIT_COMMIT: commit, TAG_GIT_DIRTY: str(bool(changes)).lower()}


def tracking_uri() -> str:
    """MLflow's store from MLFLOW_TRACKING_URI: the lab's server, or `sqlite:///…` for an offline run."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise SystemExit(
            "MLFLOW_TRACKING_URI is not set: export MLFLOW_TRACKING_URI=$(pulumi stack output mlflowUrl) "
            "for the lab's MLflow, or sqlite:///mlflow.db for a store of your own"
        )
    return uri
