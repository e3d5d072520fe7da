"""Kubernetes objects of a mocked run, as the manifests the provider would apply, and their checks.

Pulumi registers a Kubernetes object with its whole manifest as inputs (`apiVersion`, `kind`,
`metadata`, `spec`…), so a run's registrations are the manifests: numbers come back from the
wire as floats and are turned back into integers, nothing else is changed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from tests.harness import REPO, ProgramRun

KUBERNETES_VERSION = "1.36.0"
"""The newest minor minikube and EKS both run in late 2026; schemas from kubernetes-validate."""
CHECKOV = REPO / ".ci" / "checkov" / "bin" / "checkov"
NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "pulumi:providers:")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def manifests(run: ProgramRun) -> list[dict]:
    return [
        _plain(dict(r.inputs))
        for r in run.resources
        if r.type.startswith("kubernetes:") and not r.type.startswith(NOT_OBJECTS)
    ]


def of_kind(objects: Iterable[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def key(manifest: Mapping) -> str:
    metadata = manifest["metadata"]
    return f"{manifest['kind']}/{metadata.get('namespace', '-')}/{metadata['name']}"


def workloads(objects: Iterable[dict]) -> list[dict]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


def containers(workload: Mapping) -> list[dict]:
    pod = workload["spec"]["template"]["spec"]
    return pod["containers"] + pod.get("initContainers", [])


def schema_errors(objects: Iterable[dict]) -> dict[str, str]:
    """Strict validation against the Kubernetes schemas; kinds it has no schema for are reported."""
    errors = {}
    for manifest in objects:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors[key(manifest)] = "no schema"
        except kubernetes_validate.ValidationError as error:
            errors[key(manifest)] = f"{error.message} at {'.'.join(map(str, error.path))}"
    return errors


def checkov(objects: Iterable[dict]) -> dict:
    """checkov's Kubernetes checks over the manifests; returns its summary and failed checks."""
    return checkov_scan({"objects": objects})["objects"]


def checkov_scan(groups: Mapping[str, Iterable[dict]]) -> dict[str, dict]:
    """One checkov run over several sets of manifests, a report for each: its start-up is most of its time."""
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: run `bash scripts/install`")
    workdir = Path(tempfile.mkdtemp(prefix="llm-infra-lab-manifests-"))
    try:
        for index, objects in enumerate(groups.values()):
            folder = workdir / f"group{index}"
            folder.mkdir()
            for number, manifest in enumerate(objects):
                (folder / f"{number:03d}.yaml").write_text(yaml.safe_dump(manifest))
        result = subprocess.run(
            [str(CHECKOV), "-d", str(workdir), "--framework", "kubernetes", "-o", "json", "--compact",
             "--skip-download"],
            capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
    finally:
        shutil.rmtree(workdir)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    results = json.loads(result.stdout)["results"]

    def of_group(checks: list[dict], index: int) -> list[dict]:
        return [check for check in checks if check["file_path"].lstrip("/").startswith(f"group{index}/")]

    reports = {}
    for index, group in enumerate(groups):
        passed, failed = of_group(results["passed_checks"], index), of_group(results["failed_checks"], index)
        skipped = of_group(results["skipped_checks"], index)
        unparsed = [path for path in results["parsing_errors"] if path.lstrip("/").startswith(f"group{index}/")]
        summary = {
            "passed": len(passed),
            "failed": len(failed),
            "skipped": len(skipped),
            "parsing_errors": len(unparsed),
        }
        reports[group] = {"summary": summary, "failed": failed}
    return reports
