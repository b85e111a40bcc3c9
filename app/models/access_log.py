"""The citizen's access log, one small entry per citizen per audited access (sharded by citizen).

An audit event that concerns many citizens (a bulk upload) lists them in ``AuditEvent.citizen_ids``;
the access log a citizen reads is kept here instead, one entry each, so that one citizen's log is
one index range on one shard. Written only with the audit event it points to
(``app.services.audit.insert_events``), after it.

An entry holds what the log shows of its event (who, what, when, outcome) and the event's id, so
that a page of the log reads one index range of one shard and nothing else. Only the fields the
log shows are copied (about 90 bytes): a bulk upload writes one entry per active citizen per batch
(pending citizens get theirs when they first read the log), so the entry's size is paid on uploads.
"""

from __future__ import annotations

import mongoengine as me


class AccessLogEntry(me.Document):
    """One audit event in one citizen's access log: the citizen, the event's id and what the log
    shows of it (``app.services.audit.SHOWN_IN_ACCESS_LOG``)."""

    citizen_id = me.ObjectIdField(required=True)
    at = me.DateTimeField(required=True)
    event_id = me.ObjectIdField(required=True)
    access = me.StringField()
    action = me.StringField()
    actor_type = me.StringField()
    actor_label = me.StringField()
    facility_code = me.StringField()
    outcome = me.StringField()

    # ending with the id: a page whose end time many entries share (one upload's batches) asks
    # for that time by id range (``list_index.range_filters``)
    meta = {"collection": "access_log", "indexes": [("citizen_id", "-at", "-_id")]}
