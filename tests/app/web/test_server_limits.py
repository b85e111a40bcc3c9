"""Oversized and malformed requests against a real gunicorn (gunicorn.conf.py): problem documents only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from tests.app.faults import ROOT, VENV_BIN, wait_until
from tests.helpers import free_port

HEADERS_OF_EVERY_ANSWER = {"x-content-type-options": "nosniff", "cache-control": "no-store"}


@pytest.fixture
def gunicorn(settings, tmp_path):
    """``gunicorn 'app:create_app()'`` from the repository root, as the README runs it in production."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "HOSO_ENV": "development", "HOSO_VAR_DIR": str(tmp_path / "var"),
           "HOSO_MONGODB_URI": settings.mongodb_uri, "HOSO_LOG_LEVEL": "WARNING"}
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                "--threads", "2", "app:create_app()"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        assert wait_until(lambda: exchange(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200, 60), \
            (tmp_path / "gunicorn.log").read_text()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a fresh connection; the status, headers (lower-case names) and body."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(raw)
            connection.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
    except OSError:
        return 0, {}, b""
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]) if lines[0] else 0, headers, body


def request(target: str = "/api/v1/health", headers: list[tuple[str, str]] = ()) -> bytes:
    fields = "".join(f"{name}: {value}\r\n" for name, value in [("Host", "127.0.0.1"), *headers])
    return f"GET {target} HTTP/1.1\r\n{fields}Connection: close\r\n\r\n".encode()


def assert_problem_answer(answer, status: int) -> dict:
    got, headers, body = answer
    assert got == status, (got, headers, body[:200])
    assert headers["content-type"] == "application/problem+json"
    for name, value in HEADERS_OF_EVERY_ANSWER.items():
        assert headers[name] == value, name
    document = json.loads(body)
    assert document["status"] == status and document["type"].startswith("/problems/")
    assert document["request_id"] == headers["x-request-id"] and len(headers["x-request-id"]) >= 8
    return document


@pytest.mark.parametrize(("name", "raw", "status"), [
    ("request line over the app's 4,094 bytes", request("/api/v1/health?q=" + "a" * 5000), 414),
    ("request line over gunicorn's 8,190 bytes", request("/api/v1/health?q=" + "a" * 9000), 414),
    ("unknown route, long line", request("/nowhere/" + "b" * 6000), 414),
    ("header over the app's 8,190 bytes", request(headers=[("X-Big", "c" * 9000)]), 431),
    ("header over gunicorn's 16,380 bytes", request(headers=[("X-Big", "c" * 20000)]), 431),
    ("more than the app's 100 fields", request(headers=[(f"X-F{n}", "v") for n in range(150)]), 431),
    ("more than gunicorn's 200 fields", request(headers=[(f"X-F{n}", "v") for n in range(250)]), 431),
    ("a request line gunicorn cannot parse", b"GET\r\n\r\n", 400),
    ("a header name gunicorn refuses", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400),
], ids=lambda value: value if isinstance(value, str) else "")
def test_oversized_or_malformed_requests_get_problem_documents(gunicorn, name, raw, status):
    assert_problem_answer(exchange(gunicorn, raw), status)


def test_requests_within_the_limits_are_served(gunicorn):
    line = request("/api/v1/health?q=" + "a" * 3900, headers=[("X-Big", "c" * 8000)]
                   + [(f"X-F{n}", "v") for n in range(90)])
    status, headers, _ = exchange(gunicorn, line)
    assert status == 200 and headers["x-content-type-options"] == "nosniff"
    started = time.monotonic()
    assert exchange(gunicorn, request())[0] == 200 and time.monotonic() - started < 5
