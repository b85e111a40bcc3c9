"""When to try a failed delivery again: exponential backoff with full jitter.

After the n-th failed attempt the next one waits a random time, uniform between 0 and
``min(cap, base * 2 ** (n - 1))``. The growing ceiling spreads load away from a provider that is
struggling; drawing the whole wait at random ("full jitter") keeps messages that failed together
from all coming back at the same instant.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from notifications.channels import TemporaryFailure

MAX_ATTEMPTS = 8
BASE_SECONDS = 30.0
CAP_SECONDS = 6 * 3600.0

# A shared generator: jitter needs to differ between workers, not to be secret or reproducible.
_RANDOM = random.Random()


def backoff_ceiling(attempts: int, base_seconds: float = BASE_SECONDS, cap_seconds: float = CAP_SECONDS) -> float:
    """The longest wait, in seconds, after ``attempts`` failed attempts: ``min(cap, base * 2 ** (attempts - 1))``.

    Raises:
        ValueError: when ``attempts`` is below 1 or a bound is negative.
    """
    if attempts < 1:
        raise ValueError("attempts counts failed attempts and starts at 1")
    if base_seconds < 0 or cap_seconds < 0:
        raise ValueError("base_seconds and cap_seconds must not be negative")
    # The exponent is bounded so a huge attempt count cannot overflow the float.
    return float(min(cap_seconds, base_seconds * 2.0 ** min(attempts - 1, 64)))


def next_attempt(
    attempts: int,
    now: datetime,
    base_seconds: float = BASE_SECONDS,
    cap_seconds: float = CAP_SECONDS,
    rng: random.Random | None = None,
) -> datetime:
    """When to try again after ``attempts`` failed attempts (full jitter, see the module docstring).

    Args:
        attempts: failed attempts so far, 1 after the first failure.
        now: the time of the failure.
        base_seconds: the ceiling after the first failure.
        cap_seconds: the ceiling never grows past this.
        rng: the random source; pass a seeded ``random.Random`` for reproducible times.

    Returns:
        A time between ``now`` and ``now + backoff_ceiling(attempts)``.

    Raises:
        ValueError: when ``attempts`` is below 1 or a bound is negative.
    """
    ceiling = backoff_ceiling(attempts, base_seconds, cap_seconds)
    return now + timedelta(seconds=(rng or _RANDOM).uniform(0.0, ceiling))


def is_exhausted(attempts: int, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """Whether a message that failed ``attempts`` times should be given up."""
    return attempts >= max_attempts


def retry_delay(
    error: TemporaryFailure,
    attempts: int,
    now: datetime,
    rng: random.Random | None = None,
    base_seconds: float = BASE_SECONDS,
    cap_seconds: float = CAP_SECONDS,
) -> datetime:
    """When to retry after ``error``: the backoff time, or later if the provider asked for a longer wait.

    A provider's ``retry_after`` is honoured up to ``cap_seconds``, so a wrong or hostile header cannot
    park a message for days.

    Args:
        error: the failure of the attempt that just ran.
        attempts: failed attempts so far, this one included.
        now: the time of the failure.
        rng: the random source of the jitter.

    Returns:
        The time of the next attempt.

    Raises:
        ValueError: when ``attempts`` is below 1 or a bound is negative.
    """
    planned = next_attempt(attempts, now, base_seconds, cap_seconds, rng)
    if error.retry_after is None:
        return planned
    asked = now + timedelta(seconds=min(max(error.retry_after, 0.0), cap_seconds))
    return max(planned, asked)
