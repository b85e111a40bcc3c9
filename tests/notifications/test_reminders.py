"""Which next-dose and follow-up reminders are due, and when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from notifications import DoseRecord, FollowUp, due_today, follow_up_due, next_dose_due

COVID = "840539006"
MEASLES = "14189004"
HEP_B = "66071002"


def dose(immunization_id: str, tg: str, number: int, series: int, at: datetime, withdrawn: bool = False) -> DoseRecord:
    return DoseRecord(immunization_id, tg, number, series, at, withdrawn)


def test_incomplete_series_is_due_28_days_after_the_last_dose():
    doses = [dose("imm-1", COVID, 1, 2, datetime(2025, 3, 1, 3, 0, tzinfo=UTC))]
    assert next_dose_due(doses) == [(f"next-dose:{COVID}:imm-1:2", date(2025, 3, 29))]


def test_complete_series_needs_no_reminder():
    doses = [
        dose("imm-1", COVID, 1, 2, datetime(2025, 1, 1, tzinfo=UTC)),
        dose("imm-2", COVID, 2, 2, datetime(2025, 2, 1, tzinfo=UTC)),
    ]
    assert next_dose_due(doses) == []


def test_booster_beyond_the_series_needs_no_reminder():
    assert next_dose_due([dose("imm-3", COVID, 3, 2, datetime(2025, 2, 1, tzinfo=UTC))]) == []


def test_due_date_uses_the_day_in_vietnam():
    # 20:00 UTC on 1 March is 03:00 on 2 March in Hanoi.
    doses = [dose("imm-1", HEP_B, 1, 3, datetime(2025, 3, 1, 20, 0, tzinfo=UTC))]
    assert next_dose_due(doses)[0][1] == date(2025, 3, 30)


def test_naive_times_are_utc():
    doses = [dose("imm-1", HEP_B, 1, 3, datetime(2025, 3, 1, 20, 0))]
    assert next_dose_due(doses)[0][1] == date(2025, 3, 30)


def test_interval_can_be_changed():
    doses = [dose("imm-1", HEP_B, 2, 3, datetime(2025, 3, 1, 1, 0, tzinfo=UTC))]
    assert next_dose_due(doses, interval=timedelta(days=150)) == [(f"next-dose:{HEP_B}:imm-1:3", date(2025, 7, 29))]


def test_withdrawn_latest_dose_is_ignored():
    doses = [
        dose("imm-1", COVID, 1, 2, datetime(2025, 1, 1, tzinfo=UTC)),
        dose("imm-2", COVID, 2, 2, datetime(2025, 2, 1, tzinfo=UTC), withdrawn=True),
    ]
    assert next_dose_due(doses) == [(f"next-dose:{COVID}:imm-1:2", date(2025, 1, 29))]


def test_only_withdrawn_doses_give_nothing():
    assert next_dose_due([dose("imm-1", COVID, 1, 2, datetime(2025, 1, 1, tzinfo=UTC), withdrawn=True)]) == []


def test_each_disease_is_judged_on_its_own():
    doses = [
        dose("imm-1", COVID, 1, 2, datetime(2025, 1, 10, tzinfo=UTC)),
        dose("imm-2", COVID, 2, 2, datetime(2025, 2, 10, tzinfo=UTC)),
        dose("imm-3", HEP_B, 1, 3, datetime(2025, 1, 5, tzinfo=UTC)),
        dose("imm-4", HEP_B, 2, 3, datetime(2025, 2, 5, tzinfo=UTC)),
        dose("imm-5", MEASLES, 1, 2, datetime(2025, 1, 1, tzinfo=UTC)),
    ]
    assert next_dose_due(doses) == [
        (f"next-dose:{MEASLES}:imm-5:2", date(2025, 1, 29)),
        (f"next-dose:{HEP_B}:imm-4:3", date(2025, 3, 5)),
    ]


def test_keys_do_not_depend_on_record_order():
    doses = [
        dose("imm-1", COVID, 1, 3, datetime(2025, 1, 1, tzinfo=UTC)),
        dose("imm-2", COVID, 2, 3, datetime(2025, 2, 1, tzinfo=UTC)),
        dose("imm-3", HEP_B, 1, 3, datetime(2025, 2, 1, tzinfo=UTC)),
    ]
    assert next_dose_due(doses) == next_dose_due(list(reversed(doses)))
    assert next_dose_due(doses) == next_dose_due(list(doses))  # same input, same keys: sent once


def test_a_later_dose_gives_a_new_key():
    first = [dose("imm-1", COVID, 1, 3, datetime(2025, 1, 1, tzinfo=UTC))]
    second = [*first, dose("imm-2", COVID, 2, 3, datetime(2025, 2, 1, tzinfo=UTC))]
    assert next_dose_due(first)[0][0] != next_dose_due(second)[0][0]


def test_follow_up_reminder_is_the_day_before():
    visits = [FollowUp("visit-1", date(2025, 3, 10), False), FollowUp("visit-2", date(2025, 3, 1), False)]
    assert follow_up_due(visits) == [
        ("follow-up:visit-2:2025-03-01", date(2025, 2, 28)),
        ("follow-up:visit-1:2025-03-10", date(2025, 3, 9)),
    ]


def test_withdrawn_visit_has_no_follow_up_reminder():
    assert follow_up_due([FollowUp("visit-1", date(2025, 3, 10), True)]) == []


def test_moved_follow_up_gets_a_new_key():
    before = follow_up_due([FollowUp("visit-1", date(2025, 3, 10), False)])
    after = follow_up_due([FollowUp("visit-1", date(2025, 3, 17), False)])
    assert before[0][0] != after[0][0]


def test_due_today_takes_today_and_up_to_seven_days_late():
    today = date(2025, 3, 20)
    items = [
        ("tomorrow", date(2025, 3, 21)),
        ("today", date(2025, 3, 20)),
        ("yesterday", date(2025, 3, 19)),
        ("week-late", date(2025, 3, 13)),
        ("eight-days-late", date(2025, 3, 12)),
        ("today", date(2025, 3, 20)),
    ]
    assert due_today(items, today) == ["today", "yesterday", "week-late"]


def test_due_today_with_a_shorter_lateness_for_follow_ups():
    visits = [FollowUp("visit-1", date(2025, 3, 10), False), FollowUp("visit-2", date(2025, 3, 12), False)]
    items = follow_up_due(visits)
    late_by_one_day = timedelta(days=1)
    # On the visit day a missed reminder still helps; the day after, it would only be noise.
    assert due_today(items, date(2025, 3, 10), max_lateness=late_by_one_day) == ["follow-up:visit-1:2025-03-10"]
    assert due_today(items, date(2025, 3, 11), max_lateness=late_by_one_day) == ["follow-up:visit-2:2025-03-12"]
