"""Writing the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import bson
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from app.infra.batching import Failed, GroupCommit
from app.infra.unstorable import UNSTORABLE
from app.models.audit import ACCESS_KINDS, ACTOR_TYPES, OUTCOMES, REASON_MAX_LENGTH, AuditEvent


class InvalidAuditEvent(ValueError):
    """An audit event that may not or cannot be stored; nothing it would record may happen."""


@dataclass(frozen=True)
class Actor:
    """Who acts: its kind (``AuditEvent.actor_type``), id and a human label."""

    type: str
    id: str | None = None
    label: str | None = None
    facility_code: str | None = None


ANONYMOUS_ACTOR = Actor("anonymous")
SYSTEM_ACTOR = Actor("system", "hoso", "HoSo")


@dataclass(frozen=True)
class RequestContext:
    """What every use case needs to know about the request that runs it.

    ``trail`` is the app's audit trail writer (``Runtime.audit_trail``), set by whoever builds the
    context (``app.web.auth.request_context``, the CLI, the demo); without one, each event is
    inserted on its own.
    """

    actor: Actor
    now: datetime
    request_id: str | None = None
    ip: str | None = None
    trail: AuditTrail | None = field(default=None, compare=False, repr=False)

    def acting_as(self, actor: Actor) -> RequestContext:
        """The same request, now attributed to an actor who has just proved who they are."""
        return replace(self, actor=actor)


def event_document(
    ctx: RequestContext,
    action: str,
    outcome: str = "success",
    *,
    citizen_id: ObjectId | None = None,
    citizen_ids: list[ObjectId] | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    access: str | None = None,
) -> dict[str, Any]:
    """One audit event as stored (unset fields left out, as mongoengine stores them).

    ``citizen_id`` names the one citizen concerned; an event about several (a bulk write) passes
    ``citizen_ids`` instead. Either way ``citizen_ids`` lists them all, and queries use it.
    The values callers choose are checked as ``AuditEvent.validate()`` would (building that
    document for every event cost more than the rest of a cached timeline read), and the event is
    encoded once to prove it can be stored. So a service builds the event of a change *before*
    making the change: an event that cannot be stored raises :class:`InvalidAuditEvent` while
    nothing has happened yet.
    """
    concerned = citizen_ids if citizen_ids is not None else ([citizen_id] if citizen_id else [])
    if (ctx.actor.type not in ACTOR_TYPES or outcome not in OUTCOMES or not action
            or (access is not None and access not in ACCESS_KINDS) or len(reason or "") > REASON_MAX_LENGTH
            or not all(isinstance(concerned_id, ObjectId) for concerned_id in concerned)
            or not all(isinstance(key, str) and "." not in key and not key.startswith("$") for key in details or {})):
        raise InvalidAuditEvent(f"not a valid audit event: {action!r} {outcome!r} {access!r}")
    document = {
        "at": ctx.now, "actor_type": ctx.actor.type, "actor_id": ctx.actor.id, "actor_label": ctx.actor.label,
        "facility_code": ctx.actor.facility_code, "action": action, "outcome": outcome, "citizen_id": citizen_id,
        "citizen_ids": concerned,
        "target_type": target_type, "target_id": target_id, "reason": reason, "request_id": ctx.request_id,
        "ip": ctx.ip, "details": details or {}, "access": access,
    }
    stored = {name: value for name, value in document.items() if value is not None}
    try:
        bson.encode(stored)
    except UNSTORABLE as error:
        raise InvalidAuditEvent(f"an audit event cannot be stored: {action!r}: {error}") from None
    return stored


def _insert_events(documents: list[dict[str, Any]]) -> list[ObjectId | Failed]:
    """Insert the events of concurrent requests at once; one that cannot be stored fails alone.

    :func:`event_document` has checked each event, so a failure here is unexpected; if it is one
    event's (it cannot be encoded), the others are stored one by one and only its caller fails.
    """
    collection = AuditEvent._get_collection()
    for document in documents:
        document.setdefault("_id", ObjectId())
    try:
        collection.insert_many(documents)
        return [document["_id"] for document in documents]
    except UNSTORABLE:
        pass
    results: list[ObjectId | Failed] = []
    for document in documents:
        try:
            collection.insert_one(document)
        except DuplicateKeyError:
            pass  # stored by the insert above before it stopped
        except UNSTORABLE as error:
            results.append(Failed(InvalidAuditEvent(f"an audit event cannot be stored: {error}")))
            continue
        results.append(document["_id"])
    return results


class AuditTrail:
    """One app's audit trail writer: concurrent requests store their events with one insert
    (``app.infra.batching``), and each waits for its own event to be stored."""

    def __init__(self) -> None:
        self._events: GroupCommit[dict[str, Any], ObjectId] = GroupCommit(_insert_events)

    def store(self, document: dict[str, Any]) -> ObjectId:
        """Store one event built by :func:`event_document`; returns its id once stored."""
        return self._events.submit(document)


def _store_alone(document: dict[str, Any]) -> ObjectId:
    """Store one event with an insert of its own (a context without an app's trail)."""
    (result,) = _insert_events([document])
    if isinstance(result, Failed):
        raise result.error
    return result


def record(ctx: RequestContext, action: str, outcome: str = "success", **fields: Any) -> ObjectId:
    """Append one event and return its id once it is stored. Callers pass identifiers and outcomes,
    never secrets or health data.

    ``fields`` are the keyword arguments of :func:`event_document`.
    """
    return store(event_document(ctx, action, outcome, **fields), ctx.trail)


def store(document: dict[str, Any], trail: AuditTrail | None = None) -> ObjectId:
    """Append an event built (and so checked) beforehand by :func:`event_document`, through the
    app's ``trail`` (a request's ``ctx.trail``), else with an insert of its own."""
    return trail.store(document) if trail is not None else _store_alone(document)


@contextmanager
def recording(ctx: RequestContext, action: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Make a change and its audit event together: the event is built and checked first, the
    change runs in the ``with`` block, and the event is stored when the block succeeds, before
    the request is answered.

    So an event that cannot be stored refuses the change before anything happens; a change that
    fails (raises) records nothing here (the caller records its failure if it wants one). The block
    may add to the event's ``details``; should what it adds not be storable, the change has
    happened, so the event is stored without those details (marked so) rather than not at all.
    """
    document = event_document(ctx, action, **fields)
    details = document.setdefault("details", {})
    yield details
    try:
        bson.encode(document)
    except UNSTORABLE:
        document["details"] = {"unstorable_details": sorted(str(key) for key in details)}
    store(document, ctx.trail)
