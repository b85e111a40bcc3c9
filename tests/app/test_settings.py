"""Settings.from_env: read once, typed; production refuses missing or weak secrets by name."""

from __future__ import annotations

import base64
import dataclasses
import re
from pathlib import Path

import pytest

from app.settings import SECRET, SECRET_BYTES, Settings, SettingsError, is_loopback_uri
from tests.conftest import JWT_KEY_PEM

STRONG_KEY = base64.b64encode(bytes(range(100, 132))).decode()
README = Path(__file__).parents[2] / "README.md"
NOT_SETTINGS = {"HOSO_BIND": "read by `make run` (app/dev/devserver.py), not by the app"}


def production_env(**changes: str) -> dict[str, str]:
    env = {
        "HOSO_ENV": "production",
        "HOSO_MONGODB_URI": "mongodb://db1.internal,db2.internal/hoso?replicaSet=rs0",
        "HOSO_JWT_PRIVATE_KEY": JWT_KEY_PEM,
        "HOSO_DATA_KEY": STRONG_KEY,
    }
    env.update(changes)
    return {key: value for key, value in env.items() if value}


def test_production_with_strong_secrets_starts():
    settings = Settings.from_env(production_env())
    assert settings.is_production and len(settings.data_key) == 32


@pytest.mark.parametrize(
    "changes, variable",
    [
        ({"HOSO_JWT_PRIVATE_KEY": ""}, "HOSO_JWT_PRIVATE_KEY"),
        ({"HOSO_DATA_KEY": ""}, "HOSO_DATA_KEY"),
        ({"HOSO_DATA_KEY": base64.b64encode(b"short").decode()}, "HOSO_DATA_KEY"),
        ({"HOSO_DATA_KEY": base64.b64encode(b"a" * 32).decode()}, "HOSO_DATA_KEY"),
        ({"HOSO_DATA_KEY": "not base64!"}, "HOSO_DATA_KEY"),
        ({"HOSO_JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----"},
         "HOSO_JWT_PRIVATE_KEY"),
        ({"HOSO_MONGODB_URI": ""}, "HOSO_MONGODB_URI"),
        ({"HOSO_ACCESS_TOKEN_SECONDS": "3600"}, "HOSO_ACCESS_TOKEN_SECONDS"),
        ({"HOSO_ACCESS_TOKEN_SECONDS": "soon"}, "HOSO_ACCESS_TOKEN_SECONDS"),
        ({"HOSO_ENV": "staging"}, "HOSO_ENV"),
        ({"HOSO_LOGIN_KNOWN_ADDRESS_DAYS": "0"}, "HOSO_LOGIN_KNOWN_ADDRESS_DAYS"),
        ({"HOSO_LOGIN_KNOWN_ADDRESSES": "1000"}, "HOSO_LOGIN_KNOWN_ADDRESSES"),
    ],
)
def test_production_refuses_missing_or_weak_settings_naming_them(changes, variable):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(production_env(**changes))


def test_rsa_jwt_key_is_refused():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(SettingsError, match="P-256"):
        Settings.from_env(production_env(HOSO_JWT_PRIVATE_KEY=pem))


def test_secret_files_are_read(tmp_path):
    key_file = tmp_path / "data-key"
    key_file.write_text(STRONG_KEY + "\n")
    env = production_env(HOSO_DATA_KEY="")
    env["HOSO_DATA_KEY_FILE"] = str(key_file)
    assert Settings.from_env(env).data_key == base64.b64decode(STRONG_KEY)


def test_development_creates_secrets_once_in_var(tmp_path):
    env = {"HOSO_ENV": "development", "HOSO_VAR_DIR": str(tmp_path / "var")}
    first = Settings.from_env(env)
    second = Settings.from_env(env)
    assert first.data_key == second.data_key
    assert first.jwt_private_key_pem == second.jwt_private_key_pem
    assert oct((tmp_path / "var" / "secrets" / "data-key").stat().st_mode & 0o777) == "0o600"


def test_development_refuses_a_remote_database(tmp_path):
    env = {"HOSO_VAR_DIR": str(tmp_path), "HOSO_MONGODB_URI": "mongodb://db.example.org/hoso"}
    with pytest.raises(SettingsError, match="HOSO_ENV=production"):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "uri, loopback",
    [("mongodb://127.0.0.1:27017/x", True), ("mongodb://localhost/x", True),
     ("mongodb://u:p@[::1]:27017/x", True), ("mongodb://127.0.0.1,db.example.org/x", False),
     ("mongodb+srv://cluster.example.org/x", False)],
)
def test_loopback_detection(uri, loopback):
    assert is_loopback_uri(uri) is loopback


def test_trusted_proxy_sets_the_client_address(mongodb_server, tmp_path):
    from app import create_app
    from app.models.audit import AuditEvent
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path, trusted_proxy_count=1)
    app = create_app(settings)
    try:
        with app.app_context():
            app.test_client().post(
                "/api/v1/staff/login", headers={"X-Forwarded-For": "203.0.113.7"},
                json={"username": "nobody", "password": "x", "totp_code": "123456"},
            )
            assert AuditEvent.objects(action="staff.login").first().ip == "203.0.113.7"
    finally:
        drop_database(settings)


def readme_settings_table() -> dict[str, tuple[str, str]]:
    """The README's settings table: variable -> (first cell, default as written, without backticks)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        names = re.findall(r"`(HOSO_[A-Z0-9_]+)`", cells[0]) if len(cells) == 3 else []
        if names:
            assert names[0] not in rows, f"{names[0]} is listed twice"
            rows[names[0]] = (cells[0], cells[1].replace("`", ""))
    return rows


def declared_default(declaration: dataclasses.Field) -> str:
    """A field's default as the README writes it."""
    if declaration.metadata["shown"]:
        return declaration.metadata["shown"]
    default = declaration.default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def test_the_readme_lists_every_setting_with_its_default():
    rows = readme_settings_table()
    declared = {item.metadata["env"]: item for item in dataclasses.fields(Settings)}
    assert all("env" in item.metadata for item in dataclasses.fields(Settings)), "declare each with setting()"
    for variable, declaration in declared.items():
        assert variable in rows, f"README's settings table lacks {variable}"
        first_cell, default = rows[variable]
        assert default == declared_default(declaration), variable
        if declaration.metadata["read"] in (SECRET, SECRET_BYTES):
            assert f"`{variable}_FILE`" in first_cell, f"{variable} can be given as a file: say so"
    assert set(rows) - set(declared) == set(NOT_SETTINGS), "the table lists a variable nothing reads"


def test_each_variable_is_read_as_declared(tmp_path):
    changed = {"HOSO_VAR_DIR": str(tmp_path), "HOSO_JWT_ISSUER": "hoso-test", "HOSO_SMTP_PORT": "2525",
               "HOSO_SMTP_STARTTLS": "no", "HOSO_LOG_LEVEL": "debug", "HOSO_SMS_URL": "https://sms.test",
               "HOSO_SIGNER_SECRET": "s" * 32, "HOSO_SMTP_PASSWORD": "pw"}
    settings = Settings.from_env(changed)
    assert (settings.var_dir, settings.jwt_issuer, settings.smtp_port, settings.smtp_starttls) == (
        tmp_path, "hoso-test", 2525, False)
    assert (settings.log_level, settings.sms_url, settings.signer_secret, settings.smtp_password) == (
        "DEBUG", "https://sms.test", b"s" * 32, "pw")
    defaults = Settings.from_env({"HOSO_VAR_DIR": str(tmp_path)})
    for declaration in dataclasses.fields(Settings):
        if declaration.default is not dataclasses.MISSING and declaration.name not in (
                "var_dir", "signing_key_passphrase"):
            assert getattr(defaults, declaration.name) == declaration.default, declaration.name
