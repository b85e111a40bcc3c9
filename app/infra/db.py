"""The MongoDB connection (mongoengine's default alias) of one app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import mongoengine
import pymongo
from flask import Flask, request
from pymongo import monitoring
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

from app.infra.embedded_db import development_uri
from app.settings import Settings


def resolve_uri(settings: Settings) -> str:
    """``HOSO_MONGODB_URI``, else (development only) the embedded server under ``var/``."""
    if settings.mongodb_uri:
        return settings.mongodb_uri
    return development_uri(settings.var_dir)


WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})
DROP_COMMANDS = frozenset({"drop", "dropDatabase"})
_EVERY_COLLECTION = "*"


class WriteWatch(monitoring.CommandListener):
    """Tells its callbacks about the writes sent on one app's connection, whichever code path sends them.

    Each connection has its own watch (``connect`` makes it; ``Runtime.write_watch`` holds it), so
    what an app registers dies with it. mongoengine's ``default`` alias is process-wide, though:
    when a process builds a second app (tests do), every app's queries go through the newest
    connection, and only its watch hears them. Production builds one app per process.
    pymongo reports a command's start and its end on the thread that sends it, so the thread and
    the message's request id name a command in flight.
    """

    def __init__(self) -> None:
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._in_flight: dict[tuple[int, int], str] = {}

    def on_write(self, collection: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` when this connection starts and when it ends a write to ``collection``.

        Writes are the ``insert``, ``update``, ``delete`` and ``findAndModify`` commands (what
        mongoengine and pymongo's collection methods send) and dropping the collection or database.
        HoSo sends no other command that changes documents (no ``$out``/``$merge``, no client-level
        ``bulkWrite``). Register before the app serves requests (the list is read without a lock).
        """
        self._watchers.setdefault(collection, []).append(callback)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in WRITE_COMMANDS:
            collection = str(event.command.get(event.command_name))
        elif event.command_name in DROP_COMMANDS:
            collection = _EVERY_COLLECTION
        else:
            return
        if collection == _EVERY_COLLECTION or collection in self._watchers:
            self._in_flight[(threading.get_ident(), event.request_id)] = collection
            self._notify(collection)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._ended(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._ended(event)

    def _ended(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        collection = self._in_flight.pop((threading.get_ident(), event.request_id), None)
        if collection is not None:
            self._notify(collection)

    def _notify(self, collection: str) -> None:
        names = list(self._watchers) if collection == _EVERY_COLLECTION else [collection]
        for name in names:
            for callback in self._watchers.get(name, ()):
                callback()


def connect(settings: Settings, uri: str) -> WriteWatch:
    """(Re)connect mongoengine's default alias; production writes wait for a journaled majority.

    Returns the connection's write watch (see :class:`WriteWatch`).
    """
    mongoengine.disconnect(alias="default")
    watch = WriteWatch()
    options: dict[str, object] = {
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
        "event_listeners": [watch],
    }
    if settings.is_production:
        options.update(w="majority", journal=True, retryWrites=True)
    mongoengine.connect(host=uri, alias="default", **options)
    return watch


def database_name() -> str:
    """The name of the connected database."""
    return mongoengine.get_db().name  # type: ignore[no-any-return]


def ping() -> bool:
    """True when the database answers within a second."""
    try:
        with pymongo.timeout(1.0):  # bounds server selection too, not only the command
            mongoengine.get_connection().admin.command("ping")
        return True
    except PyMongoError:
        return False


class SchemaGuard:
    """Creates every collection and index once per process, before the first request that needs them.

    mongoengine would create them lazily on first use, from however many threads arrive together;
    the embedded SecantusDB server can stall when many connections create the same collection at
    once, and on MongoDB creating indexes at start-up is better practice anyway. The health check
    does not wait for it, so a database outage still answers 503 at once.
    """

    def __init__(self) -> None:
        self._done = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if self._done or request.path.startswith(("/api/v1/health", "/api/docs", "/api/openapi.json", "/verify")):
            return
        with self._lock:
            if not self._done:
                ensure_indexes()
                self._done = True


# Indexes that earlier versions created and the models no longer declare, by collection: creating
# the models' indexes leaves an old one in place (another name), where it would still hold its old
# constraint, and a unique index that does not start with the shard key stops a collection from
# being sharded. Each is dropped after its model's current indexes are built, so the constraint
# that replaces it is in force first. Names only grow here; an index not found is already gone.
RETIRED_INDEXES: dict[str, tuple[str, ...]] = {
    # dedupe_key was unique across citizens; now (citizen_id, dedupe_key) is (Notification).
    "notifications": ("dedupe_key_1",),
}
INDEX_NOT_FOUND = 27


def drop_retired_indexes(collection: Collection[Any]) -> list[str]:
    """Drop ``collection``'s indexes named in ``RETIRED_INDEXES``; returns the names it dropped."""
    retired = [name for name in RETIRED_INDEXES.get(collection.name, ()) if name in collection.index_information()]
    dropped = []
    for name in retired:
        try:
            collection.drop_index(name)
        except OperationFailure as error:
            if error.code == INDEX_NOT_FOUND:  # another process dropped it first
                continue
            raise
        dropped.append(name)
    return dropped


def ensure_indexes() -> None:
    """Create the collections and indexes of every document class, then drop retired ones (idempotent).

    Every record kind's model is included whether or not ``app.models`` lists it, so a new kind
    (one entry in ``app.services.ingest.kinds``) is indexed before its first push. A changed
    index is a new one (its fields name it; the same fields with other options would fail to
    build): ``RETIRED_INDEXES`` names the one it replaces.
    """
    from app import models
    from app.services.ingest.kinds import kinds

    documents = [getattr(models, name) for name in models.__all__]
    for model in dict.fromkeys([*documents, *(kind.model for kind in kinds())]):
        model.ensure_indexes()
        drop_retired_indexes(model._get_collection())


def init_app(app: Flask, settings: Settings) -> tuple[str, WriteWatch]:
    """Connect for ``app``; returns the URI in use and the connection's write watch.

    ``create_app`` registers a :class:`SchemaGuard` among its request hooks.
    """
    uri = resolve_uri(settings)
    watch = connect(settings, uri)
    app.config["HOSO_MONGODB_URI"] = uri
    return uri, watch
