"""A 100,000-line upload streams through a real gunicorn worker in flat memory.

The body is generated as it is sent (never held whole); the worker's resident memory is sampled
from /proc while it works. Its peak may not grow by more than a fraction of the upload's size.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import DATA_KEY, JWT_KEY_PEM
from tests.helpers import facility_token, national_id_for
from tests.records_data import VISIT

LINES = 100_000
WARM_UP_LINES = 2_000
CITIZENS = 500
ROOT = Path(__file__).parents[2]
STATUS = re.compile(rb'"status": (\d{3})')


def ndjson_line(number: int) -> bytes:
    body = {"type": "visit", "source_id": f"LK{number:07d}",
            "national_id": national_id_for(1985, "male", number % CITIZENS), "full_name": "Nguyễn Văn Nam",
            "date_of_birth": "1985-03-14", "sex": "male", **VISIT}
    if number % 10 == 9:
        body["diagnoses"] = [{"code": "not-icd", "principal": True}]  # every tenth line is refused
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def resident_kib(pid: int, field: str = "VmHWM") -> int:
    for text in Path(f"/proc/{pid}/status").read_text().splitlines():
        if text.startswith(field + ":"):
            return int(text.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def upload(port: int, token: str, first: int, count: int) -> dict[int, int]:
    """Send lines ``first..first+count`` chunked while reading the answer; count statuses."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(
        b"POST /api/v1/facility/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: Bearer {token}\r\n\r\n".encode()
    )

    def send() -> None:
        batch: list[bytes] = []
        for number in range(first, first + count):
            batch.append(ndjson_line(number))
            if len(batch) == 100:
                data = b"".join(batch)
                connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                batch = []
        data = b"".join(batch)
        if data:
            connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        connection.sendall(b"0\r\n\r\n")

    sender = threading.Thread(target=send)
    sender.start()
    counts: dict[int, int] = {}
    tail = b""
    while True:
        data = connection.recv(65536)
        if not data:
            break
        text = tail + data
        cut = text.rfind(b"\n")
        for match in STATUS.finditer(text[: cut + 1]):
            counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
        tail = text[cut + 1:]
    sender.join()
    connection.close()
    return counts


@pytest.mark.slow
def test_hundred_thousand_lines_in_flat_memory(app, settings, tmp_path):
    token = facility_token("01001")
    port = free_port()
    env = {
        "PATH": os.environ["PATH"], "HOSO_ENV": "development", "HOSO_VAR_DIR": str(tmp_path / "var"),
        "HOSO_MONGODB_URI": settings.mongodb_uri, "HOSO_JWT_PRIVATE_KEY": JWT_KEY_PEM,
        "HOSO_DATA_KEY": base64.b64encode(DATA_KEY).decode(), "HOSO_LOG_LEVEL": "WARNING",
        "HOSO_RATE_LIMIT_DEFAULT": "1000 per minute",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--workers", "1", "--threads", "1", "--timeout", "600",
         "--bind", f"127.0.0.1:{port}", "app:create_app()"],
        env=env, cwd=ROOT, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        worker = int(subprocess.check_output(["pgrep", "-P", str(server.pid)]).split()[0])
        warm = upload(port, token, 0, WARM_UP_LINES)
        assert warm == {201: WARM_UP_LINES * 9 // 10, 422: WARM_UP_LINES // 10}
        baseline = resident_kib(worker)
        started = time.monotonic()
        counts = upload(port, token, WARM_UP_LINES, LINES)
        elapsed = time.monotonic() - started
        growth = resident_kib(worker) - baseline
        size = sum(len(ndjson_line(n)) for n in range(0, LINES, 1000)) * 1000
        print(f"\n{LINES} lines (~{size / 1e6:.0f} MB) in {elapsed:.0f} s ({LINES / elapsed:.0f} lines/s); "
              f"worker peak RSS {baseline / 1024:.0f} MiB after warm-up, +{growth / 1024:.1f} MiB after")
        assert counts == {201: LINES * 9 // 10, 422: LINES // 10}
        assert growth < 40 * 1024, "memory grew with the upload"
    finally:
        server.terminate()
        server.wait(timeout=30)
