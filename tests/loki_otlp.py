"""What Loki's native OTLP endpoint makes of an OTLP log request: each record's stream labels and metadata.

Transcribed from grafana/loki v3.7.6 (the newest 3.7 tag read; the lab pins 3.7.8 of the same branch),
default limits: pkg/loghttp/push/otlp_config.go (resource attributes indexed by default, everything else
structured metadata), pkg/loghttp/push/otlp.go (`otlpToLokiPushRequest`, `otlpLogToPushEntry`,
`attributeToLabels`: names through prometheus/otlptranslator's LabelNamer, values as pcommon's AsString,
maps flattened with a prefix; severity, trace context and flags as metadata; the record's event name field is
not read on that branch). Scope attributes and timestamps the lab's rules never select on are left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

DEFAULT_INDEX_LABELS = (
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
)
"""`distributor.otlp.default_resource_attributes_as_index_labels`."""


@dataclass(frozen=True)
class Entry:
    stream: dict[str, str]
    metadata: dict[str, str]
    line: str


def label_name(key: str) -> str:
    """otlptranslator's LabelNamer (no UTF-8): runs of other characters than [a-zA-Z0-9_] become one `_`
    (runs of `_` collapse too), and a leading digit gets `key_`."""
    name = re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9_]", "_", key))
    return f"key_{name}" if name[0].isdigit() else name


def _raw(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_raw(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _raw(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind)


def _as_string(value: AnyValue) -> str:
    """pcommon's Value.AsString: a string as it is, anything else as JSON (a list as `["a","b"]`)."""
    raw = _raw(value)
    return raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"))


def _labels(attributes: list[KeyValue], prefix: str = "") -> dict[str, str]:
    found = {}
    for attribute in attributes:
        name = label_name(f"{prefix}_{attribute.key}" if prefix else attribute.key)
        if attribute.value.WhichOneof("value") == "kvlist_value":
            found |= _labels(list(attribute.value.kvlist_value.values), name)
        else:
            found[name] = _as_string(attribute.value)
    return found


def entries(request: ExportLogsServiceRequest) -> list[Entry]:
    found = []
    for resource_logs in request.resource_logs:
        attributes = list(resource_logs.resource.attributes)
        stream = _labels([a for a in attributes if a.key in DEFAULT_INDEX_LABELS])
        resource_metadata = _labels([a for a in attributes if a.key not in DEFAULT_INDEX_LABELS])
        for scope_logs in resource_logs.scope_logs:
            scope = {"scope_name": scope_logs.scope.name} if scope_logs.scope.name else {}
            for record in scope_logs.log_records:
                metadata = _labels(list(record.attributes))
                if record.severity_number:
                    metadata["severity_number"] = str(record.severity_number)
                if record.severity_text:
                    metadata["severity_text"] = record.severity_text
                if record.flags:
                    metadata["flags"] = str(record.flags)
                if record.trace_id:
                    metadata["trace_id"] = record.trace_id.hex()
                if record.span_id:
                    metadata["span_id"] = record.span_id.hex()
                found.append(Entry(stream, {**metadata, **resource_metadata, **scope}, record.body.string_value))
    return found
