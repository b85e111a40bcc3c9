"""Recent reads: reused briefly, forgotten when this process writes, bounded."""

from __future__ import annotations

import time

import pymongo
import pytest

from app.infra.recent_reads import RecentReads


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counting_loader(stored: dict[str, int]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def load(key: str) -> int:
        calls.append(key)
        return stored[key]

    return load, calls


def test_a_read_is_reused_until_it_is_max_age_old():
    stored, clock = {"a": 1}, Clock()
    load, calls = counting_loader(stored)
    reads = RecentReads(load, max_age=0.1, clock=clock)
    assert reads.get("a") == 1
    stored["a"] = 2
    clock.now += 0.099
    assert reads.get("a") == 1 and calls == ["a"]
    clock.now += 0.002
    assert reads.get("a") == 2 and calls == ["a", "a"]


def test_a_local_write_is_seen_at_once():
    stored, clock = {"a": 1}, Clock()
    load, calls = counting_loader(stored)
    reads = RecentReads(load, max_age=10.0, clock=clock)
    reads.get("a")
    stored["a"] = 2
    reads.forget_all()
    assert reads.get("a") == 2 and len(calls) == 2


def test_a_read_overlapping_a_local_write_is_not_kept():
    stored, clock = {"a": 1}, Clock()
    reads: RecentReads[str, int]

    def load_during_a_write(key: str) -> int:
        value = stored[key]  # read before the write lands ...
        stored[key] = 2
        reads.forget_all()  # ... which ends while the read is in flight
        return value

    reads = RecentReads(load_during_a_write, max_age=10.0, clock=clock)
    assert reads.get("a") == 1
    assert reads.get("a") == 2  # read again, not the overlapping value


def test_reads_are_bounded():
    clock = Clock()
    load, calls = counting_loader({str(n): n for n in range(10)})
    reads = RecentReads(load, max_age=10.0, max_size=3, clock=clock)
    for n in range(10):
        reads.get(str(n))
    assert len(reads._reads) <= 3


def test_authentication_sees_this_process_s_writes_at_once_and_others_within_max_age(client, world, settings):
    from app.models.citizen import Citizen
    from app.web.auth import CITIZEN_MAX_AGE

    alice = world["alice"]
    citizen_id = Citizen.objects.get(national_id=alice.national_id).id
    me = lambda: client.get("/api/v1/me", headers=alice.headers).status_code  # noqa: E731
    assert me() == 200
    Citizen.objects(id=citizen_id).update_one(set__locked=True)  # a write by this process
    assert me() == 401
    Citizen.objects(id=citizen_id).update_one(set__locked=False)
    assert me() == 200
    other_process = pymongo.MongoClient(settings.mongodb_uri)  # writes this process does not make
    try:
        other_process.get_default_database().citizens.update_one({"_id": citizen_id}, {"$set": {"locked": True}})
        time.sleep(CITIZEN_MAX_AGE)
        assert me() == 401
    finally:
        other_process.close()


def _lock_by_update_one(collection, citizen_id):  # type: ignore[no-untyped-def]
    collection.update_one({"_id": citizen_id}, {"$set": {"locked": True}})


def _lock_by_find_and_modify(collection, citizen_id):  # type: ignore[no-untyped-def]
    collection.find_one_and_update({"_id": citizen_id}, {"$set": {"locked": True}})


def _lock_by_update_many(collection, citizen_id):  # type: ignore[no-untyped-def]
    collection.update_many({"_id": {"$in": [citizen_id]}}, {"$set": {"locked": True}})


def _remove(collection, citizen_id):  # type: ignore[no-untyped-def]
    collection.delete_one({"_id": citizen_id})


def _lock_by_bulk_write(collection, citizen_id):  # type: ignore[no-untyped-def]
    collection.bulk_write([pymongo.UpdateOne({"_id": citizen_id}, {"$set": {"locked": True}})])


@pytest.mark.parametrize("write", [_lock_by_update_one, _lock_by_find_and_modify, _lock_by_update_many, _remove,
                                   _lock_by_bulk_write])
def test_every_kind_of_local_write_to_citizens_is_seen_at_once(client, world, write):
    from app.models.citizen import Citizen

    alice = world["alice"]
    citizen_id = Citizen.objects.get(national_id=alice.national_id).id
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 200
    write(Citizen._get_collection(), citizen_id)
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 401


def test_a_failed_write_leaves_nothing_in_flight(app):
    import mongoengine
    from pymongo.errors import OperationFailure

    from app.models.citizen import Citizen
    from app.runtime import runtime

    watch = runtime().write_watch
    assert watch in mongoengine.get_connection().options.event_listeners
    with pytest.raises(OperationFailure):
        Citizen._get_collection().update_one({}, {"$unknownOperator": {"x": 1}})
    assert watch._in_flight == {}
