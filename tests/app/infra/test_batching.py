"""Group commit: concurrent callers share batches, each gets its own result, none starts early."""

from __future__ import annotations

import threading
import time

import pytest

from app.infra.batching import Failed, GroupCommit


def test_a_lone_caller_runs_alone_at_once():
    batches: list[list[int]] = []
    group = GroupCommit(lambda items: batches.append(list(items)) or [item * 2 for item in items])
    assert group.submit(3) == 6
    assert group.submit(4) == 8
    assert batches == [[3], [4]]


def test_concurrent_callers_share_batches_and_get_their_own_results():
    started = threading.Event()
    release = threading.Event()
    batches: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:  # hold the first batch until everyone else has queued
            started.set()
            release.wait(5)
        return [item * 10 for item in items]

    group = GroupCommit(run)
    results: dict[int, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, group.submit(0)))
    first.start()
    started.wait(5)
    others = [threading.Thread(target=lambda n=n: results.__setitem__(n, group.submit(n))) for n in range(1, 9)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 5
    while len(group._queue) < 8 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == {n: n * 10 for n in range(9)}
    assert batches[0] == [0] and sorted(batches[1]) == list(range(1, 9)) and len(batches) == 2


def test_an_item_never_joins_a_batch_that_started_before_it_arrived():
    arrivals: dict[int, float] = {}
    starts: list[tuple[float, list[int]]] = []

    def run(items: list[int]) -> list[int]:
        starts.append((time.monotonic(), list(items)))
        time.sleep(0.002)
        return items

    group = GroupCommit(run)

    def caller(n: int) -> None:
        arrivals[n] = time.monotonic()
        group.submit(n)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(n for _, items in starts for n in items) == list(range(40))
    for started, items in starts:
        assert all(arrivals[n] <= started for n in items)


def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs():
    calls = {"n": 0}

    def run(items: list[int]) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("database down")
        return items

    group = GroupCommit(run)
    with pytest.raises(ConnectionError):
        group.submit(1)
    assert group.submit(2) == 2


def test_a_wrong_number_of_results_is_an_error_not_a_mix_up():
    group = GroupCommit(lambda items: [])
    with pytest.raises(RuntimeError, match="gave 0 results"):
        group.submit(1)


def test_an_item_that_fails_fails_alone_and_its_batch_goes_on():
    """A poisoned item among good ones (issue 12): only its caller sees the error."""
    started = threading.Event()
    release = threading.Event()
    batches: list[list[int]] = []

    def run(items: list[int]) -> list[int | Failed]:
        batches.append(list(items))
        if len(batches) == 1:  # hold the first batch so that the others queue into one batch
            started.set()
            release.wait(5)
        return [Failed(ValueError(f"poisoned {item}")) if item == 5 else item * 10 for item in items]

    group = GroupCommit(run)
    outcomes: dict[int, object] = {}

    def submit(n: int) -> None:
        try:
            outcomes[n] = group.submit(n)
        except ValueError as error:
            outcomes[n] = error

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    started.wait(5)
    others = [threading.Thread(target=submit, args=(n,)) for n in range(1, 9)]
    for thread in others:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert sorted(batches[1]) == list(range(1, 9))  # the poisoned item shared a batch with seven others
    assert isinstance(outcomes.pop(5), ValueError)
    assert outcomes == {n: n * 10 for n in range(9) if n != 5}
