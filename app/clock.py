"""Time: one place that says what "now" is (UTC, aware), so tests can move it, and Viet Nam's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

# Viet Nam's one time zone (UTC+7, no daylight saving): local dates of doses, reminders, XML 130 times.
VIETNAM = timezone(timedelta(hours=7), "ICT")


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware, truncated to MongoDB's millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
