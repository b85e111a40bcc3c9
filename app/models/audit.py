"""The audit trail: append-only, never health data, never a secret."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

ACTOR_TYPES = ("anonymous", "staff", "facility_client", "citizen", "share_holder", "system")
OUTCOMES = ("success", "failure", "denied")
ACCESS_KINDS = ("read", "write")
REASON_MAX_LENGTH = 500


class AppendOnlyError(RuntimeError):
    """Audit events are never changed or removed."""


class AuditEvent(me.Document):
    """One audited action: who, whose, what, when, outcome, request id, reason."""

    at = me.DateTimeField(required=True, default=utcnow)
    actor_type = me.StringField(required=True, choices=ACTOR_TYPES)
    actor_id = me.StringField()
    actor_label = me.StringField()
    facility_code = me.StringField()
    action = me.StringField(required=True)
    outcome = me.StringField(required=True, choices=OUTCOMES)
    citizen_id = me.ObjectIdField()  # the citizen concerned, when there is exactly one
    # every citizen concerned: [citizen_id], or those of a bulk write's records (what queries use)
    citizen_ids = me.ListField(me.ObjectIdField())
    target_type = me.StringField()
    target_id = me.StringField()
    reason = me.StringField(max_length=REASON_MAX_LENGTH)
    request_id = me.StringField()
    ip = me.StringField()
    details = me.DictField()
    # "read" or "write" when the event is an access to a citizen's health record (access log)
    access = me.StringField(choices=ACCESS_KINDS)
    # The order in which events were stored, dense (1, 2, 3...: a page of the admin's list is one
    # window of numbers), allocated per stored batch (``AuditCounter``); events stored before it
    # existed are numbered below 1 by ``audit.number_unnumbered`` (the ``flask audit number`` command).
    seq = me.IntField()

    meta = {
        "collection": "audit_events",
        # The busiest collection (every read of a record adds an event), so each index must earn
        # its cost on every insert: the number, whose windows page the admin's list (every filter
        # is applied inside a window); the citizens and the actor, each with the number, so that a
        # window of one citizen's or one actor's events reads only theirs (the admin's search by
        # citizen and oversight of one staff member or client). The citizen's access log reads
        # its own entries (``AccessLogEntry``, sharded by citizen), not this collection.
        "indexes": [
            "seq",
            {"fields": ["citizen_ids", "seq"], "name": "citizen"},
            ("actor_id", "seq"),
        ],
    }

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Insert only: an event that already exists cannot be saved again."""
        if self.pk is not None:
            raise AppendOnlyError("audit events are append-only")
        return super().save(*args, force_insert=True, **kwargs)

    def update(self, **kwargs):  # type: ignore[no-untyped-def]
        raise AppendOnlyError("audit events are append-only")

    def modify(self, query=None, **update):  # type: ignore[no-untyped-def]
        raise AppendOnlyError("audit events are append-only")

    def delete(self, signal_kwargs=None, **write_concern):  # type: ignore[no-untyped-def]
        raise AppendOnlyError("audit events are append-only")


class AuditCounter(me.Document):
    """The last number given to an audit event (``_id`` "audit_events") and the lowest one
    (``low``: below 1 once events stored before numbers existed are numbered)."""

    id = me.StringField(primary_key=True)
    value = me.IntField(required=True, default=0)
    low = me.IntField(required=True, default=1)

    meta = {"collection": "counters"}
