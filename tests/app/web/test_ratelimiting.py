"""Leased fixed windows: a process takes hits from the shared counter a few at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from limits import parse
from pymongo.uri_parser import parse_uri

from app.web.ratelimiting import LeasedFixedWindowRateLimiter, SharedClientMongoDBStorage


class CountingStorage(SharedClientMongoDBStorage):
    """The real shared storage, counting its round trips (one per ``take``)."""

    takes = 0

    def take(self, key: str, expiry: int, amount: int):  # type: ignore[no-untyped-def]
        type(self).takes += 1
        return super().take(key, expiry, amount)


@pytest.fixture
def storage(app, settings) -> Iterator[CountingStorage]:
    with app.app_context():
        CountingStorage.takes = 0
        yield CountingStorage("hoso-mongodb://app-connection", database_name=database_of(settings),
                              counter_collection_name="rate_limit_counters",
                              window_collection_name="rate_limit_windows")  # the names the app uses


def database_of(settings) -> str:  # type: ignore[no-untyped-def]
    return str(parse_uri(settings.mongodb_uri)["database"])


class QuickWindows(LeasedFixedWindowRateLimiter):
    """Leases on windows short enough for a test to wait for their end."""

    CLOCK_MARGIN = timedelta(seconds=0.5)
    MIN_WINDOW_SECONDS = 1


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
    limit = parse("1000 per minute")  # leases of 10
    process = LeasedFixedWindowRateLimiter(storage)
    results: list[bool] = []
    lock = threading.Lock()

    def caller() -> None:
        mine = [process.hit(limit, "citizen:2") for _ in range(70)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 1120
    assert 1000 - 9 <= results.count(True) <= 1000


def test_leases_taken_at_the_same_moment_add_up(storage, monkeypatch):
    """Four threads find no lease and each takes one: all four leases are counted, so all are kept."""
    limit = parse("10000 per minute")  # leases of 100
    process = LeasedFixedWindowRateLimiter(storage)
    together = threading.Barrier(4)
    real_take = storage.take

    def take_together(key: str, expiry: int, amount: int):  # type: ignore[no-untyped-def]
        together.wait(10)
        return real_take(key, expiry, amount)

    monkeypatch.setattr(storage, "take", take_together)
    threads = [threading.Thread(target=process.hit, args=(limit, "citizen:6")) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert storage.get(limit.key_for("citizen:6")) == 400
    monkeypatch.setattr(storage, "take", real_take)
    before = CountingStorage.takes
    assert all(process.hit(limit, "citizen:6") for _ in range(396))  # the other leases' hits
    assert CountingStorage.takes == before


def test_leases_stop_just_before_their_window_ends(storage):
    limit = parse("200 per 2 seconds")  # leases of 2
    process = QuickWindows(storage)
    key = limit.key_for("citizen:3")
    assert process.hit(limit, "citizen:3")  # takes a lease of 2, one left
    assert storage.get(key) == 2 and CountingStorage.takes == 1
    time.sleep(1.6)  # within CLOCK_MARGIN of the window's end: the leftover is not spent
    assert process.hit(limit, "citizen:3")
    assert storage.get(key) == 3 and CountingStorage.takes == 2  # counted alone, no new lease
    time.sleep(0.6)  # the window has ended: a new one, with a new lease
    assert process.hit(limit, "citizen:3")
    assert storage.get(key) == 2 and CountingStorage.takes == 3
    assert process.hit(limit, "citizen:3")  # from the new lease
    assert CountingStorage.takes == 3


def test_short_windows_are_not_leased(storage):
    limit = parse("1000 per 5 seconds")
    process = LeasedFixedWindowRateLimiter(storage)  # MIN_WINDOW_SECONDS = 10
    assert all(process.hit(limit, "citizen:5") for _ in range(3))
    assert storage.get(limit.key_for("citizen:5")) == 3


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


def test_first_hits_from_two_processes_at_once_both_count(storage, settings):
    """Two processes creating one counter together: the losing upsert's count is read back."""
    other = SharedClientMongoDBStorage("hoso-mongodb://app-connection", database_name=database_of(settings),
                                       counter_collection_name="rate_limit_counters",
                                       window_collection_name="rate_limit_windows")
    failures: list[BaseException] = []
    counts: list[int] = []

    def hit(target: SharedClientMongoDBStorage, key: str, start: threading.Barrier) -> None:
        start.wait()
        try:
            counts.append(target.incr(key, 60))
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
    # each hit is told a count that includes it (never 0, which would not count it at all)
    assert min(counts) >= 1 and max(counts) == 4


def test_new_callers_hitting_together_are_counted_per_key(storage):
    """Many keys in one group commit: one write and one read for all, each key's count its own."""
    counts: dict[str, list[int]] = {f"test:caller-{n}": [] for n in range(8)}
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def caller(n: int) -> None:
        key = f"test:caller-{n % 8}"
        barrier.wait()
        count = storage.incr(key, 60)
        with lock:
            counts[key].append(count)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(sorted(seen) == [1, 2] for seen in counts.values()), counts
    assert all(storage.get(key) == 2 for key in counts)
    storage.counters.update_one({"_id": "test:caller-0"}, {"$set": {"expireAt": storage.counters.find_one(
        {"_id": "test:caller-0"})["expireAt"] - timedelta(minutes=5)}})  # that window has ended
    assert storage.incr("test:caller-0", 60) == 1 and storage.incr("test:caller-1", 60) == 3


class RacedByAnotherHost(CountingStorage):
    """Another host counts a hit on ``key`` just after this storage read its window (before its
    write): it starts the next window (``reset``) or adds to the same one."""

    def __init__(self, *args, key: str, reset: bool, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.key, self.reset, self.reads = key, reset, 0

    def _windows(self, keys):  # type: ignore[no-untyped-def]
        self.reads += 1
        found = super()._windows(keys)
        if self.reads == 1:
            if self.reset:
                self.counters.update_one({"_id": self.key}, {"$set": {
                    "count": 1, "expireAt": datetime.now(UTC) + timedelta(seconds=60)}})
            else:
                self.counters.update_one({"_id": self.key}, {"$inc": {"count": 1}})
        return found


@pytest.mark.parametrize("reset", [True, False])
def test_a_hit_another_host_counts_meanwhile_is_never_missed(app, settings, reset):
    with app.app_context():
        racing = RacedByAnotherHost("hoso-mongodb://app-connection", database_name=database_of(settings),
                                    counter_collection_name="rate_limit_counters",
                                    window_collection_name="rate_limit_windows", key="test:reset", reset=reset)
        racing.counters.insert_one({"_id": "test:reset", "count": 1000,  # the old window: full
                                    "expireAt": datetime.now(UTC) + timedelta(seconds=30)})
        # reset: the other host's hit opened the new window (1); this one must be counted there,
        # never be told a count of the old window (1,001) nor of a window it is not in. Else the
        # other host's hit made 1,001: this one is the 1,002nd, never told 1,001 (read + its own)
        expected = 2 if reset else 1002
        assert racing.incr("test:reset", 60) == expected
        assert racing.counters.find_one({"_id": "test:reset"})["count"] == expected


def test_ended_and_closing_windows_start_again_with_this_batch(storage):
    now = datetime.now(UTC)
    storage.counters.insert_many([{"_id": "test:ended", "count": 50, "expireAt": now - timedelta(seconds=5)},
                                  {"_id": "test:closing", "count": 7, "expireAt": now + timedelta(milliseconds=300)}])
    assert storage.incr("test:ended", 60) == 1
    assert storage.incr("test:closing", 60) == 8  # counted alone, in its own window
    assert storage.counters.find_one({"_id": "test:ended"})["expireAt"] > now + timedelta(seconds=50)
