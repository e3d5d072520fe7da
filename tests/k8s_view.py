"""Kubernetes objects of a mocked run, as the manifests the provider would apply, and their checks.

Pulumi registers a Kubernetes object with its whole manifest as inputs (`apiVersion`, `kind`,
`metadata`, `spec`…), so a run's registrations are the manifests: numbers come back from the
wire as floats and are turned back into integers, nothing else is changed.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import yaml

from tests.harness import REPO, ProgramRun

KUBERNETES_VERSION = "1.36.0"
"""The newest minor minikube and EKS both run in late 2026; schemas from kubernetes-validate."""
CHECKOV = REPO / ".ci" / "checkov" / "bin" / "checkov"
CHECKOV_CACHE = REPO / ".pytest_cache" / "checkov"
"""Reports by the content scanned and the checkov installed (its dist-info names the version)."""
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


# kubernetes-validate reads its schema files, the 3 MB of definitions included, for every object it
# validates; they never change, and validation only reads them.
kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)


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
    """One checkov run over several sets of manifests, a report for each: its start-up is most of its time.

    Reports are kept by the manifests' content (and checkov's own install), so the test workers, which each
    ask for the same phases, run checkov once between them; a worker waits for another's run of the same scan.
    """
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing: run `bash scripts/install`")
    # Sorted: Pulumi registers independent resources in no fixed order, and the cache goes by content.
    files = {
        f"group{index}/{number:03d}.yaml": text
        for index, objects in enumerate(groups.values())
        for number, text in enumerate(sorted(yaml.dump(manifest, Dumper=yaml.CSafeDumper) for manifest in objects))
    }
    installed = sorted(p.name for p in CHECKOV.parent.parent.glob("lib/python*/site-packages/checkov-*.dist-info"))
    digest = hashlib.sha256(json.dumps([list(groups), files, installed], sort_keys=True).encode())
    CHECKOV_CACHE.mkdir(parents=True, exist_ok=True)
    cached = CHECKOV_CACHE / f"{digest.hexdigest()}.json"
    with (CHECKOV_CACHE / f"{cached.stem}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cached.exists():
            cached.write_text(json.dumps(_checkov_run(groups, files)))
    return json.loads(cached.read_text())


def _checkov_run(groups: Mapping[str, Iterable[dict]], files: Mapping[str, str]) -> dict[str, dict]:
    workdir = Path(tempfile.mkdtemp(prefix="llm-infra-lab-manifests-"))
    try:
        for path, text in files.items():
            (workdir / path).parent.mkdir(exist_ok=True)
            (workdir / path).write_text(text)
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
