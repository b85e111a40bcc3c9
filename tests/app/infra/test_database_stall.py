"""A 25-second database stall under load: a real gunicorn API, the notification worker, readers and a
bulk upload, all against a SecantusDB process of this test's own, which is paused with SIGSTOP."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

import mongoengine
import pytest

from app import create_app
from app.models.notification import Notification
from app.models.records import Visit
from tests.app.faults import ROOT, VENV_BIN, CountingProvider, OwnDatabase, start_worker, wait_until, worker_env
from tests.conftest import DATA_KEY, JWT_KEY_PEM, make_settings
from tests.helpers import CitizenActions, citizen_body, facility_token, free_port, national_id_for
from tests.records_data import VISIT

STALL = 25
LINES = 1500


def get(url: str, token: str | None = None) -> int:
    """Status of a GET (0 when no answer came within 30 s)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


class Readers:
    """Threads reading health and one citizen's visits until stopped; statuses counted per phase."""

    def __init__(self, base: str, token: str) -> None:
        self.stop = threading.Event()
        self.phase = "before"
        self.seen: dict[str, Counter[tuple[str, int]]] = {}
        self.threads = [threading.Thread(target=self._read, args=(name, url, auth))
                        for name, url, auth in (("health", f"{base}/api/v1/health", None),
                                                ("visits", f"{base}/api/v1/me/visits", token))]
        for thread in self.threads:
            thread.start()

    def _read(self, name: str, url: str, token: str | None) -> None:
        while not self.stop.is_set():
            phase = self.phase
            self.seen.setdefault(phase, Counter())[(name, get(url, token))] += 1
            self.stop.wait(0.2)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def line(number: int, national_id: str) -> bytes:
    body = {"type": "visit", "source_id": f"STALL{number:05d}", "national_id": national_id,
            "full_name": "Nguyễn Văn Nam", "date_of_birth": "1985-03-14", "sex": "male", **VISIT}
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


def slow_upload(port: int, token: str, national_ids: list[str], answers: list[dict]) -> None:
    """POST /facility/bulk, chunked, 25 lines every 0.25 s, so that the upload spans the stall."""
    connection = socket.create_connection(("127.0.0.1", port))
    connection.settimeout(120)
    connection.sendall(b"POST /api/v1/facility/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                       b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
                       + f"Authorization: Bearer {token}\r\n\r\n".encode())

    def send() -> None:
        try:
            for first in range(0, LINES, 25):
                data = b"".join(line(n, national_ids[n % len(national_ids)]) for n in range(first, first + 25))
                connection.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                time.sleep(0.25)
            connection.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server gave up on the upload: what it acknowledged is checked

    sender = threading.Thread(target=send)
    sender.start()
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except OSError:
        pass
    sender.join()
    connection.close()
    body = received.partition(b"\r\n\r\n")[2]
    answers.extend(json.loads(match) for match in _ndjson_objects(body))


def _ndjson_objects(chunked: bytes) -> list[bytes]:
    """The JSON lines inside a chunked body (chunk-size lines are not JSON objects)."""
    return [text for text in chunked.split(b"\n") if text.strip().startswith(b"{") and text.strip().endswith(b"}")]


@pytest.mark.slow
def test_a_25_second_stall_crashes_nothing_loses_nothing_doubles_nothing(tmp_path):
    database = OwnDatabase(tmp_path / "db")
    provider = CountingProvider()
    settings = make_settings(database.server, tmp_path / "var")
    env = {**worker_env(tmp_path / "var", settings.mongodb_uri, provider), "HOSO_JWT_PRIVATE_KEY": JWT_KEY_PEM,
           "HOSO_DATA_KEY": base64.b64encode(DATA_KEY).decode(), "HOSO_LOG_LEVEL": "WARNING",
           "HOSO_RATE_LIMIT_DEFAULT": "100000 per minute"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = worker = readers = None
    try:
        app = create_app(settings)
        with app.app_context():
            client = app.test_client()
            actions = CitizenActions(client)
            account = actions.enrol(serial=400000)
            client.post("/api/v1/me/devices", json={"platform": "android", "push_token": "fcm-stall"},
                        headers=account.headers)
            for serial in range(20):  # security messages on SMS (and e-mail, to the outbox file)
                actions.register(citizen_body(serial=410000 + serial))
            facility = facility_token("01001")
        national_ids = [account.national_id] + [national_id_for(1985, "male", 420000 + n) for n in range(9)]
        api_log = (tmp_path / "api.log").open("wb")
        api = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                "--threads", "8", "app:create_app()"], cwd=ROOT, env=env, stdout=api_log,
                               stderr=api_log)
        assert wait_until(lambda: get(f"{base}/api/v1/health") == 200, 60)
        api_workers = subprocess.check_output(["pgrep", "-P", str(api.pid)]).split()
        worker = start_worker(env, tmp_path / "worker.log")
        readers = Readers(base, account.access_token)
        answers: list[dict] = []
        uploader = threading.Thread(target=slow_upload, args=(port, facility, national_ids, answers))
        uploader.start()
        time.sleep(4)
        readers.phase = "stalled"
        database.pause()
        time.sleep(STALL)
        database.resume()
        resumed = time.monotonic()
        readers.phase = "after"
        uploader.join(timeout=180)
        assert not uploader.is_alive()
        assert wait_until(lambda: get(f"{base}/api/v1/health") == 200, 60)
        recovered = time.monotonic() - resumed
        time.sleep(3)
        readers.close()
        # no process crashed (the same gunicorn worker too: not killed by its master)
        assert api.poll() is None and worker.poll() is None
        assert subprocess.check_output(["pgrep", "-P", str(api.pid)]).split() == api_workers
        after = readers.seen.get("after", Counter())
        assert after[("health", 200)] > 0 and after[("visits", 200)] > 0, readers.seen
        # every line the upload acknowledged is stored
        acknowledged = {f"STALL{answer['line'] - 1:05d}" for answer in answers if answer.get("status") in (200, 201)}
        mongoengine.disconnect(alias="default")
        app = create_app(settings)
        with app.app_context():
            stored = {visit.source_id for visit in Visit.objects(source_id__startswith="STALL").only("source_id")}
            assert acknowledged <= stored, sorted(acknowledged - stored)[:10]
            # every message queued is delivered exactly once
            assert wait_until(lambda: Notification.objects(channel__in=["sms", "push"],
                                                           status__in=["pending", "sending"]).count() == 0, 120)
            queued = {str(m.id) for m in Notification.objects(channel__in=["sms", "push"])}
            assert Notification.objects(channel__in=["sms", "push"], status="sent").count() == len(queued)
        assert set(provider.received) == queued and max(provider.received.values()) == 1
        print(f"\nhealth 200 again {recovered:.1f} s after resume; upload: {len(answers)} answers, "
              f"{len(acknowledged)} acknowledged and stored; "
              f"{len(queued)} messages sent once each; readers: {dict(readers.seen)}")
    finally:
        if readers is not None:
            readers.close()
        for process in (worker, api):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        mongoengine.disconnect(alias="default")
        provider.close()
        database.close()
