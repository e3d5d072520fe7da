"""Alloy's config as it runs: the `.alloy` files of its config directory, with `sys.env(...)` resolved."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

SYS_ENV = re.compile(r'sys\.env\("([A-Z0-9_]+)"\)')


def resolved(files: Mapping[str, str], env: Mapping[str, str]) -> str:
    """Every `.alloy` file, as Alloy loads a directory (one config), each `sys.env("X")` as its value."""
    text = "\n".join(content for path, content in sorted(files.items()) if path.endswith(".alloy"))
    missing = sorted(set(SYS_ENV.findall(text)) - set(env))
    assert not missing, f"the config reads variables the container does not set: {missing}"
    return SYS_ENV.sub(lambda m: json.dumps(env[m.group(1)]), text)


def in_cluster(objects: list[dict]) -> str:
    """The cluster Alloy's resolved config, from its Deployment's environment and its ConfigMap."""
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "alloy"]
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "alloy-config"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return resolved(config_map["data"], {e["name"]: e["value"] for e in container["env"] if "value" in e})
