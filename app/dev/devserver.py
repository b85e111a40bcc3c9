"""``make run``: the whole system on one machine, supervised, stopped cleanly with Ctrl-C.

Creates development secrets in ``var/`` once, starts the embedded database on ``var/db`` (unless
``HOSO_MONGODB_URI`` is set), seeds demo data once, serves the API with gunicorn, runs the
notification worker, and prints the commands to try it once the API answers.

Each child runs in its own session, so the terminal's Ctrl-C (SIGINT to the foreground process
group) reaches only this launcher, which stops the children in order: the API (TERM to the
gunicorn master, then KILL to its whole process group, so no worker is left holding the port),
the notification worker, the database last. A child other than the database that exits is
started again with backoff; the database exiting stops everything.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from app.settings import Settings

DEFAULT_BIND = "127.0.0.1:8000"
ROOT = Path(__file__).resolve().parents[2]
RESTART_BACKOFF_CAP = 30.0
HEALTHY_RUN = 60.0  # a child that ran this long before exiting is restarted at once
READY_TIMEOUT = 120.0


@dataclass
class Child:
    """One supervised process: how to start it, how long to let it stop, whether to restart it."""

    name: str
    args: list[str]
    stop_timeout: float
    restart: bool
    stop_rank: int  # stopped in rising rank: the API, the worker, the database
    process: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    popen_options: dict[str, object] = field(default_factory=dict)


class DevSystem:
    """The child processes of a development run."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: list[Child] = []

    def start(self, child: Child) -> subprocess.Popen[str]:
        """Start ``child`` in a session of its own (the terminal's signals do not reach it)."""
        child.process = subprocess.Popen(  # type: ignore[call-overload]
            child.args, env=self.env, text=True, start_new_session=True, **child.popen_options)
        child.started_at = time.monotonic()
        if child not in self.children:
            self.children.append(child)
        return child.process  # type: ignore[no-any-return]

    def supervise(self) -> Child | None:
        """Restart exited children that may be restarted (with backoff); return one that may not."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None or process.poll() is None:
                if child.restart_at is not None and now >= child.restart_at:
                    child.restart_at = None
                    self.start(child)
                    print(f"hoso: {child.name} restarted", file=sys.stderr, flush=True)
                continue
            if not child.restart:
                return child
            if child.restart_at is None:
                _reap_group(process.pid)  # nothing of the dead child's group may linger
                child.failures = 0 if now - child.started_at >= HEALTHY_RUN else child.failures + 1
                delay = min(RESTART_BACKOFF_CAP, 2.0 ** child.failures - 1)
                child.restart_at = now + delay
                child.process = None
                print(f"hoso: {child.name} exited with status {process.returncode}; "
                      f"restarting in {delay:.0f} s", file=sys.stderr, flush=True)
        return None

    def stop(self) -> None:
        """Stop the children one by one: the API first, the database last."""
        for child in sorted(self.children, key=lambda c: c.stop_rank):
            process = child.process
            if process is None:
                continue
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=child.stop_timeout)
                except subprocess.TimeoutExpired:
                    print(f"hoso: {child.name} did not stop in {child.stop_timeout:.0f} s; killing it",
                          file=sys.stderr, flush=True)
            _reap_group(process.pid)
            process.wait()


def _reap_group(pgid: int) -> None:
    """KILL whatever is left in a child's process group (a gunicorn worker that ignored its master)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def split_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (gunicorn binds with SO_REUSEADDR, so do we)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def answers(url: str) -> bool:
    """True once ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_database(system: DevSystem, var_dir: Path) -> str:
    """Start SecantusDB on ``var/db`` and record its address in ``var/mongodb.uri``."""
    child = Child("the database", [sys.executable, "-m", "app.infra.embedded_db", "--storage", str(var_dir / "db"),
                                   "--uri-file", str(var_dir / "mongodb.uri")],
                  stop_timeout=30, restart=False, stop_rank=2, popen_options={"stdout": subprocess.PIPE})
    process = system.start(child)
    assert process.stdout is not None
    uri = process.stdout.readline().strip()
    if not uri:
        raise SystemExit("the embedded database did not start (is another `make run` using var/db?)")
    return uri


def seed(settings: Settings) -> dict[str, dict[str, str]]:
    """Seed the demo data once (in this process) and return the demo credentials."""
    from app import create_app
    from app.dev.demo import seed as seed_demo

    app = create_app(settings)
    with app.app_context():
        return seed_demo()


def print_welcome(base: str, credentials: dict[str, dict[str, str]], venv_bin: str) -> None:
    """Print what is running and the curl commands to try it."""
    admin = credentials.get("admin", {})
    facility = credentials.get("facility", {})
    secret = admin.get("totp_secret", "?")
    username, password = admin.get("username", "admin"), admin.get("password", "?")
    client_id, client_secret = facility.get("client_id", "?"), facility.get("client_secret", "?")
    python = f"{venv_bin}/python"
    login_body = f'{{"username": "{username}", "password": "{password}", "totp_code": "\'$CODE\'"}}'
    print(f"""
HoSo is running on {base}   (Ctrl-C stops everything)

  API docs:  {base}/api/docs
  Verifier:  {base}/verify   (border and venue staff; works offline after one visit)
  Health:    curl -s {base}/api/v1/health

Demo admin     username {username}   password {password}
               TOTP secret {secret}
               (authenticator app: {admin.get('totp_uri', '?')})
Demo facility  {facility.get('code', '?')}   client_id {client_id}
               client_secret {client_secret}

Try it (README.md has more):
  CODE=$({python} -c "import pyotp; print(pyotp.TOTP('{secret}').now())")
  curl -s {base}/api/v1/staff/login -H 'Content-Type: application/json' -d '{login_body}'
  curl -s {base}/api/v1/oauth/token -u '{client_id}:{client_secret}' -d grant_type=client_credentials
""", flush=True)


def main() -> int:
    """Run until Ctrl-C or SIGTERM; 0 after a requested stop, 1 if the database stopped, 2 if the port is taken."""
    settings = Settings.from_env()  # creates var/secrets on first run
    var_dir = settings.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    bind = os.environ.get("HOSO_BIND", DEFAULT_BIND)
    host, port = split_bind(bind)
    if not port_is_free(host, port):
        print(f"hoso: port {port} on {host} is taken (another `make run`, or another server?).\n"
              f"Stop that one, or choose another address:  HOSO_BIND={host}:{port + 1} make run",
              file=sys.stderr, flush=True)
        return 2
    system = DevSystem(dict(os.environ))
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        uri = settings.mongodb_uri or start_database(system, var_dir)
        system.env["HOSO_MONGODB_URI"] = uri
        venv_bin = str(Path(sys.executable).parent)
        # gunicorn boots while the demo data is seeded (its workers create no collection until a request).
        system.start(Child("the API (gunicorn)", [
            f"{venv_bin}/gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), "--bind", bind,
            "--workers", "2", "--threads", "4", "--error-logfile", "-", "--log-level", "warning",
            "app:create_app()"], stop_timeout=10, restart=True, stop_rank=0))
        credentials = seed(settings.replace(mongodb_uri=uri))
        system.start(Child("the notification worker", [
            f"{venv_bin}/flask", "--app", "app", "notifications", "worker"], stop_timeout=10, restart=True,
            stop_rank=1))
        base = f"http://{bind}"
        ready_by = time.monotonic() + READY_TIMEOUT
        announced = False
        while not stopping:
            lost = system.supervise()
            if lost is not None:
                print(f"hoso: {lost.name} exited; stopping HoSo", file=sys.stderr, flush=True)
                return 1
            if not announced:
                if answers(f"{base}/api/v1/health"):
                    print_welcome(base, credentials, venv_bin)
                    announced = True
                elif time.monotonic() > ready_by:
                    print(f"hoso: the API does not answer on {base}/api/v1/health; stopping HoSo",
                          file=sys.stderr, flush=True)
                    return 1
            time.sleep(0.2 if not announced else 0.5)
        print("\nstopping HoSo...", flush=True)
        return 0
    finally:
        system.stop()


if __name__ == "__main__":
    sys.exit(main())
