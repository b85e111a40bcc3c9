"""Two apps in one process share no mutable state: caches, batchers and watchers are per app.

(The database connection is the exception, and not HoSo's: mongoengine's default alias belongs to
the process, so the app built last serves every app's queries. Each app's write watch and caches
are its own all the same.)
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from flask import Flask

import app as app_package
from app import create_app
from app.infra.batching import GroupCommit
from app.infra.db import WriteWatch
from app.infra.recent_reads import RecentReads
from app.models.citizen import Citizen
from app.runtime import Runtime
from app.security.tokens import TokenType
from app.services.audit import AuditTrail
from app.web.auth import request_context
from tests.conftest import drop_database, make_settings

# Values of the runtime that are plain settings or functions, not state.
SHARED_BY_DESIGN = {"settings", "clock"}
PER_APP_KINDS = (GroupCommit, RecentReads, WriteWatch, AuditTrail)
CONTAINERS = (dict, list, set, bytearray)


def _import_every_app_module() -> None:
    for module in pkgutil.walk_packages(app_package.__path__, "app."):
        importlib.import_module(module.name)


def _fingerprint(value: Any, depth: int = 4) -> Any:
    """What a container holds, nested containers included; other objects by identity."""
    if depth and isinstance(value, dict):
        return ("dict", tuple(sorted((repr(key), _fingerprint(item, depth - 1)) for key, item in value.items())))
    if depth and isinstance(value, list | tuple):
        return (type(value).__name__, tuple(_fingerprint(item, depth - 1) for item in value))
    if depth and isinstance(value, set | frozenset):
        return ("set", tuple(sorted(repr(_fingerprint(item, depth - 1)) for item in value)))
    if isinstance(value, str | bytes | bytearray | int | float | bool | type(None)):
        return bytes(value) if isinstance(value, bytearray) else value
    return ("object", id(value))


def _module_state() -> dict[tuple[str, str], Any]:
    """Every mutable container held by a module of ``app``, fingerprinted to compare later."""
    state: dict[tuple[str, str], Any] = {}
    for name, module in list(sys.modules.items()):
        if name != "app" and not name.startswith("app."):
            continue
        for attribute, value in vars(module).items():
            if attribute.startswith("__"):
                continue
            if isinstance(value, PER_APP_KINDS):
                state[(name, attribute)] = value  # never allowed at module level
            elif isinstance(value, CONTAINERS):
                state[(name, attribute)] = _fingerprint(value)
    return state


def _runtime(application: Flask) -> Runtime:
    return application.extensions["hoso"]  # type: ignore[no-any-return]


@pytest.fixture
def two_apps(mongodb_server: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    _import_every_app_module()
    settings = [make_settings(mongodb_server, tmp_path / name) for name in ("one", "two")]
    apps = (create_app(settings[0]), create_app(settings[1]))
    yield apps
    for each in settings:
        drop_database(each)


def test_each_app_has_its_own_runtime_objects(two_apps):
    one, two = (_runtime(application) for application in two_apps)
    for field in dataclasses.fields(Runtime):
        if field.name not in SHARED_BY_DESIGN:
            assert getattr(one, field.name) is not getattr(two, field.name), field.name
    assert one.accounts.box is one.box and two.accounts.box is two.box


def test_each_app_hands_its_own_audit_trail_to_services(two_apps):
    for application in two_apps:
        with application.test_request_context("/api/v1/health"):
            assert request_context().trail is _runtime(application).audit_trail


def test_a_write_is_heard_only_by_the_watch_of_the_connection_that_sent_it(two_apps):
    """The app built last holds the process's connection: its writes reach its watchers only."""
    first, second = two_apps
    heard: dict[str, int] = {"first": 0, "second": 0}
    for name, application in (("first", first), ("second", second)):
        _runtime(application).write_watch.on_write(
            Citizen._get_collection_name(), lambda name=name: heard.__setitem__(name, heard[name] + 1))
    with second.app_context():
        Citizen._get_collection().insert_one({"_id": ObjectId(), "national_id": "001085123456"})
    assert heard == {"first": 0, "second": 2}  # when the insert started and when it ended


def test_the_citizen_reads_of_an_app_are_forgotten_by_its_own_writes_only(two_apps):
    first, second = two_apps
    citizen_id = ObjectId()
    with second.app_context():
        reads = _runtime(second).citizen_reads
        assert reads.get(citizen_id) is None  # read: no such citizen yet
        Citizen._get_collection().insert_one({"_id": citizen_id, "national_id": "001085123457"})
        assert reads.get(citizen_id) is not None  # the write made the app forget its read at once
    assert _runtime(first).citizen_reads is not reads


def test_no_module_of_app_holds_state_that_requests_change(two_apps):
    """Requests of both apps (sign-in failures, audit events, rate limits, a citizen token) change
    no container held at module level, and no batcher, cache or watcher lives at module level."""
    before = _module_state()
    at_module_level = {key: value for key, value in before.items() if isinstance(value, PER_APP_KINDS)}
    assert at_module_level == {}
    for application in two_apps:
        with application.app_context():
            client = application.test_client()
            assert client.get("/api/v1/health").status_code == 200
            assert client.post("/api/v1/staff/login", json={"username": "nobody", "password": "x" * 12}
                               ).status_code in (401, 422)
            token = _runtime(application).tokens.issue(str(ObjectId()), TokenType.CITIZEN, _runtime(application).now(),
                                                       sid="s").token
            assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    after = _module_state()
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    assert changed == []
