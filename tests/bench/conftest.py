"""Fixtures of the benchmark helpers' tests: a fresh database on the session's embedded server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pymongo
import pytest

from app.infra.embedded_db import uri_with_database


@pytest.fixture
def bench_uri(mongodb_server: str) -> Iterator[str]:
    """The URI of a database of its own (dropped afterwards), as the benchmarks connect to theirs."""
    uri = uri_with_database(mongodb_server, f"b_{uuid.uuid4().hex[:16]}")
    yield uri
    with pymongo.MongoClient(uri) as client:
        client.drop_database(client.get_default_database().name)
