"""Backoff with full jitter, give-up rule, and a provider's Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from notifications import (
    MAX_ATTEMPTS,
    TemporaryFailure,
    backoff_ceiling,
    is_exhausted,
    next_attempt,
    retry_delay,
)

NOW = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


def wait(moment: datetime) -> float:
    return (moment - NOW).total_seconds()


def test_ceiling_doubles_from_the_base_until_the_cap():
    assert [backoff_ceiling(n) for n in range(1, 12)] == [
        30, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600,
    ]
    assert backoff_ceiling(10_000) == 6 * 3600  # no overflow however many attempts


def test_waits_grow_with_attempts():
    rng = random.Random(7)
    averages = [sum(wait(next_attempt(n, NOW, rng=rng)) for _ in range(400)) / 400 for n in (1, 3, 5, 7)]
    assert averages == sorted(averages)
    assert averages[-1] > 10 * averages[0]


@pytest.mark.parametrize("attempts", [1, 2, 5, 8, 20])
def test_full_jitter_stays_between_now_and_the_ceiling(attempts):
    rng = random.Random(attempts)
    waits = [wait(next_attempt(attempts, NOW, rng=rng)) for _ in range(500)]
    ceiling = backoff_ceiling(attempts)
    assert all(0 <= w <= ceiling for w in waits)
    # Full jitter uses the whole range, not a band near the ceiling.
    assert min(waits) < 0.1 * ceiling and max(waits) > 0.9 * ceiling


def test_cap_bounds_every_wait():
    rng = random.Random(1)
    assert all(wait(next_attempt(30, NOW, base_seconds=30, cap_seconds=600, rng=rng)) <= 600 for _ in range(200))


def test_seeded_rng_gives_the_same_times():
    first = [next_attempt(n, NOW, rng=random.Random(42)) for n in range(1, 9)]
    again = [next_attempt(n, NOW, rng=random.Random(42)) for n in range(1, 9)]
    assert first == again


def test_without_an_rng_times_still_fall_in_range():
    assert NOW <= next_attempt(3, NOW) <= NOW + timedelta(seconds=120)


@pytest.mark.parametrize("attempts", [0, -1])
def test_attempts_start_at_one(attempts):
    with pytest.raises(ValueError):
        next_attempt(attempts, NOW)


def test_exhausted_after_max_attempts():
    assert MAX_ATTEMPTS == 8
    assert not is_exhausted(MAX_ATTEMPTS - 1)
    assert is_exhausted(MAX_ATTEMPTS)
    assert is_exhausted(3, max_attempts=3) and not is_exhausted(2, max_attempts=3)


def test_retry_after_longer_than_the_backoff_wins():
    error = TemporaryFailure("busy", status=429, retry_after=900)
    assert retry_delay(error, 1, NOW, random.Random(3)) == NOW + timedelta(seconds=900)


def test_retry_after_shorter_than_the_backoff_is_not_a_shortcut():
    error = TemporaryFailure("busy", status=429, retry_after=1)
    backoff = next_attempt(6, NOW, rng=random.Random(5))
    assert retry_delay(error, 6, NOW, random.Random(5)) == backoff


def test_without_retry_after_the_backoff_applies():
    error = TemporaryFailure("timeout")
    assert retry_delay(error, 4, NOW, random.Random(9)) == next_attempt(4, NOW, rng=random.Random(9))


def test_a_huge_retry_after_is_capped():
    error = TemporaryFailure("busy", status=503, retry_after=30 * 24 * 3600)
    assert retry_delay(error, 1, NOW, random.Random(0)) == NOW + timedelta(hours=6)
