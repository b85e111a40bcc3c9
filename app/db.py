"""The MongoDB connection (mongoengine's default alias) of one app."""

from __future__ import annotations

import mongoengine
import pymongo
from flask import Flask
from pymongo.errors import PyMongoError

from app.embedded_db import development_uri
from app.settings import Settings


def resolve_uri(settings: Settings) -> str:
    """``HOSO_MONGODB_URI``, else (development only) the embedded server under ``var/``."""
    if settings.mongodb_uri:
        return settings.mongodb_uri
    return development_uri(settings.var_dir)


def connect(settings: Settings, uri: str) -> None:
    """(Re)connect mongoengine's default alias; production writes wait for a journaled majority."""
    mongoengine.disconnect(alias="default")
    options: dict[str, object] = {
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
    }
    if settings.is_production:
        options.update(w="majority", journal=True, retryWrites=True)
    mongoengine.connect(host=uri, alias="default", **options)


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


def init_app(app: Flask, settings: Settings) -> str:
    """Connect for ``app``; returns the URI in use."""
    uri = resolve_uri(settings)
    connect(settings, uri)
    app.config["HOSO_MONGODB_URI"] = uri
    return uri
