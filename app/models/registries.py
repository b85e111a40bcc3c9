"""Registries: what a client presents (a CCCD, a share code, a UVCI) -> the citizen who holds it.

A national deployment shards the health and account collections by citizen, so a query by
anything else would ask every shard. Each registry is its own small collection keyed (and
sharded) by what the client presents, written before the document it points to: its unique
``_id`` keeps the value unique across shards, which a unique index on the sharded collection
cannot (a unique index there must start with the shard key). A look-up reads the registry by
``_id`` (one shard), then the document by its citizen (one shard).

``facility code + source id -> record`` is the fourth registry, ``RecordKey`` in
``app.models.records``.
"""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow


class CitizenKey(me.Document):
    """A national id (CCCD) -> its citizen: the authority on which CCCD has which citizen.

    Written before the citizen document (``app.services.citizens.find_or_create_citizens``); an
    entry whose citizen is missing (a crash between the two inserts) is healed by the next
    find-or-create of that CCCD, which creates the citizen with this id.
    """

    id = me.StringField(primary_key=True)  # the national id
    citizen_id = me.ObjectIdField(required=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "citizen_keys"}


class ShareKey(me.Document):
    """A share code's keyed hash -> its share and citizen (written before the share)."""

    id = me.StringField(primary_key=True)  # app.services.shares.share_code_hash
    citizen_id = me.ObjectIdField(required=True)
    share_id = me.ObjectIdField(required=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "share_keys"}


class CertificateKey(me.Document):
    """A passport's UVCI -> its certificate and citizen (written before the certificate)."""

    id = me.StringField(primary_key=True)  # the UVCI
    citizen_id = me.ObjectIdField(required=True)
    certificate_id = me.ObjectIdField(required=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "certificate_keys"}


class CertificateRevocation(me.Document):
    """A revoked passport that has not expired: what the revocation list and the gateway upload read.

    Every verifier needs the whole list (cached ten seconds per process), so it is one small
    unsharded collection, not a query over every shard's certificates. Written by the revocation
    before the certificate's status changes; expired entries are removed by a TTL index (readers
    still check ``expires_at``).
    """

    id = me.StringField(primary_key=True)  # the UVCI
    citizen_id = me.ObjectIdField(required=True)
    kid = me.StringField(required=True)
    expires_at = me.DateTimeField(required=True)
    revoked_at = me.DateTimeField(required=True)
    hash_uci = me.StringField(required=True)
    hash_countrycode_uci = me.StringField(required=True)
    hash_signature = me.StringField(required=True)

    meta = {
        "collection": "certificate_revocations",
        "indexes": [{"fields": ["expires_at"], "expireAfterSeconds": 0}],
    }
