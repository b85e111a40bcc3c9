"""Where an account has signed in successfully: keyed hashes only, never an address in clear."""

from __future__ import annotations

import mongoengine as me


class LoginOrigin(me.Document):
    """One (account, address) pair that signed in successfully, remembered for a bounded time.

    ``_id`` is an HMAC of the scope, the account and the address; ``account`` an HMAC of the scope
    and the account, so an account's entries can be counted and trimmed without naming it. The
    collection is sharded by ``account``: every query of ``LoginGuard`` names it, so one shard answers.
    """

    id = me.StringField(primary_key=True)
    account = me.StringField(required=True)
    seen_at = me.DateTimeField(required=True)
    expires_at = me.DateTimeField(required=True)

    meta = {
        "collection": "login_origins",
        "indexes": [("account", "-seen_at"), {"fields": ["expires_at"], "expireAfterSeconds": 0}],
    }
