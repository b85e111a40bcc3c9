"""Identity checks of facilities against citizens another facility registered (see ``app.services.citizens``)."""

from __future__ import annotations

import mongoengine as me


class IdentityCheck(me.Document):
    """A counter of identity checks, per (facility, citizen) or per facility (``<code>:*``).

    ``count`` holds the refusals of the current window plus the checks in flight; ``proven`` marks
    a pair whose facility has given the stored identity, so that its later checks are not counted.
    """

    id = me.StringField(primary_key=True)
    count = me.IntField(default=0)
    window_ends = me.DateTimeField()
    proven = me.BooleanField(default=False)
    expires_at = me.DateTimeField(required=True)

    meta = {"collection": "identity_checks", "indexes": [{"fields": ["expires_at"], "expireAfterSeconds": 0}]}
