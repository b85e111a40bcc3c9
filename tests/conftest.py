"""Fixtures: one real SecantusDB server per test session, one database per test."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mongoengine
import pymongo
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.infra.embedded_db import uri_with_database
from app.settings import Settings
from tests.helpers import StaffActions

JWT_KEY_PEM = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
DATA_KEY = secrets.token_bytes(32)

# Records every query the app sends and fails the run on one that would scatter over the shards.
pytest_plugins = ["tests.query_shapes"]


@pytest.fixture(scope="session")
def mongodb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB server in its own process (the same launcher ``make run`` uses)."""
    storage = tmp_path_factory.mktemp("secantus")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.infra.embedded_db", "--storage", str(storage), "--database", "x"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    uri = process.stdout.readline().strip()
    if not uri:
        process.kill()
        pytest.fail("the embedded database did not start")
    server = uri.rsplit("/", 1)[0]
    yield server
    process.terminate()
    process.wait(timeout=30)


def make_settings(server: str, var_dir: Path, **changes: object) -> Settings:
    """Test settings: a fresh database name, cheap-but-real argon2id, real everything else."""
    base = Settings(
        jwt_private_key_pem=JWT_KEY_PEM,
        data_key=DATA_KEY,
        mongodb_uri=uri_with_database(server, f"t_{uuid.uuid4().hex[:16]}"),
        var_dir=var_dir,
        argon2_time_cost=1,
        argon2_memory_kib=8 * 1024,
        log_level="WARNING",
        signing_key_passphrase=b"test signing key passphrase",
    )
    return base.replace(**changes)


def drop_database(settings: Settings) -> None:
    """Drop a test database (SecantusDB keeps every database on disk otherwise)."""
    assert settings.mongodb_uri
    mongoengine.disconnect(alias="default")
    client: pymongo.MongoClient = pymongo.MongoClient(settings.mongodb_uri)
    client.drop_database(pymongo.uri_parser.parse_uri(settings.mongodb_uri)["database"])
    client.close()


@pytest.fixture
def settings(mongodb_server: str, tmp_path: Path) -> Settings:
    """Settings of a test: its own database."""
    return make_settings(mongodb_server, tmp_path / "var")


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The application under test, connected to the test's own database."""
    application = create_app(settings)
    with application.app_context():
        yield application
    drop_database(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def staff(app: Flask, client: FlaskClient) -> StaffActions:
    """Staff accounts and their tokens."""
    return StaffActions(app, client)


def encode_basic(user: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
