"""Citizen sessions: one refresh-token family per signed-in device."""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

# How many spent refresh-token hashes a family remembers for reuse detection.
SPENT_HISTORY = 500


class Session(me.Document):
    """A refresh-token family. Only keyed hashes of refresh tokens are stored.

    A refresh token reads ``<citizen id>.<family id>.<secret>`` (``app.services.sessions``).
    """

    citizen_id = me.ObjectIdField(required=True)
    family_id = me.StringField(required=True)
    token_hash = me.StringField(required=True)
    spent_hashes = me.ListField(me.StringField())
    device_label = me.StringField(max_length=100)
    user_agent = me.StringField(max_length=300)
    created_at = me.DateTimeField(default=utcnow)
    # When password and second factor were last checked for this session (sign-in, or a step-up
    # by app.services.reauth); unset on sessions from before step-up existed: then created_at.
    authenticated_at = me.DateTimeField()
    last_used_at = me.DateTimeField(default=utcnow)
    revoked_at = me.DateTimeField()
    revoked_reason = me.StringField()

    meta = {
        "collection": "sessions",
        "shard_key": ("citizen_id",),  # mongoengine's own reload/save/delete name the citizen too
        # Sharded by citizen: every query names the citizen (the refresh token carries it, see
        # app.services.sessions), and unique indexes start with it. Reuse detection reads the
        # family named in the token, so spent hashes need no index of their own.
        "indexes": [
            ("citizen_id", "-last_used_at"),
            {"fields": ["citizen_id", "family_id"], "unique": True},
            {"fields": ["citizen_id", "token_hash"], "unique": True},
        ],
    }
