"""The Flask CLI: ``admin create`` prints a one-time password and TOTP URI; it reaches the same DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.models.staff import StaffUser
from tests.helpers import totp_secret_of

ROOT = Path(__file__).parents[2]


def test_admin_create_json(app):
    result = app.test_cli_runner().invoke(args=["admin", "create", "zoe", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"username", "password", "totp_uri"}
    assert created["username"] == "zoe"
    user = StaffUser.objects(username="zoe").first()
    assert user.role == "admin" and created["password"] not in user.to_json()
    assert totp_secret_of(created["totp_uri"]) not in user.to_json()


def test_admin_create_twice_fails_cleanly(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["admin", "create", "zoe"]).exit_code == 0
    again = runner.invoke(args=["admin", "create", "zoe"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_flask_command_in_a_terminal_reaches_the_database(settings, tmp_path):
    """What a second terminal does: ``flask --app app admin create`` against a running server."""
    env = {
        "PATH": os.environ["PATH"],
        "HOSO_ENV": "development",
        "HOSO_VAR_DIR": str(tmp_path / "var"),
        "HOSO_MONGODB_URI": settings.mongodb_uri,
        "HOSO_ARGON2_MEMORY_KIB": "8192",
        "HOSO_ARGON2_TIME_COST": "1",
    }
    flask = Path(sys.executable).parent / "flask"
    result = subprocess.run([str(flask), "--app", "app", "admin", "create", "yann", "--json"],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["username"] == "yann"
    import pymongo

    client = pymongo.MongoClient(settings.mongodb_uri)
    try:
        assert client.get_default_database().staff_users.count_documents({"username": "yann"}) == 1
    finally:
        client.close()
