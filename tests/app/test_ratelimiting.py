"""Leased fixed windows: a process takes hits from the shared counter a few at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from limits import parse

from app.ratelimiting import LeasedFixedWindowRateLimiter, SharedClientMongoDBStorage


class CountingStorage(SharedClientMongoDBStorage):
    """The real shared storage, counting its round trips (one per ``take``)."""

    takes = 0

    def take(self, key: str, expiry: int, amount: int):  # type: ignore[no-untyped-def]
        type(self).takes += 1
        return super().take(key, expiry, amount)


@pytest.fixture
def storage(mongodb_server, tmp_path) -> Iterator[CountingStorage]:
    from app import create_app
    from tests.conftest import drop_database, make_settings

    settings = make_settings(mongodb_server, tmp_path)
    app = create_app(settings)
    try:
        with app.app_context():
            CountingStorage.takes = 0
            yield CountingStorage("hoso-mongodb://app-connection", database_name="t",
                                  counter_collection_name="counters", window_collection_name="windows")
    finally:
        drop_database(settings)


def test_a_busy_caller_costs_one_update_per_lease_and_never_exceeds_the_limit(storage):
    limit = parse("1000 per minute")  # leases of 10
    process = LeasedFixedWindowRateLimiter(storage)
    admitted = [process.hit(limit, "citizen:1") for _ in range(1005)]
    assert admitted == [True] * 1000 + [False] * 5
    assert CountingStorage.takes == 100 + 5  # one per lease, then one per refused hit
    assert storage.get(limit.key_for("citizen:1")) >= 1000


def test_two_processes_together_stay_under_the_limit(storage):
    limit = parse("300 per minute")  # leases of 3
    first, second = LeasedFixedWindowRateLimiter(storage), LeasedFixedWindowRateLimiter(storage)
    admitted = 0
    for n in range(400):
        admitted += (first if n % 3 else second).hit(limit, "facility:a")
    # never more than the limit; at most (lease - 1) per process lost to leftovers
    assert 300 - 2 * 2 <= admitted <= 300


def test_concurrent_hits_in_one_process_never_exceed_the_limit(storage):
    limit = parse("500 per minute")  # leases of 5
    process = LeasedFixedWindowRateLimiter(storage)
    results: list[bool] = []
    lock = threading.Lock()

    def caller() -> None:
        mine = [process.hit(limit, "citizen:2") for _ in range(40)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 640
    assert 500 - 5 * 16 <= results.count(True) <= 500


def test_a_lease_ends_with_its_window(storage):
    limit = parse("200 per 2 seconds")  # leases of 2
    process = LeasedFixedWindowRateLimiter(storage)
    assert process.hit(limit, "citizen:3")  # takes a lease of 2, one left
    key = limit.key_for("citizen:3")
    assert storage.get(key) == 2
    time.sleep(2.2)
    # the leftover belongs to the ended window: this hit takes a new lease in the new window
    assert process.hit(limit, "citizen:3")
    assert CountingStorage.takes == 2
    assert storage.get(key) == 2


def test_small_limits_count_every_hit_in_the_database(storage):
    limit = parse("150 per minute")  # 1% is one hit: no lease
    process = LeasedFixedWindowRateLimiter(storage)
    assert all(process.hit(limit, "ip:1") for _ in range(150))
    assert not process.hit(limit, "ip:1")
    assert CountingStorage.takes == 151  # one round trip per hit
    assert storage.get(limit.key_for("ip:1")) == 151


def test_clearing_a_limit_drops_the_lease(storage):
    limit = parse("1000 per minute")
    process = LeasedFixedWindowRateLimiter(storage)
    assert process.hit(limit, "citizen:4")
    process.clear(limit, "citizen:4")
    assert storage.get(limit.key_for("citizen:4")) == 0
    assert process.hit(limit, "citizen:4")
    assert CountingStorage.takes == 2


def test_first_hits_from_two_processes_at_once_both_count(storage):
    """Two processes creating one counter together: the losing upsert is retried, not a 500."""
    other = SharedClientMongoDBStorage("hoso-mongodb://app-connection", database_name="t",
                                       counter_collection_name="counters", window_collection_name="windows")
    failures: list[BaseException] = []

    def hit(target: SharedClientMongoDBStorage, key: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            target.incr(key, 60)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            failures.append(error)

    for n in range(40):
        start = threading.Barrier(4)
        threads = [threading.Thread(target=hit, args=(target, f"race:{n}", start))
                   for target in (storage, other, storage, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert storage.get(f"race:{n}") == 4
    assert failures == []
