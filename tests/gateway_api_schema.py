"""Strict schema validation for the Gateway API objects the program renders.

kubernetes-validate ships schemas only for built-in kinds and none for CRDs. This module checks the
``gateway.networking.k8s.io/v1`` kinds ``Gateway`` and ``HTTPRoute`` against the ``v1`` ``openAPIV3Schema``
of the upstream standard-channel CRDs, which are vendored under ``tests/schemas/gateway-api/`` (see
``SOURCE.md`` there for the bundle version, commits and what was stripped).

Two passes are made over the manifest (camelCase keys, i.e. as applied to the cluster):

1. JSON-Schema validation with ``jsonschema`` (Draft 7 with its format checker, so the ``ipv4``/``ipv6``
   formats on ``spec.addresses`` are checked as well as types, enums, patterns, bounds and ``required``).
   OpenAPI-only keywords such as ``x-kubernetes-*`` are ignored by jsonschema.
2. An unknown-field walk. CRD schemas almost never set ``additionalProperties: false``; the API server
   silently prunes (or, with strict field validation, rejects) fields it doesn't know. So any key present in
   an object whose schema lists ``properties`` and sets neither ``additionalProperties`` nor
   ``x-kubernetes-preserve-unknown-fields`` is reported as ``<path>: unknown field``.

Limits: the CRDs' ``x-kubernetes-validations`` CEL rules (for example "tls must not be set for HTTP
listeners", listener name/port uniqueness, "Must have port for Service reference", path-value rules) cannot be
evaluated here and are NOT checked. Defaults are not applied, and ``metadata`` is only checked to be an
object. ``Listener.protocol`` is a pattern, not an enum, upstream, so an unknown protocol name such as "FOO"
is schema-valid.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

SCHEMA_DIR = Path(__file__).parent / "schemas" / "gateway-api"

#: ``gateway.networking.k8s.io/bundle-version`` of the CRDs the vendored schemas were taken from.
BUNDLE_VERSION = "v1.4.1"

_SCHEMA_FILES = {
    ("gateway.networking.k8s.io/v1", "Gateway"): "gateway-v1.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute-v1.json",
}

SUPPORTED = frozenset(_SCHEMA_FILES)


@cache
def _schema(api_version: str, kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / _SCHEMA_FILES[(api_version, kind)]).read_text())


@cache
def _validator(api_version: str, kind: str) -> Draft7Validator:
    return Draft7Validator(_schema(api_version, kind), format_checker=Draft7Validator.FORMAT_CHECKER)


def _fmt_path(parts: Any) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _unknown_fields(value: Any, schema: dict[str, Any], path: tuple[Any, ...]) -> list[str]:
    errors: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if props is not None:
            closed = additional is None and not schema.get("x-kubernetes-preserve-unknown-fields")
            for key, child in value.items():
                if key in props:
                    errors += _unknown_fields(child, props[key], (*path, key))
                elif closed:
                    errors.append(f"{_fmt_path((*path, key))}: unknown field")
                elif isinstance(additional, dict):
                    errors += _unknown_fields(child, additional, (*path, key))
        elif isinstance(additional, dict):
            for key, child in value.items():
                errors += _unknown_fields(child, additional, (*path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            errors += _unknown_fields(item, schema["items"], (*path, index))
    return errors


def gateway_api_errors(manifest: dict) -> list[str]:
    """Return schema problems in a Gateway API manifest, or ``[]`` when it's valid.

    Each message is ``"<dotted.path[index]>: <problem>"``, e.g. ``"spec.listeners[0].foo: unknown field"``.
    An apiVersion/kind pair outside :data:`SUPPORTED` gives a single error rather than raising.
    """
    if not isinstance(manifest, dict):
        return [f"<root>: expected an object, got {type(manifest).__name__}"]
    key = (manifest.get("apiVersion"), manifest.get("kind"))
    if key not in SUPPORTED:
        return [f"<root>: unsupported apiVersion/kind {key[0]!r}/{key[1]!r}"]
    schema_errors = sorted(_validator(*key).iter_errors(manifest), key=lambda e: (list(map(str, e.path)), e.message))
    errors = [f"{_fmt_path(e.path)}: {e.message}" for e in schema_errors]
    errors += _unknown_fields(manifest, _schema(*key), ())
    return errors
