"""Recent reads: reused briefly, forgotten when this process writes, bounded."""

from __future__ import annotations

import time

import pymongo

from app.recent_reads import RecentReads


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
    from app.auth import CITIZEN_MAX_AGE
    from app.models.citizen import Citizen

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
