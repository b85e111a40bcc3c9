"""The citizen's access log, one small entry per citizen per audited access (sharded by citizen).

An audit event that concerns many citizens (a bulk upload) lists them in ``AuditEvent.citizen_ids``;
the access log a citizen reads is kept here instead, one entry each, so that one citizen's log is
one index range on one shard. Written only with the audit event it points to
(``app.services.audit.insert_events``), after it.

An entry holds only what pages the log (citizen, time) and its event's id: the page then reads its
events by id (one ``$in`` of at most a page of ids, each on its own shard). A bulk upload writes
one entry per citizen per batch, so the entry's size is paid on every upload: measured on the
embedded server, 500 entries with the event's fields copied cost 150-180 ms to insert, these cost
about 90 ms.
"""

from __future__ import annotations

import mongoengine as me


class AccessLogEntry(me.Document):
    """One audit event in one citizen's access log: the citizen, the event's time and its id."""

    citizen_id = me.ObjectIdField(required=True)
    at = me.DateTimeField(required=True)
    event_id = me.ObjectIdField(required=True)

    # ending with the id: a page whose end time many entries share (one upload's batches) asks
    # for that time by id range (``list_index.range_filters``)
    meta = {"collection": "access_log", "indexes": [("citizen_id", "-at", "-_id")]}
