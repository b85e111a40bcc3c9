"""The citizen's access log, one small entry per citizen per audited access (sharded by citizen).

An audit event that concerns many citizens (a bulk upload) lists them in ``AuditEvent.citizen_ids``;
the access log a citizen reads is kept here instead, one entry each, so that one citizen's log is
one index range on one shard. Written only with the audit event it copies (``app.services.audit``).
"""

from __future__ import annotations

import mongoengine as me


class AccessLogEntry(me.Document):
    """What a citizen's access log shows of one audit event: who, what, when."""

    citizen_id = me.ObjectIdField(required=True)
    at = me.DateTimeField(required=True)
    event_id = me.ObjectIdField(required=True)
    access = me.StringField(required=True, choices=("read", "write"))
    action = me.StringField(required=True)
    outcome = me.StringField(required=True)
    actor_type = me.StringField(required=True)
    actor_id = me.StringField()
    actor_label = me.StringField()
    facility_code = me.StringField()
    target_type = me.StringField()
    target_id = me.StringField()
    reason = me.StringField()

    meta = {"collection": "access_log", "indexes": [("citizen_id", "-at")]}
