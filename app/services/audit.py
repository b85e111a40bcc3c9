"""Writing the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bson import ObjectId

from app.batching import GroupCommit
from app.models.audit import ACCESS_KINDS, ACTOR_TYPES, OUTCOMES, REASON_MAX_LENGTH, AuditEvent


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
    """What every use case needs to know about the request that runs it."""

    actor: Actor
    now: datetime
    request_id: str | None = None
    ip: str | None = None

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
    The values callers choose are checked as ``AuditEvent.validate()`` would; building that
    document for every event cost more than the rest of a cached timeline read.
    """
    concerned = citizen_ids if citizen_ids is not None else ([citizen_id] if citizen_id else [])
    if (ctx.actor.type not in ACTOR_TYPES or outcome not in OUTCOMES or not action
            or (access is not None and access not in ACCESS_KINDS) or len(reason or "") > REASON_MAX_LENGTH
            or not all(isinstance(concerned_id, ObjectId) for concerned_id in concerned)
            or not all(isinstance(key, str) and "." not in key and not key.startswith("$") for key in details or {})):
        raise ValueError(f"not a valid audit event: {action!r} {outcome!r} {access!r}")
    document = {
        "at": ctx.now, "actor_type": ctx.actor.type, "actor_id": ctx.actor.id, "actor_label": ctx.actor.label,
        "facility_code": ctx.actor.facility_code, "action": action, "outcome": outcome, "citizen_id": citizen_id,
        "citizen_ids": concerned,
        "target_type": target_type, "target_id": target_id, "reason": reason, "request_id": ctx.request_id,
        "ip": ctx.ip, "details": details or {}, "access": access,
    }
    return {name: value for name, value in document.items() if value is not None}


def _insert_events(documents: list[dict[str, Any]]) -> list[ObjectId]:
    AuditEvent._get_collection().insert_many(documents)
    return [document["_id"] for document in documents]


# Concurrent requests of this process store their events with one insert; each waits for its own.
_EVENTS: GroupCommit[dict[str, Any], ObjectId] = GroupCommit(_insert_events)


def record(ctx: RequestContext, action: str, outcome: str = "success", **fields: Any) -> ObjectId:
    """Append one event and return its id once it is stored. Callers pass identifiers and outcomes,
    never secrets or health data.

    ``fields`` are the keyword arguments of :func:`event_document`.
    """
    return _EVENTS.submit(event_document(ctx, action, outcome, **fields))
