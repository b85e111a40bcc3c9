"""Sharing part of a record with a doctor: a time-limited, revocable, audited code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import ObjectId
from mongoengine import NotUniqueError

from app.models.citizen import Citizen
from app.models.records import VOIDED, Immunization, Share, Visit
from app.models.registries import ShareKey
from app.security.attempts import AttemptLimiter
from app.security.crypto import SecretBox
from app.services import audit, outbox
from app.services.audit import Actor, RequestContext
from app.services.errors import Conflict, NotFound
from app.services.mfa import normalize_code, readable_code
from app.services.timeline import object_id

SHARE_CODE_LENGTH = 16  # 16 x log2(31) = 79 bits
SHARED_RECORD_LIMIT = 200
SCOPES = ("visits", "immunizations", "prescriptions")


@dataclass(frozen=True)
class NewShare:
    """A share and its code (shown once)."""

    share: Share
    code: str


@dataclass(frozen=True)
class SharedRecord:
    """What a share holder sees: the person, and only the shared parts."""

    citizen: Citizen
    scope: list[str]
    visits: list[Visit]
    immunizations: list[Immunization]
    prescriptions: list[Visit]
    expires_at: Any


def share_code_hash(box: SecretBox, code: str) -> str:
    """Share codes are stored only as keyed hashes."""
    return box.keyed_hash(normalize_code(code), "share-code")


def create_share(ctx: RequestContext, citizen_id: ObjectId, scope: list[str], hours: int, *,
                 box: SecretBox) -> NewShare:
    """Make a share code valid for ``hours`` (1-72) over ``scope``.

    The code's registry entry (``share_keys``, keyed by the code's hash: unique there) is written
    before the share, so that redemption finds the share's citizen without asking every shard.
    """
    share_id = ObjectId()
    for _ in range(3):  # 79 random bits: a code already taken is never seen, but is not reused
        raw = readable_code(SHARE_CODE_LENGTH)
        code = "-".join(raw[i:i + 4] for i in range(0, SHARE_CODE_LENGTH, 4))
        code_hash = share_code_hash(box, code)
        try:
            ShareKey(id=code_hash, citizen_id=citizen_id, share_id=share_id, created_at=ctx.now).save(
                force_insert=True)
            break
        except NotUniqueError:  # pragma: no cover - see above
            continue
    else:  # pragma: no cover
        raise Conflict("Try again.")
    share = Share(id=share_id, citizen_id=citizen_id, code_hash=code_hash,
                  scope=sorted(set(scope), key=SCOPES.index), created_at=ctx.now,
                  expires_at=ctx.now + timedelta(hours=hours))
    share.save(force_insert=True)
    audit.record(ctx, "share.create", citizen_id=citizen_id, target_type="share",
                 target_id=str(share.id), details={"scope": share.scope, "hours": hours})
    return NewShare(share, code)


def list_shares(citizen_id: ObjectId) -> list[Share]:
    """The citizen's shares, newest first."""
    return list(Share.objects(citizen_id=citizen_id).order_by("-created_at").limit(100))


def revoke_share(ctx: RequestContext, citizen_id: ObjectId, share_id: str) -> None:
    """Revoke one of the citizen's own shares (404 for anyone else's)."""
    if not Share.objects(id=object_id(share_id), citizen_id=citizen_id, revoked_at=None).update_one(
        set__revoked_at=ctx.now
    ):
        raise NotFound("No such share.")
    audit.record(ctx, "share.revoke", citizen_id=citizen_id, target_type="share", target_id=share_id)


def open_share(ctx: RequestContext, code: str, *, box: SecretBox, attempts: AttemptLimiter) -> SharedRecord:
    """Redeem a share code: only the shared scope, 404 when expired, revoked or unknown.

    The opening is written into the citizen's access log, naming the facility when a facility
    token came with the request, and the citizen is told.
    """
    attempts.hit(ctx.ip or "unknown")
    gone = NotFound("No such share, or it has expired or been revoked.")
    key = ShareKey._get_collection().find_one({"_id": share_code_hash(box, code)})
    if key is None:
        raise gone
    # The registry names the share and its citizen: count the opening with one conditional update
    # on that share (one shard), then read what it shares.
    pinned = {"_id": key["share_id"], "citizen_id": key["citizen_id"]}
    collection = Share._get_collection()
    if not collection.update_one({**pinned, "revoked_at": None, "expires_at": {"$gt": ctx.now}},
                                 {"$inc": {"times_opened": 1}, "$set": {"last_opened_at": ctx.now}}).matched_count:
        raise gone
    share = collection.find_one(pinned, {"citizen_id": 1, "scope": 1, "expires_at": 1})
    if share is None:  # pragma: no cover - shares are never deleted
        raise gone
    citizen = Citizen.objects(id=share["citizen_id"]).first()
    if citizen is None:  # pragma: no cover - shares are never orphaned
        raise NotFound("No such share.")
    holder = ctx.actor if ctx.actor.type == "facility_client" else Actor("share_holder", None,
                                                                        "holder of a share code")
    audit.record(ctx.acting_as(holder), "share.open", citizen_id=citizen.id, target_type="share",
                 target_id=str(share["_id"]), access="read", details={"scope": share["scope"]})
    outbox.notify(ctx, citizen, "share_opened", f"{share['_id']}:{ctx.now.isoformat()}")
    scope = share["scope"]
    live_visits = Visit.objects(citizen_id=citizen.id, status__ne=VOIDED).order_by("-started_at")
    return SharedRecord(
        citizen=citizen, scope=scope,
        visits=list(live_visits.limit(SHARED_RECORD_LIMIT)) if "visits" in scope else [],
        immunizations=list(Immunization.objects(citizen_id=citizen.id, status__ne=VOIDED)
                           .order_by("-administered_at").limit(SHARED_RECORD_LIMIT))
        if "immunizations" in scope else [],
        prescriptions=list(live_visits.filter(prescriptions__0__exists=True)
                           .limit(SHARED_RECORD_LIMIT)) if "prescriptions" in scope else [],
        expires_at=share["expires_at"],
    )
