"""`python -m agent`: read the environment, set up telemetry and serve on PORT."""

from __future__ import annotations

import os
import sys

from agent.app import create_app
from agent.config import ConfigError, Settings
from agent.serving import serve


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    return serve(
        settings.role,
        settings.log_level,
        settings.port,
        lambda telemetry, _stop: create_app(settings, telemetry=telemetry),
    )


if __name__ == "__main__":
    sys.exit(main())
