"""`python -m agent`: read the environment, set up telemetry and serve on PORT."""

from __future__ import annotations

import os
import sys

import uvicorn

from agent.app import create_app
from agent.config import ConfigError, Settings
from agent.telemetry import Telemetry, configure_logging


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return 2
    telemetry = Telemetry.from_env(settings.role)
    telemetry.install_globals()
    configure_logging(telemetry, settings.log_level)
    try:
        app = create_app(settings, telemetry=telemetry)
        # log_config=None keeps uvicorn's loggers on the root handlers set up above; the access log
        # is off because every request already has a server span.
        uvicorn.run(app, host="0.0.0.0", port=settings.port, log_config=None, access_log=False, server_header=False)
    finally:
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
