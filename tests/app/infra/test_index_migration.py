"""Index migrations: an index the models no longer declare is dropped once its replacement exists."""

from __future__ import annotations

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError, OperationFailure

from app.infra.db import drop_retired_indexes, ensure_indexes
from app.models.citizen import Citizen
from app.models.notification import Notification
from app.services import outbox
from tests.helpers import CitizenActions, system_context

NEW = "citizen_id_1_dedupe_key_1"


def message(citizen_id: ObjectId, dedupe_key: str) -> dict:
    return {"citizen_id": citizen_id, "kind": "record_added", "channel": "in_app", "body": "x",
            "dedupe_key": dedupe_key, "status": "sent"}


def test_a_database_of_an_older_version_loses_its_global_dedupe_index(app):
    collection = Notification._get_collection()
    collection.drop()
    collection.create_index("dedupe_key", unique=True)  # what versions before sharding created
    collection.insert_one(message(ObjectId(), "record_added:1:in_app"))
    assert "dedupe_key_1" in collection.index_information()

    ensure_indexes()
    indexes = collection.index_information()
    assert "dedupe_key_1" not in indexes
    assert indexes[NEW]["unique"] and indexes[NEW]["key"] == [("citizen_id", 1), ("dedupe_key", 1)]
    collection.insert_one(message(ObjectId(), "record_added:1:in_app"))  # another citizen, the same key
    ensure_indexes()  # again: nothing left to drop
    assert drop_retired_indexes(collection) == []


def test_the_retired_index_stays_when_its_replacement_cannot_be_built(app):
    """Create first, drop second: a constraint is never left unguarded."""
    collection = Notification._get_collection()
    collection.drop()
    collection.create_index("dedupe_key")  # not unique: duplicates per citizen got in
    citizen = ObjectId()
    collection.insert_many([message(citizen, "same"), message(citizen, "same")])
    with pytest.raises(OperationFailure):
        ensure_indexes()
    assert "dedupe_key_1" in collection.index_information()


def test_an_index_another_process_dropped_first_is_no_error(app, monkeypatch):
    collection = Notification._get_collection()
    collection.create_index("dedupe_key", unique=True)
    collection.drop_index("dedupe_key_1")
    # the index was listed, then gone by the time it is dropped
    monkeypatch.setattr(type(collection), "index_information", lambda self: {"dedupe_key_1": {}})
    assert drop_retired_indexes(collection) == []


def test_only_retired_names_are_dropped(app):
    ensure_indexes()
    collection = Notification._get_collection()
    collection.create_index("kind", name="an_operators_index")
    assert drop_retired_indexes(collection) == []
    assert "an_operators_index" in collection.index_information()


def test_a_dedupe_key_is_unique_per_citizen(app, client):
    ensure_indexes()
    actions = CitizenActions(client)
    first, second = actions.enrol(), actions.enrol(serial=222222, phone="0987654321", email="b@example.org")
    citizens = [Citizen.objects.get(national_id=account.national_id) for account in (first, second)]
    ctx = system_context()
    queued = outbox.notify(ctx, citizens[0], "record_added", "event-1", channels=["in_app"])
    assert len(queued) == 1
    assert outbox.notify(ctx, citizens[0], "record_added", "event-1", channels=["in_app"]) == []  # a retry
    assert len(outbox.notify(ctx, citizens[1], "record_added", "event-1", channels=["in_app"])) == 1
    with pytest.raises(DuplicateKeyError):
        Notification._get_collection().insert_one(message(citizens[0].id, queued[0].dedupe_key))
