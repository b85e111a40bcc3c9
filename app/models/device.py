"""Devices that receive push messages."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow


class Device(me.Document):
    """A citizen's phone registered for push messages (the token is the provider's address)."""

    citizen_id = me.ObjectIdField(required=True)
    platform = me.StringField(required=True, choices=("android", "ios"))
    push_token = me.StringField(required=True, max_length=4096)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "devices", "indexes": [{"fields": ["citizen_id", "push_token"], "unique": True}]}
