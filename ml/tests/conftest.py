"""The pipeline run offline: a temporary git + DVC project, a local DVC remote, MLflow on SQLite.

`lab` runs the whole story once per session, and the tests read what it recorded:

1. `dvc repro` of a fresh copy (no champion yet), then `dvc push` to the local remote;
2. `dvc repro` again with nothing changed;
3. from copies of that state, in parallel (each with its own copy of the MLflow database): a worse
   candidate (`train.C` 0.01) and a better one (`train.C` 10);
4. `scripts/rollback.py` after the better one took the alias.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

ML = Path(__file__).resolve().parent.parent
for extra in (ML, ML / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

PROJECT_FILES = ("iris_pipeline", "scripts", "dvc.yaml", "params.yaml", ".gitignore", ".dvcignore")
"""The project's sources without any run's records (dvc.lock, metrics, plots), so every stage runs once;
`dvc init` adds DVC's own files."""
MODEL_NAME = "iris-classifier"
EXPERIMENT = "iris-classifier"
WORSE = {"C": 0.01}
BETTER = {"C": 10.0, "max_iter": 500}
"""On the default split (seed 42), macro-F1 0.8148 and 0.9554 against the default model's 0.9333."""


@dataclass
class Repro:
    """One `dvc repro`: which stages ran, which were skipped, and what it printed."""

    ran: list[str]
    skipped: list[str]
    output: str


@dataclass
class Lab:
    root: Path
    env: dict[str, str]
    project: Path
    tracking_uri: str
    remote: Path
    first: Repro | None = None
    second: Repro | None = None
    first_commit: str = ""
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per step (`first`, `worse`, `better`): the project's reports and the registry's state after it."""
    branches: dict[str, tuple[Path, str, dict[str, str]]] = field(default_factory=dict)
    """Per candidate (`worse`, `better`): its copy of the project, its MLflow store and environment."""
    rollback_output: str = ""
    rollback_status: int | None = None
    after_rollback: dict[str, str | None] = field(default_factory=dict)

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            args, cwd=cwd or self.project, env=env or self.env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result.stdout + result.stderr

    def repro(self, cwd: Path | None = None, env: dict[str, str] | None = None) -> Repro:
        output = self.run("dvc", "repro", cwd=cwd, env=env)
        return Repro(
            ran=re.findall(r"^Running stage '([^']+)'", output, re.MULTILINE),
            skipped=re.findall(r"^Stage '([^']+)' didn't change, skipping", output, re.MULTILINE),
            output=output,
        )

    def client(self, tracking_uri: str | None = None) -> Any:
        mlflow = pytest.importorskip("mlflow")
        return mlflow.MlflowClient(tracking_uri=tracking_uri or self.tracking_uri)


def aliases(client: Any, name: str = MODEL_NAME) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def snapshot(project: Path, client: Any) -> dict[str, Any]:
    return {
        "promotion": json.loads((project / "reports/promotion.json").read_text()),
        "metrics": json.loads((project / "metrics.json").read_text()),
        "run": json.loads((project / "models/run.json").read_text()),
        "aliases": aliases(client),
        "versions": sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'")),
    }


def set_train_params(project: Path, values: dict[str, float]) -> None:
    yaml = pytest.importorskip("yaml")
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["train"].update(values)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def environment(root: Path, tracking_uri: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "DVC_", "GIT_"))}
    env.update(
        {
            # The stages' `python` and `dvc` are this interpreter's, whatever PATH said.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(root / "dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(root / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(root / "dvc-site"),
            "GIT_CONFIG_GLOBAL": str(root / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "pipeline test",
            "GIT_AUTHOR_EMAIL": "pipeline-test@example.com",
            "GIT_COMMITTER_NAME": "pipeline test",
            "GIT_COMMITTER_EMAIL": "pipeline-test@example.com",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def branch(lab: Lab, name: str, params: dict[str, float]) -> tuple[Path, str, dict[str, str]]:
    """A copy of the project and of the MLflow database as they are now, with other training params."""
    project = lab.root / name
    shutil.copytree(lab.project, project, symlinks=True)
    database = lab.root / "store" / f"mlflow-{name}.db"
    shutil.copyfile(lab.root / "store" / "mlflow.db", database)
    tracking_uri = f"sqlite:///{database}"
    set_train_params(project, params)
    env = {**lab.env, "MLFLOW_TRACKING_URI": tracking_uri}
    return project, tracking_uri, env


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    for module in ("dvc", "mlflow", "sklearn", "yaml"):
        pytest.importorskip(module)
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    root = tmp_path_factory.mktemp("lab")
    store = root / "store"
    store.mkdir()
    tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    project = root / "project"
    project.mkdir()
    for name in PROJECT_FILES:
        source = ML / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    lab = Lab(root, environment(root, tracking_uri), project, tracking_uri, root / "remote")
    lab.remote.mkdir()

    lab.run("git", "init", "--quiet", "--initial-branch=main")
    lab.run("dvc", "init", "--quiet")
    lab.run("dvc", "remote", "add", "--default", "local", str(lab.remote))
    lab.run("git", "add", "--all")
    lab.run("git", "commit", "--quiet", "--message", "the iris pipeline")
    lab.first_commit = lab.run("git", "rev-parse", "HEAD").strip()

    # The experiment's files go beside the database, outside the projects that get copied.
    lab.client().create_experiment(EXPERIMENT, artifact_location=(store / "artifacts").as_uri())

    lab.first = lab.repro()
    lab.snapshots["first"] = snapshot(project, lab.client())
    lab.run("git", "add", "--all")
    lab.run("git", "commit", "--quiet", "--message", "first run")

    for name, params in (("worse", WORSE), ("better", BETTER)):
        lab.branches[name] = branch(lab, name, params)

    def second_repro_and_push() -> Repro:
        repro = lab.repro()
        lab.run("dvc", "push")
        return repro

    # Three projects from here on: the two candidates' pipelines take the two cores.
    with ThreadPoolExecutor(max_workers=3) as pool:
        repros = {name: pool.submit(lab.repro, project, env) for name, (project, _, env) in lab.branches.items()}
        second = pool.submit(second_repro_and_push)
        for name, future in repros.items():
            repro = future.result()
            project, tracking_uri, _ = lab.branches[name]
            lab.snapshots[name] = {**snapshot(project, lab.client(tracking_uri)), "repro": repro}
        lab.second = second.result()

    _, tracking_uri, _ = lab.branches["better"]
    lab.rollback_output, lab.rollback_status = run_script("rollback", [], tracking_uri)
    lab.after_rollback = aliases(lab.client(tracking_uri))
    return lab


def run_script(module: str, argv: list[str], tracking_uri: str) -> tuple[str, int]:
    """One of scripts/*.py, in this process (MLflow is imported already): its stdout and exit code."""
    script = __import__(module)
    stdout = io.StringIO()
    with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": tracking_uri}), contextlib.redirect_stdout(stdout):
        status = script.main(argv)
    return stdout.getvalue(), status
