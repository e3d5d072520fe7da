"""Running one of the image's programs: telemetry up, the app on 0.0.0.0:PORT, telemetry flushed."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from agent.telemetry import Telemetry, configure_logging


def serve(service_name: str, log_level: str, port: int, build_app: Callable[[Telemetry], FastAPI]) -> int:
    telemetry = Telemetry.from_env(service_name)
    telemetry.install_globals()
    configure_logging(telemetry, log_level)
    try:
        # log_config=None keeps uvicorn's loggers on the root handlers set up above; the access log
        # is off because every request already has a server span.
        uvicorn.run(
            build_app(telemetry), host="0.0.0.0", port=port, log_config=None, access_log=False, server_header=False
        )
    finally:
        telemetry.shutdown()
    return 0
