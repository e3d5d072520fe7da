"""Running one of the image's programs: telemetry up, the app on 0.0.0.0:PORT, telemetry flushed."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from agent.telemetry import Telemetry, configure_logging

# uvicorn's exit code when the server could not start (e.g. the port is taken).
STARTUP_FAILURE = 3


def server_config(app: FastAPI, port: int, host: str = "0.0.0.0") -> uvicorn.Config:
    """How the image's programs serve HTTP; tests serve with the same settings on loopback.

    reset_contextvars: every request runs in a fresh contextvars.Context. Without it a request can
    start inside another's trace: when an app reads a large body, uvicorn resumes reading the socket
    from the request's task, asyncio captures that task's context for every later read callback of
    the connection, and the next request on the keep-alive connection is created in it. The
    OpenTelemetry ASGI middleware then sees an active span and makes an INTERNAL child span instead
    of a SERVER span (seen after a chunked body refused with 413).

    log_config=None keeps uvicorn's loggers on the root handlers set up by configure_logging; the
    access log is off because every request already has a server span.
    """
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        reset_contextvars=True,
    )


def serve(
    service_name: str,
    log_level: str,
    port: int,
    build_app: Callable[[Telemetry, Callable[[], None]], FastAPI],
) -> int:
    """Serve the app `build_app` makes; the callable it is given stops the server (e.g. when done)."""
    telemetry = Telemetry.from_env(service_name)
    telemetry.install_globals()
    configure_logging(telemetry, log_level)
    servers: list[uvicorn.Server] = []

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    try:
        server = uvicorn.Server(server_config(build_app(telemetry, stop), port))
        servers.append(server)
        server.run()
    finally:
        telemetry.shutdown()
    return 0 if server.started else STARTUP_FAILURE
