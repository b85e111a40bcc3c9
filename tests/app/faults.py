"""Real parts for fault tests: a SecantusDB process of the test's own (so pausing it leaves the
session's server alone), a counting loopback provider, and the worker as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


class OwnDatabase:
    """A SecantusDB server process; ``pause``/``resume`` stop and continue it like a stalled host."""

    def __init__(self, storage: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.infra.embedded_db", "--storage", str(storage), "--database", "x"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        uri = self.process.stdout.readline().strip()
        if not uri:
            self.process.kill()
            raise RuntimeError("the embedded database did not start")
        self.server = uri.rsplit("/", 1)[0]

    def uri(self, database: str) -> str:
        return f"{self.server}/{database}"

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop the server; KILL it if it does not stop (a test must leave no process behind)."""
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class CountingProvider:
    """An HTTP SMS/push provider on loopback that counts each message id it accepts."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: Counter[str] = Counter()
        self.to: dict[str, str] = {}
        self.delay = delay
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(provider.delay)
                with provider._lock:
                    provider.received[body["id"]] += 1
                    provider.to[body["id"]] = body["to"]
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def worker_env(var_dir: Path, mongodb_uri: str, provider: CountingProvider) -> dict[str, str]:
    """The environment of a development worker whose SMS and push go to ``provider``."""
    return {
        "PATH": os.environ["PATH"],
        "HOSO_ENV": "development",
        "HOSO_VAR_DIR": str(var_dir),
        "HOSO_MONGODB_URI": mongodb_uri,
        "HOSO_ARGON2_MEMORY_KIB": "8192",
        "HOSO_ARGON2_TIME_COST": "1",
        "HOSO_SMS_URL": provider.url,
        "HOSO_SMS_TOKEN": "sms-token-123",
        "HOSO_PUSH_URL": provider.url,
        "HOSO_PUSH_TOKEN": "push-token-123",
        "HOSO_LOG_LEVEL": "INFO",
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``flask --app app notifications worker`` as a real process, its output into ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([str(VENV_BIN / "flask"), "--app", "app", "notifications", "worker",
                                 "--interval", "0.2"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_until(condition, timeout: float, step: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())
