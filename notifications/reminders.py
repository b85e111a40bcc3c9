"""Which reminders are due: the next dose of an unfinished vaccine series, and the day before a follow-up visit.

Pure functions over plain records. Each reminder has a key that stays the same every time it is
computed, so the outbox (which refuses a second message with the same key) sends it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

# Vietnam has one time zone and no daylight saving time.
VIETNAM = timezone(timedelta(hours=7), "ICT")
NEXT_DOSE_INTERVAL = timedelta(days=28)
# A reminder more than a week late is noise: the person has most likely acted on it already or
# rebooked, and an old nudge only teaches them to ignore the app's messages.
MAX_LATENESS = timedelta(days=7)


@dataclass(frozen=True)
class DoseRecord:
    """One recorded vaccine dose against one target disease (``tg``, a disease code).

    ``administered_at`` is aware, or naive in UTC (as the database returns it).
    """

    immunization_id: str
    tg: str
    dose_number: int
    series_doses: int
    administered_at: datetime
    withdrawn: bool


@dataclass(frozen=True)
class FollowUp:
    """A visit that asked the patient to come back on ``follow_up_date``."""

    visit_id: str
    follow_up_date: date
    withdrawn: bool


def local_date(moment: datetime) -> date:
    """The date in Vietnam at ``moment`` (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM).date()


def next_dose_due(doses: list[DoseRecord], interval: timedelta = NEXT_DOSE_INTERVAL) -> list[tuple[str, date]]:
    """Reminders for the next dose of every series not yet complete.

    Per target disease, the latest dose that was not withdrawn decides: when its ``dose_number`` is
    below ``series_doses``, the next dose is due ``interval`` after the day (in Vietnam) it was given.
    Whole days of ``interval`` count.

    Returns:
        ``(key, due date)`` pairs sorted by date then key; the key
        ``next-dose:<tg>:<immunization id>:<next dose number>`` names the dose that prompts it.
    """
    latest: dict[str, DoseRecord] = {}
    for dose in doses:
        if dose.withdrawn:
            continue
        current = latest.get(dose.tg)
        # Ties on time go to the higher dose number, then the id, so the answer never depends on
        # the order the records arrive in.
        if current is None or _order(dose) > _order(current):
            latest[dose.tg] = dose
    due = [
        (f"next-dose:{tg}:{dose.immunization_id}:{dose.dose_number + 1}", local_date(dose.administered_at) + interval)
        for tg, dose in latest.items()
        if dose.dose_number < dose.series_doses
    ]
    return sorted(due, key=lambda item: (item[1], item[0]))


def _order(dose: DoseRecord) -> tuple[datetime, int, str]:
    moment = dose.administered_at if dose.administered_at.tzinfo else dose.administered_at.replace(tzinfo=UTC)
    return moment, dose.dose_number, dose.immunization_id


def follow_up_due(visits: list[FollowUp]) -> list[tuple[str, date]]:
    """Reminders the day before each follow-up visit that was not withdrawn.

    Returns:
        ``(key, reminder date)`` pairs sorted by date then key; the key
        ``follow-up:<visit id>:<follow-up date>`` changes when the visit is moved, so a new date
        gets its own reminder.
    """
    due = [
        (f"follow-up:{visit.visit_id}:{visit.follow_up_date.isoformat()}", visit.follow_up_date - timedelta(days=1))
        for visit in visits
        if not visit.withdrawn
    ]
    return sorted(due, key=lambda item: (item[1], item[0]))


def due_today(items: list[tuple[str, date]], today: date, max_lateness: timedelta = MAX_LATENESS) -> list[str]:
    """Keys of the reminders to send on ``today``: due on or before it, but at most ``max_lateness`` late.

    Late ones are still sent (the worker may have been down) unless older than ``max_lateness``,
    see ``MAX_LATENESS``. Pass ``timedelta(days=1)`` for follow-ups so no reminder arrives after the visit.

    Returns:
        The keys in the order given, each once.
    """
    oldest = today - max_lateness
    keys: dict[str, None] = {}  # a dict keeps the order and drops repeats
    for key, due in items:
        if oldest <= due <= today:
            keys.setdefault(key)
    return list(keys)
