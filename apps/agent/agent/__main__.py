"""`python -m agent`: read the environment, set up telemetry and serve AGENT_ROLE's app on PORT."""

from __future__ import annotations

import os
import sys

from agent.app import create_app
from agent.config import ConfigError, Settings
from agent.roles import LEARNING_CYCLE
from agent.serving import serve
from agent.workflow_app import create_workflow_app


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
        lambda telemetry, _stop: (create_workflow_app if settings.role == LEARNING_CYCLE else create_app)(
            settings, telemetry=telemetry
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
