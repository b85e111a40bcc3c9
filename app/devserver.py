"""``make run``: the whole system on one machine, stopped cleanly with Ctrl-C.

Creates development secrets in ``var/`` once, starts the embedded database on ``var/db`` (unless
``HOSO_MONGODB_URI`` is set), seeds demo data once, serves the API with gunicorn and prints the
commands to try it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.settings import Settings

DEFAULT_BIND = "127.0.0.1:8000"


class DevSystem:
    """The child processes of a development run."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
        process = subprocess.Popen(args, env=env, text=True, **kwargs)  # type: ignore[call-overload]
        self.processes.append(process)
        return process  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop children in reverse order: the API first, the database last."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def start_database(system: DevSystem, var_dir: Path, env: dict[str, str]) -> str:
    """Start SecantusDB on ``var/db`` and record its address in ``var/mongodb.uri``."""
    process = system.start(
        [sys.executable, "-m", "app.embedded_db", "--storage", str(var_dir / "db"),
         "--uri-file", str(var_dir / "mongodb.uri")],
        env,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    uri = process.stdout.readline().strip()
    if not uri:
        raise SystemExit("the embedded database did not start (is another `make run` using var/db?)")
    return uri


def seed(settings: Settings) -> dict[str, dict[str, str]]:
    """Seed the demo data once (in this process) and return the demo credentials."""
    from app import create_app
    from app.demo import seed as seed_demo

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
    """Run until Ctrl-C."""
    settings = Settings.from_env()  # creates var/secrets on first run
    var_dir = settings.var_dir
    var_dir.mkdir(parents=True, exist_ok=True)
    bind = os.environ.get("HOSO_BIND", DEFAULT_BIND)
    env = dict(os.environ)
    system = DevSystem()
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        uri = settings.mongodb_uri or start_database(system, var_dir, env)
        env["HOSO_MONGODB_URI"] = uri
        credentials = seed(settings.replace(mongodb_uri=uri))
        venv_bin = str(Path(sys.executable).parent)
        system.start(
            [f"{venv_bin}/gunicorn", "--bind", bind, "--workers", "2", "--threads", "4",
             "--error-logfile", "-", "--log-level", "warning",
             "app:create_app()"],
            env,
        )
        system.start([f"{venv_bin}/flask", "--app", "app", "notifications", "worker"], env)
        print_welcome(f"http://{bind}", credentials, venv_bin)
        while not stopping:
            if any(process.poll() is not None for process in system.processes):
                print("a HoSo process exited; stopping the rest", file=sys.stderr)
                return 1
            time.sleep(0.5)
        print("\nstopping HoSo...", flush=True)
        return 0
    finally:
        system.stop()


if __name__ == "__main__":
    sys.exit(main())
