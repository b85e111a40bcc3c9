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

    meta = {
        "collection": "audit_events",
        # The busiest collection (every read of a record adds an event), so each index must earn
        # its cost on every insert: time for the admin's recent events, the citizen's access log
        # (whose prefix also finds the events of one citizen for the admin's search), and the
        # actor for oversight of what one staff member or client did. A search by action alone
        # walks the time index.
        "indexes": [
            "-at",
            {"fields": ["citizen_ids", "access", "-at"], "name": "access_log"},
            ("actor_id", "-at"),
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
