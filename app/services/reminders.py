"""Daily reminders: the next dose of an incomplete series, the day before a follow-up visit, and a
current vaccine passport that expires within 30 days.

Each reminder has a stable key (the dedupe key of its message), so running the job again the same
day, on several workers, or after a crash never sends it twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from app.models.citizen import Citizen
from app.models.passports import Certificate
from app.models.records import VOIDED, Immunization, Visit
from app.services import outbox
from app.services.audit import RequestContext
from notifications import DoseRecord, FollowUp, due_today, follow_up_due, next_dose_due

BATCH = 500
PASSPORT_NOTICE = timedelta(days=30)


def run_reminders(ctx: RequestContext, today: date, interval: timedelta) -> int:
    """Queue today's reminders for citizens who use the app; returns how many were new."""
    queued = 0
    last_id = None
    while True:
        query = Citizen.objects(state="active", locked=False)
        if last_id is not None:
            query = query.filter(id__gt=last_id)
        batch = list(query.order_by("id").only("id", "language", "phone", "email", "notification_preferences",
                                               "state").limit(BATCH))
        if not batch:
            return queued
        last_id = batch[-1].id
        for citizen in batch:
            queued += _remind(ctx, citizen, today, interval)


def _remind(ctx: RequestContext, citizen: Citizen, today: date, interval: timedelta) -> int:
    doses = [DoseRecord(str(i.id), i.vaccine.tg, i.dose_number, i.series_doses, i.administered_at, i.status == VOIDED)
             for i in Immunization.objects(citizen_id=citizen.id).only(
                 "id", "vaccine", "dose_number", "series_doses", "administered_at", "status")]
    visits = [FollowUp(str(v.id), date.fromisoformat(v.follow_up_date), v.status == VOIDED)
              for v in Visit.objects(citizen_id=citizen.id, follow_up_date__ne=None).only(
                  "id", "follow_up_date", "status") if v.follow_up_date]
    queued = 0
    soon = datetime.combine(today + PASSPORT_NOTICE, time.max, tzinfo=UTC)
    for certificate in Certificate.objects(citizen_id=citizen.id, current=True, status="valid",
                                           expires_at__lte=soon).only("uvci", "expires_at"):
        queued += bool(outbox.notify(ctx, citizen, "passport_expiring", f"passport-expiring:{certificate.uvci}"))
    for key in due_today(next_dose_due(doses, interval), today):
        queued += bool(outbox.notify(ctx, citizen, "next_dose_reminder", key))
    # A follow-up reminder is only useful before the visit: at most one day late.
    for key in due_today(follow_up_due(visits), today, max_lateness=timedelta(days=1)):
        queued += bool(outbox.notify(ctx, citizen, "follow_up_reminder", key))
    return queued
