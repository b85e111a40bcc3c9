"""The notification outbox (and in-app inbox): written in the request that causes a message."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

CHANNELS = ("in_app", "sms", "email", "push")
STATUSES = ("pending", "sending", "sent", "failed", "dead")
SECURITY, ROUTINE = 0, 1  # claim order: lower first (set when queued, from the kind)


class Notification(me.Document):
    """One message on one channel. ``dedupe_key`` (with the citizen) makes a retried request write
    it only once.

    ``address`` (phone, e-mail or push token) is fixed when the message is queued, so a change of
    contact data never redirects a message already queued, least of all the warning about that
    change. It is personal data: erased with the message's delivery or death, never listed.

    A message that must carry a secret (an activation code) keeps it AES-GCM encrypted in
    ``secret_encrypted``; the rendered text holds only a placeholder, and the secret is erased once
    the message is delivered.
    """

    # ``dedupe_key`` is unique per citizen, an index that starts with the notifications' shard key
    # (a sharded collection allows no other unique index): every key names one event of its
    # citizen. ``app.infra.db.RETIRED_INDEXES`` drops the global ``dedupe_key_1`` of older versions.
    citizen_id = me.ObjectIdField(required=True, unique_with="dedupe_key")
    kind = me.StringField(required=True)
    channel = me.StringField(required=True, choices=CHANNELS)
    language = me.StringField(default="vi")
    subject = me.StringField()
    body = me.StringField(required=True)
    secret_encrypted = me.StringField()
    dedupe_key = me.StringField(required=True)
    status = me.StringField(default="pending", choices=STATUSES)
    attempts = me.IntField(default=0)
    next_attempt_at = me.DateTimeField(default=utcnow)
    created_at = me.DateTimeField(default=utcnow)
    sent_at = me.DateTimeField()
    read_at = me.DateTimeField()
    lease_until = me.DateTimeField()  # a claimed message whose lease passed is claimed again
    claimed_by = me.StringField()
    last_error = me.StringField(max_length=300)
    device_id = me.ObjectIdField()  # push messages go to one registered device each
    address = me.StringField()  # absent in messages queued by older versions: looked up at send time
    priority = me.IntField(default=ROUTINE, choices=(SECURITY, ROUTINE))

    meta = {
        "collection": "notifications",
        # The inbox's (with the id: a page's end times are asked for by time and id, see
        # ``list_index.range_filters``); the claim's two: due messages by priority then due time,
        # and expired leases.
        "indexes": [("citizen_id", "channel", "-created_at", "-_id"), ("status", "priority", "next_attempt_at"),
                    ("status", "lease_until")],
    }
