"""The ML pipeline's own tests (ml/tests), in the pipeline's virtualenv: the whole DVC pipeline offline.

ml/ has requirements of its own (scikit-learn at the version KServe serves, DVC, MLflow's client), installed
by scripts/install in ml/.venv; its tests run there, as one test of the suite, so the README's one test
command covers them.
"""

from __future__ import annotations

import os
import subprocess

from tests.harness import REPO

ML = REPO / "ml"


def test_the_pipeline_runs_offline_and_its_gate_promotes_only_a_better_model():
    python = ML / ".venv" / "bin" / "python"
    assert python.exists(), f"{python} is missing: run scripts/install"
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ML,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout.splitlines()[-1], done.stdout[-500:]
