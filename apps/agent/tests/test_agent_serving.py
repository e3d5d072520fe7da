"""The app behind a real uvicorn on loopback, served as the image serves it (serving.server_config).

What only a real server shows: keep-alive connections, chunked bodies, and the contextvars that
asyncio carries from one request's task into the connection's later read callbacks.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from opentelemetry.trace import SpanKind

from agent.app import create_app
from agent_test_support import PROMPT, Captured, listening_socket, make_settings, passing_text, serving


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a content-length body: (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = sock.recv(65536)
        assert received, f"connection closed after {data!r}"
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.split(b": ", 1) for line in lines[1:])
    length = int(headers[b"content-length"])
    while len(body) < length:
        received = sock.recv(65536)
        assert received, "connection closed in the body"
        body += received
    assert len(body) == length, "nothing after the body: one response per request"
    return int(lines[0].split()[1]), body


def post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def chunked_post(path: str, total: int, chunk: int = 65536) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * chunk
    return head.encode() + b"".join(b"%x\r\n%s\r\n" % (chunk, piece) for _ in range(total // chunk)) + b"0\r\n\r\n"


def test_a_refused_chunked_body_does_not_leak_its_trace_into_the_next_request(captured: Captured) -> None:
    """A 413 on a chunked body, then a good request on the same keep-alive connection.

    The body is in the socket before the server reads it, so uvicorn's first read holds more than
    its 64 KiB high-water mark and pauses reading; the app's first receive() resumes it from inside
    the request's server span. Without a fresh context per request, the second request ran inside
    that span: an INTERNAL span, no SERVER span.
    """
    app = create_app(make_settings(max_text_chars=100), telemetry=captured.telemetry)
    listener = listening_socket()
    client = socket.create_connection(listener.getsockname(), timeout=10)
    # Queued before the server accepts: the first read returns far more than 64 KiB.
    sender = threading.Thread(target=client.sendall, args=(chunked_post("/review", 512 * 1024),), daemon=True)
    sender.start()
    time.sleep(0.05)
    with serving(app, listener), client:
        assert read_response(client)[0] == 413
        sender.join(10)
        body = json.dumps({"text": passing_text("prompt-reviewer", PROMPT)[:100]}).encode()
        client.sendall(post("/review", body))
        assert read_response(client)[0] == 200

    servers = [s for s in captured.finished_spans() if s.name == "POST /review"]
    assert [s.kind for s in servers] == [SpanKind.SERVER, SpanKind.SERVER]
    assert servers[1].parent is None, "the second request starts a trace of its own"
    assert servers[1].context.trace_id != servers[0].context.trace_id
    chat = next(s for s in captured.finished_spans() if s.name.startswith("chat "))
    assert chat.parent is not None and chat.parent.span_id == servers[1].context.span_id


def test_malformed_bodies_keep_the_connection_and_log_no_error(captured: Captured) -> None:
    app = create_app(make_settings(), telemetry=captured.telemetry)
    listener = listening_socket()
    with serving(app, listener), socket.create_connection(listener.getsockname(), timeout=10) as client:
        for body in (b'{"text": NaN}', b'{"text": "\xff\xfe"}', '{"text": "x"}'.encode("utf-16"), b'{"text": 1e999}'):
            client.sendall(post("/review", body))
            status, answer = read_response(client)
            assert status == 422 and b"input" not in answer
        client.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
        head = client.recv(65536)
        assert head.startswith(b"HTTP/1.1 200 ")
        client.sendall(post("/review", json.dumps({"text": passing_text("prompt-reviewer", PROMPT)}).encode()))
        assert read_response(client)[0] == 200, "the same connection still serves"
    assert not [r for r in captured.log_records() if r.log_record.severity_text == "ERROR"]
