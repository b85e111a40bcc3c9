"""Record benchmarks, measured side by side in one run on one server (ratios, not bare times).

- Bulk ingestion: records per second through POST /facility/bulk (parsing and validation
  included) / raw pymongo ``insert_many`` of the equivalent documents into the same server.
- Timeline: GET /me/visits (a page of 20 for a citizen with 200 visits, 10,000 citizens seeded)
  requests per second at 16 concurrent clients / GET /health on the same server, with latencies.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).parents[1]
BULK_LINES = 6_000
SEED_CITIZENS = 10_000
VISITS_PER_SEEDED_CITIZEN = 3
TIMELINE_VISITS = 200
CONCURRENCY = 16
LOAD_SECONDS = 8.0


def _visit(number: int, national_id: str) -> dict[str, Any]:
    started = datetime(2025, 1, 1, 8, tzinfo=UTC) + timedelta(hours=number)
    return {
        "national_id": national_id, "full_name": "Nguyễn Văn Nam", "date_of_birth": "1985-03-14", "sex": "male",
        "visit_type": "01", "started_at": started.isoformat(),
        "ended_at": (started + timedelta(minutes=40)).isoformat(),
        "department": "Khoa Nội", "practitioner": {"code": "BS001", "name": "BS. Trần Thị Hoa"},
        "reason": "Ho kéo dài",
        "diagnoses": [{"code": "J20.9", "display": "Viêm phế quản cấp", "text": "Viêm phế quản cấp",
                       "principal": True}],
        "lab_results": [{"code": "CRP", "name": "CRP", "value": "12.5", "unit": "mg/L", "conclusion": "Tăng nhẹ",
                         "at": (started + timedelta(minutes=20)).isoformat()}],
        "prescriptions": [{"code": "79001abcdefg-c", "items": [{
            "drug_code": "40.17", "name": "Amoxicillin", "strength": "500mg", "dose_text": "1 viên x 3 lần/ngày",
            "quantity": 21, "route": "uống"}]}],
        "notes": "Tái khám sau 1 tuần", "status": "final",
    }


def national_id(serial: int) -> str:
    return f"0010850{serial:05d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def database():  # type: ignore[no-untyped-def]
    """A fresh SecantusDB server in its own process; yields its URI (database ``bench``)."""
    with tempfile.TemporaryDirectory() as storage:
        process = subprocess.Popen([sys.executable, "-m", "app.infra.embedded_db", "--storage", storage,
                                    "--database", "bench"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert process.stdout is not None
        uri = process.stdout.readline().strip()
        try:
            yield uri
        finally:
            process.terminate()
            process.wait(timeout=30)


def _secrets_env(uri: str, var_dir: str) -> dict[str, str]:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return {
        "PATH": os.environ["PATH"], "HOSO_ENV": "development", "HOSO_VAR_DIR": var_dir, "HOSO_MONGODB_URI": uri,
        "HOSO_JWT_PRIVATE_KEY": pem, "HOSO_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "HOSO_LOG_LEVEL": "WARNING", "HOSO_RATE_LIMIT_DEFAULT": "10000000 per minute",
        "HOSO_ARGON2_MEMORY_KIB": "8192", "HOSO_ARGON2_TIME_COST": "1",
    }


@contextmanager
def api_server(env: dict[str, str], workers: int, threads: int):  # type: ignore[no-untyped-def]
    """gunicorn serving the app on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(workers), "--threads", str(threads),
         "--bind", f"127.0.0.1:{port}", "--timeout", "300", "app:create_app()"],
        env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.2)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def _in_app(env: dict[str, str], code: str, stdin: str | None = None) -> str:
    """Run set-up code inside the app (same settings as the server) and return what it prints.

    ``stdin`` is handed to the code on its standard input (e.g. a JSON list of citizens)."""
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True,
                          text=True, input=stdin).stdout.strip()


SETUP = """
from app import create_app
from app.clock import utcnow
from app.runtime import runtime
from app.security.tokens import TokenType
from app.services import facilities
from app.services.audit import SYSTEM_ACTOR, RequestContext
app = create_app()
with app.app_context():
    ctx = RequestContext(actor=SYSTEM_ACTOR, now=utcnow(), request_id="bench", trail=runtime().audit_trail)
    facilities.register_facility(ctx, "01001", "Bệnh viện Bench", "Hà Nội")
    new = facilities.issue_client(ctx, "01001", runtime().passwords, "bench")
    print(runtime().tokens.issue(new.client.client_id, TokenType.FACILITY, utcnow(), facility="01001").token)
"""

CITIZEN_TOKEN = """
from datetime import timedelta
from app import create_app
from app.models.citizen import Citizen
from app.clock import utcnow
from app.runtime import runtime
from app.security.tokens import TokenType
app = create_app()
with app.app_context():
    citizen = Citizen.objects.get(national_id="{national_id}")
    Citizen.objects(id=citizen.id).update_one(set__state="active", set__activated_at=utcnow() - timedelta(days=30))
    print(runtime().tokens.issue(str(citizen.id), TokenType.CITIZEN, utcnow(), sid="bench").token)
"""


def _stream_bulk(port: int, token: str, lines: list[bytes]) -> int:
    """Upload NDJSON chunked while reading the answer (both directions stream); count 201s."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(b"POST /api/v1/facility/bulk HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
                       b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                       + f"Authorization: Bearer {token}\r\n\r\n".encode())

    def send() -> None:
        for start in range(0, len(lines), 100):
            data = b"".join(lines[start:start + 100])
            connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        connection.sendall(b"0\r\n\r\n")

    sender = threading.Thread(target=send)
    sender.start()
    received = bytearray()
    while chunk := connection.recv(65536):
        received += chunk
    sender.join()
    connection.close()
    return received.count(b'"status": 201')


def bulk_ratio(uri: str, env: dict[str, str], token: str, port: int) -> list[str]:
    """Records per second through the API vs raw insert_many of the same documents."""
    lines = [(json.dumps({"type": "visit", "source_id": f"B{n:06d}", **_visit(n, national_id(n % 500))},
                         ensure_ascii=False) + "\n").encode() for n in range(BULK_LINES)]
    _stream_bulk(port, token, lines[:500])  # warm-up: creates the 500 citizens, loads code paths
    started = time.perf_counter()
    created = _stream_bulk(port, token, lines[500:])
    api_rate = created / (time.perf_counter() - started)

    client: pymongo.MongoClient = pymongo.MongoClient(uri)
    raw = client.get_default_database()["raw_visits"]
    raw.create_index([("citizen_id", 1), ("started_at", -1), ("_id", -1)])
    raw.create_index([("citizen_id", 1), ("facility_code", 1), ("started_at", -1)])
    citizen = ObjectId()
    documents = []
    for n in range(500, BULK_LINES):
        body = _visit(n, national_id(n % 500))
        for key in ("national_id", "full_name", "date_of_birth", "sex"):
            del body[key]
        body.update(citizen_id=citizen, facility_code="01001", source_id=f"B{n:06d}", version=1,
                    started_at=datetime.fromisoformat(body["started_at"]),
                    ended_at=datetime.fromisoformat(body["ended_at"]), updated_at=datetime.now(UTC))
        documents.append(body)
    started = time.perf_counter()
    for start in range(0, len(documents), 200):
        raw.insert_many(documents[start:start + 200], ordered=False)
    raw_rate = len(documents) / (time.perf_counter() - started)
    client.close()
    return [f"bulk ingestion: {api_rate:,.0f} records/s through POST /facility/bulk vs {raw_rate:,.0f}/s raw "
            f"insert_many -> ratio {api_rate / raw_rate:.2f} (goal >= 0.5)"]


def run_clients(threads: list[threading.Thread]) -> float:
    """Start the client threads together, wait for them all; the seconds it took."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _load(port: int, path: str, headers: dict[str, str],
          seconds: float = LOAD_SECONDS) -> tuple[float, list[float]]:
    """Requests per second and latencies (ms) at CONCURRENCY keep-alive clients for ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    errors: list[int] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        mine: list[float] = []
        while time.perf_counter() < stop:
            begin = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
            mine.append((time.perf_counter() - begin) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    elapsed = run_clients([threading.Thread(target=client) for _ in range(CONCURRENCY)])
    if errors:
        raise RuntimeError(f"{path}: {len(errors)} non-200 answers, e.g. {errors[0]}")
    return len(latencies) / elapsed, latencies


def _percentiles(latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=100)
    return f"p50 {cuts[49]:.1f} ms, p95 {cuts[94]:.1f} ms, p99 {cuts[98]:.1f} ms"


def seed_timeline(uri: str, env: dict[str, str], port: int, token: str) -> str:
    """10,000 citizens with a few visits each (raw inserts), and one citizen with 200 visits via the API."""
    client: pymongo.MongoClient = pymongo.MongoClient(uri)
    db = client.get_default_database()
    now = datetime.now(UTC)
    citizens = [{"_id": ObjectId(), "national_id": f"0020900{n:05d}", "full_name": "Trần Thị Mai",
                 "date_of_birth": "1990-05-01", "sex": "female", "state": "pending_activation", "locked": False,
                 "created_at": now} for n in range(SEED_CITIZENS)]
    for start in range(0, len(citizens), 1000):
        db.citizens.insert_many(citizens[start:start + 1000])
    visits = []
    for citizen in citizens:
        for n in range(VISITS_PER_SEEDED_CITIZEN):
            started = now - timedelta(days=30 * n + 1)
            visits.append({"citizen_id": citizen["_id"], "facility_code": "01001", "source_id": f"S{citizen['_id']}{n}",
                           "started_at": started, "status": "final", "version": 1, "payload_hash": "x",
                           "visit_type": "01", "reason": "Khám định kỳ", "created_at": now, "updated_at": now,
                           "provenance": {"facility_code": "01001", "received_at": now, "payload_hash": "x"}})
    for start in range(0, len(visits), 2000):
        db.visits.insert_many(visits[start:start + 2000])
    client.close()
    lines = [(json.dumps({"type": "visit", "source_id": f"T{n:04d}", **_visit(n, "001085123456")},
                         ensure_ascii=False) + "\n").encode() for n in range(TIMELINE_VISITS)]
    assert _stream_bulk(port, token, lines) == TIMELINE_VISITS
    return _in_app(env, CITIZEN_TOKEN.format(national_id="001085123456"))


def timeline_ratio(port: int, citizen_token: str) -> list[str]:
    """GET /me/visits vs GET /health on the same server at 16 concurrent clients."""
    auth = {"Authorization": f"Bearer {citizen_token}"}
    _load(port, "/api/v1/health", {})  # warm-up both paths
    health_rate, health_latencies = _load(port, "/api/v1/health", {})
    visits_rate, visits_latencies = _load(port, "/api/v1/me/visits?limit=20", auth)
    health_again, _ = _load(port, "/api/v1/health", {})
    # the baseline is the better of two health runs (before and after): a slow one would flatter us
    baseline = max(health_rate, health_again)
    cuts = statistics.quantiles(visits_latencies, n=100)
    return [
        f"timeline: GET /me/visits {visits_rate:,.0f} req/s vs GET /health {baseline:,.0f} req/s (better of "
        f"{health_rate:,.0f} before and {health_again:,.0f} after) at {CONCURRENCY} clients -> ratio "
        f"{visits_rate / baseline:.2f} (goal >= 0.5)",
        f"  /me/visits latency {_percentiles(visits_latencies)}; p99/p50 = {cuts[98] / cuts[49]:.1f} (goal < 10)",
        f"  /health    latency {_percentiles(health_latencies)}",
    ]


def run() -> list[str]:
    """All record benchmarks; returns the lines to print."""
    lines: list[str] = []
    with database() as uri, tempfile.TemporaryDirectory() as var_dir:
        env = _secrets_env(uri, var_dir)
        token = _in_app(env, SETUP)
        with api_server(env, workers=1, threads=1) as port:
            lines += bulk_ratio(uri, env, token, port)
            citizen_token = seed_timeline(uri, env, port, token)
        with api_server(env, workers=2, threads=8) as port:
            lines += timeline_ratio(port, citizen_token)
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
