"""Every Helm release the program registers, checked against the chart it installs.

A chart validates the coalesced values against its schema (Helm refuses the release otherwise) and silently
ignores keys its templates never read. So for each release in each phase: its pin is the version the chart
data describes (or says why another is safe), the coalesced values pass the chart's schema, and every key
path the lab sets exists in the chart's values.yaml, except inside the maps listed below, each with a reason.
"""

from __future__ import annotations

import jsonschema
import pytest

from stacks.catalog import PHASES
from tests.chart_data import ChartData, chart_name, coalesce, leaf_paths, user_values
from tests.conftest import evaluate
from tests.harness import Registered

RELEASE = "kubernetes:helm.sh/v3:Release"
DATA = {
    "traefik": ChartData("traefik-41.3.0"),
    "cert-manager": ChartData(
        "cert-manager-v1.21.1",
        "v1.21.2 and v1.21.3 are patch releases of the same branch: release-1.21 changed nothing under "
        "deploy/charts/cert-manager after v1.21.1 but quoting the proxy values, which the lab does not set",
    ),
    "cluster-autoscaler": ChartData("cluster-autoscaler-9.59.0"),
    "kserve-resources": ChartData("kserve-resources-v0.20.0"),
    "loki": ChartData("loki-18.11.0"),
    "grafana": ChartData("grafana-12.11.1"),
    "mimir-distributed": ChartData(
        "mimir-distributed-main-63460db",
        "main just after the 6.2.0 release: its CHANGELOG has 6.2.0 and unreleased entries that add keys "
        "(memberlist.rejoin_interval, ingester.zoneAwareReplication.readOnlyDownscaleDelay, the memcached "
        "memory formula), none the lab sets, and rename or remove none",
    ),
    "tempo": ChartData(
        "tempo-main-d1e8f02",
        "the Tempo 3 monolithic chart as of 3.0.0: the keys the lab sets are the same from 3.0.0 on; the lab "
        "sets retention where Tempo 3's backend worker reads it (the tenant overrides), not through "
        "tempo.retention, which 3.0.0 renders into a block Tempo 3 ignores for retention",
    ),
}
WITHOUT_VALUES = {"kserve-crd": "KServe's CRDs only: the lab sets no values, so there is nothing to check"}
WITHOUT_DATA = {
    "aws-load-balancer-controller": (
        "3.5.0",
        "not in ../shared/charts: every key the lab sets was read in the chart's values.yaml at aws/eks-charts "
        "commit 5239609 (chart 3.5.0), which has no values.schema.json",
    ),
}
"""Charts the data does not hold: the version whose values.yaml was read by hand, and how."""
KUBERNETES_OBJECTS = {
    "resources": "a container's ResourceRequirements, rendered as given",
    "securityContext": "a pod's or container's SecurityContext, rendered as given",
    "podSecurityContext": "a PodSecurityContext, rendered as given",
    "containerSecurityContext": "a container's SecurityContext, rendered as given",
    "annotations": "object metadata annotations: any key",
}
"""Keys holding a Kubernetes API object or metadata map: their insides are Kubernetes', not the chart's."""
FREE_FORM = {
    ("loki", "loki.storage.bucketNames"): (
        "documented in a comment of values.yaml; the templates read chunks and ruler",
        {"chunks", "ruler"},
    ),
    ("loki", "loki.schemaConfig"): ("Loki's own schema_config, rendered as given", None),
    ("loki", "loki.limits_config"): ("Loki's own limits_config, rendered as given", None),
    ("loki", "loki.rulerConfig"): ("Loki's own ruler block, merged over the storage type the chart derives", None),
    ("loki", "loki.compactor"): ("Loki's own compactor block, rendered as given", None),
    ("loki", "loki.analytics"): ("Loki's own analytics block, rendered as given", None),
    ("loki", "loki.storage.s3"): ("the S3 client settings Loki reads", None),
    ("mimir-distributed", "mimir.structuredConfig"): ("Mimir's own configuration, merged over the chart's", None),
    ("tempo", "tempo.receivers"): ("Tempo's distributor receivers, rendered as given", None),
    ("tempo", "tempo.storage"): ("Tempo's storage block, rendered as given", None),
    ("tempo", "tempo.overrides"): ("Tempo's overrides block, rendered as given", None),
    ("tempo", "tempo.metricsGenerator.registry"): ("Tempo's metrics_generator.registry block", None),
    ("tempo", "tempo.metricsGenerator.storage"): ("Tempo's metrics_generator.storage block", None),
    ("grafana", "datasources"): ("file name to a provisioning file's content", None),
    ("grafana", "dashboardProviders"): ("file name to a provisioning file's content", None),
    ("grafana", "dashboardsConfigMaps"): ("dashboard provider name to a ConfigMap's name", None),
    ("grafana", "env"): ("environment variables by name", None),
    ("grafana", "envValueFrom"): ("environment variables by name, from a Secret", None),
    ("cert-manager", "config"): ("cert-manager's ControllerConfiguration, rendered into a ConfigMap", None),
    ("cert-manager", "webhook.config"): ("the webhook's WebhookConfiguration, rendered into a ConfigMap", None),
    ("cert-manager", "cainjector.config"): ("cainjector's CAInjectorConfiguration, rendered into a ConfigMap", None),
    ("cluster-autoscaler", "extraArgs"): ("command-line flags by name", None),
    ("kserve-resources", "kserve.controller.deploymentMode"): ("a string", None),
}
"""Maps whose keys are the program's configuration, not the chart's: each path, why, and its allowed keys."""
DOCUMENTED_IN_COMMENTS = {
    ("mimir-distributed", "image.tag"): "commented out in values.yaml; the templates prefer it to appVersion",
    ("mimir-distributed", "ingester.persistentVolume.storageClass"): "commented out; the StatefulSet reads it",
    ("tempo", "persistence.storageClassName"): "commented out in values.yaml; the StatefulSet's claim reads it",
}
"""Keys values.yaml documents only in a comment, which a template reads."""


def releases() -> list[tuple[str, Registered]]:
    found = {}
    for phase in PHASES:
        for stack in phase.stacks:
            for release in evaluate(stack, phase=phase.name).of_type(RELEASE):
                found.setdefault((release.name, repr(release.get("values"))), (f"{stack}:{phase.name}", release))
    return sorted(found.values(), key=lambda item: (item[1].name, item[0]))


RELEASES = releases()
IDS = [f"{release.name}@{where}" for where, release in RELEASES]


def data(release: Registered) -> ChartData:
    return DATA[chart_name(release)]


def checked() -> list[tuple[str, Registered]]:
    unchecked = WITHOUT_VALUES.keys() | WITHOUT_DATA.keys()
    return [(where, release) for where, release in RELEASES if chart_name(release) not in unchecked]


def test_every_chart_the_program_installs_has_data_or_a_reason_not_to():
    for _, release in RELEASES:
        name = chart_name(release)
        if name in WITHOUT_DATA:
            assert release["version"] == WITHOUT_DATA[name][0], f"{name}: read its values.yaml again at the new pin"
            continue
        assert name in DATA or (name in WITHOUT_VALUES and not release.get("values")), name
        if name in DATA:
            assert data(release).path.is_dir(), f"{data(release).path} is missing: ../shared/charts"


@pytest.mark.parametrize(("where", "release"), checked(), ids=[f"{r.name}@{w}" for w, r in checked()])
def test_the_pin_is_the_version_the_data_describes_or_says_why_not(where, release):
    chart = data(release)
    if chart.version and chart.version.removeprefix("v") == release["version"].removeprefix("v"):
        return
    assert chart.pinned_because, f"{release.name} pins {release['version']}, the data is {chart.folder}: say why"


def with_schema() -> list[tuple[str, Registered]]:
    """Charts without a values.schema.json (Mimir, Tempo, Grafana, KServe, the autoscaler) take any values."""
    return [(where, release) for where, release in checked() if data(release).schema is not None]


@pytest.mark.parametrize(("where", "release"), with_schema(), ids=[f"{r.name}@{w}" for w, r in with_schema()])
def test_the_coalesced_values_pass_the_charts_schema(where, release):
    chart = data(release)
    values = coalesce(chart.values, user_values(release))
    validator = jsonschema.validators.validator_for(chart.schema)(chart.schema)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(values)]
    assert not errors, f"{release.name}: {errors}"


def unread_keys(chart_key: str, chart_values: dict, lab_values: dict) -> list[str]:
    """Key paths the lab sets that the chart's values.yaml does not have, outside the free-form maps."""
    unread = []
    for path in leaf_paths(lab_values):
        known = chart_values
        for depth, key in enumerate(path):
            dotted = ".".join(path[: depth + 1])
            if key in KUBERNETES_OBJECTS or (chart_key, dotted) in DOCUMENTED_IN_COMMENTS:
                break
            if (chart_key, dotted) in FREE_FORM:
                allowed = FREE_FORM[chart_key, dotted][1]
                if allowed is not None and depth + 1 < len(path) and path[depth + 1] not in allowed:
                    unread.append(".".join(path[: depth + 2]))
                break
            if not isinstance(known, dict) or key not in known:
                unread.append(dotted)
                break
            known = known[key]
    return sorted(set(unread))


@pytest.mark.parametrize(("where", "release"), checked(), ids=[f"{r.name}@{w}" for w, r in checked()])
def test_every_key_the_lab_sets_is_one_the_chart_reads(where, release):
    chart = data(release)
    unread = unread_keys(chart_name(release), chart.values, user_values(release))
    assert not unread, f"{release.name} sets keys {chart.folder}'s values.yaml does not have: {unread}"


def test_free_form_maps_are_maps_the_lab_sets():
    """An allowance nobody uses would hide the next unread key: each must match a path some release sets."""
    used = {
        (chart_name(release), ".".join(path[: depth + 1]))
        for _, release in checked()
        for path in leaf_paths(user_values(release))
        for depth in range(len(path))
    }
    allowances = set(FREE_FORM) | set(DOCUMENTED_IN_COMMENTS)
    assert allowances <= used, allowances - used
