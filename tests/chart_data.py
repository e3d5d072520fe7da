"""The Helm charts' own values files, and what Helm does with the lab's values before a template sees them.

`../shared/charts/<chart>-<version>/` holds each chart's `values.yaml` (and `values.schema.json` where the
chart has one). Helm coalesces the user's values over the chart's: maps merge key by key, anything else is
replaced, and a key set to null is deleted. It then validates the result against the schema.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from tests.harness import REPO, Registered

CHARTS = REPO.parent / "shared" / "charts"


@dataclass(frozen=True)
class ChartData:
    folder: str
    pinned_because: str = ""
    """Why pinning another version than the data describes is safe; empty when they are the same."""

    @property
    def path(self) -> Path:
        return CHARTS / self.folder

    @functools.cached_property
    def values(self) -> dict:
        return yaml.load((self.path / "values.yaml").read_text(), Loader=yaml.CSafeLoader)

    @functools.cached_property
    def schema(self) -> dict | None:
        schema = self.path / "values.schema.json"
        return json.loads(schema.read_text()) if schema.exists() else None

    @functools.cached_property
    def version(self) -> str | None:
        chart = self.path / "Chart.yaml"
        return yaml.safe_load(chart.read_text())["version"] if chart.exists() else None


def chart_name(release: Registered) -> str:
    """`traefik`, `oci://quay.io/jetstack/charts/cert-manager`: the chart's own name."""
    return release["chart"].rsplit("/", 1)[-1]


def coalesce(defaults: Any, overrides: Any) -> Any:
    """Helm's coalescing of user values over a chart's: nested maps merge, null deletes, the rest replaces."""
    if not isinstance(defaults, Mapping) or not isinstance(overrides, Mapping):
        return copy.deepcopy(overrides)
    merged = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = coalesce(defaults.get(key), value)
    return merged


def merge_overwrite(base: Any, top: Any) -> Any:
    """Sprig's mergeOverwrite, as charts merge a structured config over a rendered one: null is kept."""
    if not isinstance(base, Mapping) or not isinstance(top, Mapping):
        return copy.deepcopy(top)
    merged = dict(base)
    for key, value in top.items():
        merged[key] = merge_overwrite(base.get(key), value)
    return merged


def user_values(release: Registered) -> dict:
    """What the release gives Helm: its values files, then its inline values over them."""
    files = [yaml.safe_load(_asset_text(asset)) for asset in release.get("valueYamlFiles") or []]
    merged: dict = {}
    for values in [*files, release.get("values") or {}]:
        merged = merge_overwrite(merged, values)
    return merged


def _asset_text(asset: Any) -> str:
    if isinstance(asset, pulumi.StringAsset):
        return asset.text
    raise TypeError(f"values files are StringAssets, got {asset!r}")


def leaf_paths(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path the values set, down to a leaf or a list (a list is one value to Helm)."""
    if isinstance(values, Mapping) and values:
        for key, value in values.items():
            yield from leaf_paths(value, (*prefix, str(key)))
    else:
        yield prefix
