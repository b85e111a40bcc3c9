"""Writing the audit trail."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import bson
from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from app.infra.batching import Failed, GroupCommit
from app.infra.unstorable import UNSTORABLE
from app.models.access_log import AccessLogEntry
from app.models.audit import ACCESS_KINDS, ACTOR_TYPES, OUTCOMES, REASON_MAX_LENGTH, AuditCounter, AuditEvent
from app.models.list_index import ListIndex, RecentBuild
from app.services import list_index


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


COUNTER_ID = "audit_events"


# What an access-log entry copies of its event: what the log shows, so a page reads the entries only.
SHOWN_IN_ACCESS_LOG = ("access", "action", "actor_type", "actor_label", "facility_code", "outcome")


def shown_in_access_log(document: dict[str, Any]) -> bool:
    """Whether the access log of the event's citizens shows it, and so whether it gets an
    ``AccessLogEntry`` per citizen: every write to their record, and every read of it by someone
    else (not their own reads, nor events that are not accesses: sign-ins, activation)."""
    access = document.get("access")
    return access == "write" or (access == "read" and document.get("actor_type") != "citizen")


def entry_id(event_id: ObjectId, citizen_id: ObjectId) -> ObjectId:
    """The id of an event's entry in one citizen's access log: derived from both, so that writing
    an entry twice (its writer and a fill, see :func:`fill_access_log`) stores it once."""
    return ObjectId(hashlib.blake2b(event_id.binary + citizen_id.binary, digest_size=12).digest())


def access_log_entries(document: dict[str, Any], citizens: Iterable[ObjectId] | None = None) -> list[dict[str, Any]]:
    """The access-log entries of a stored event (with its ``_id``): one per citizen it names (or
    those of ``citizens`` it names), none when the access log does not show it."""
    if not shown_in_access_log(document):
        return []
    named = dict.fromkeys(document.get("citizen_ids") or [])
    chosen = named if citizens is None else [citizen for citizen in citizens if citizen in named]
    shown = {field: document[field] for field in SHOWN_IN_ACCESS_LOG if document.get(field) is not None}
    return [{"_id": entry_id(document["_id"], citizen_id), "citizen_id": citizen_id, "at": document["at"],
             "event_id": document["_id"], **shown} for citizen_id in chosen]


def allocate_numbers(count: int) -> int:
    """Reserve ``count`` consecutive event numbers (``AuditEvent.seq``); returns the first.

    One ``$inc`` on a one-document collection per stored batch. Without an upsert: the embedded
    server may answer an upsert race with null (``embedded_quirks``), and a number read back then
    could be another batch's; the counter is created once, a concurrent creation being a duplicate.
    """
    collection = AuditCounter._get_collection()
    for _ in range(2):
        answer = collection.find_one_and_update({"_id": COUNTER_ID}, {"$inc": {"value": count}},
                                                projection=["value"], return_document=ReturnDocument.AFTER)
        if answer is not None:
            return int(answer["value"]) - count + 1
        try:
            collection.insert_one({"_id": COUNTER_ID, "value": 0, "low": 1})
        except DuplicateKeyError:
            pass
    raise RuntimeError("the audit event counter could not be created")


def insert_events(documents: list[dict[str, Any]], *, not_indexed: Iterable[ObjectId] = (),
                  read_at: datetime | None = None) -> list[ObjectId | Failed]:
    """Store events built by :func:`event_document`: the one way audit events are inserted.

    Each event gets its number (``seq``, one allocation for the batch), the events are inserted,
    then the access-log entries of those stored (:func:`access_log_entries`) are inserted and
    reported to the citizens' list indexes. ``not_indexed``/``read_at``: the citizens the caller
    read as not yet active, and when (a bulk upload's pending citizens, most of whom never use the
    app): they get no entries, except those whose list index was built since (``list_index.
    built_since``); a citizen's access log is filled from the audit trail when first read
    (:func:`fill_access_log`), so nothing is lost either way.

    The entries are written after their events, so no access is without its audit event. A crash
    (or a failed entry insert, which raises to every caller) between the two leaves stored events
    whose entries are missing from the access log; the events themselves are the record, and
    :func:`copy_missing_entries` writes the missing entries again (``flask audit entries``).
    """
    results = _insert_numbered(documents)
    stored = [document for document, result in zip(documents, results, strict=True)
              if not isinstance(result, Failed)]
    skipped = set(not_indexed)
    if skipped:
        skipped -= list_index.built_since(skipped, read_at)
    entries = [entry for event in stored for entry in access_log_entries(event)
               if entry["citizen_id"] not in skipped]
    _store_entries(entries)
    return results


def _store_entries(entries: list[dict[str, Any]], *, report_stored: bool = False) -> None:
    """Insert entries and add to the list indexes those this call stored (an entry already stored
    was reported by its writer: the list index keeps every key it is given); ``report_stored``:
    report those too (a repair, whose entries may be stored and not yet reported)."""
    if not entries:
        return
    duplicates: set[int] = set()
    try:
        AccessLogEntry._get_collection().insert_many(entries, ordered=False)
    except BulkWriteError as error:
        problems = error.details.get("writeErrors", [])
        if any(problem.get("code") != 11000 for problem in problems):
            raise
        duplicates = {problem["index"] for problem in problems}
    changes = list_index.Changes()
    for position, entry in enumerate(entries):
        if report_stored or position not in duplicates:
            changes.inserted("access_log", entry)
    list_index.apply(changes)


FILLED = "access_log_filled"  # the list index's counter that says the citizen's log was filled


def fill_access_log(citizen_id: ObjectId, now: datetime) -> int:
    """Write every access-log entry of a citizen that the audit trail holds and their log lacks
    (the entries a bulk upload left out while they were pending, those of events stored before
    entries existed), then mark their list index as filled; returns how many entries it read.

    The build is recorded first (``RecentBuild``), as ``list_index.build`` does: a writer that read
    the citizen as pending and stores its event after this read writes the entry itself
    (:func:`insert_events` asks ``built_since``); one that stored it before is read here.
    """
    RecentBuild._get_collection().update_one({"_id": citizen_id}, {"$set": {"at": now}}, upsert=True)
    # the citizen's index only: a filter on another field would be a collection scan (embedded server)
    events = AuditEvent._get_collection().find({"citizen_ids": citizen_id}, {"at": 1, "access": 1, "actor_type": 1})
    entries = [entry for event in events
               for entry in access_log_entries({**event, "citizen_ids": [citizen_id]})]
    _store_entries(entries)
    ListIndex._get_collection().update_one({"_id": citizen_id}, {"$set": {f"counters.{FILLED}": 1}})
    return len(entries)


def _insert_numbered(documents: list[dict[str, Any]]) -> list[ObjectId | Failed]:
    """Insert the events of concurrent requests at once; one that cannot be stored fails alone.

    :func:`event_document` has checked each event, so a failure here is unexpected; if it is one
    event's (it cannot be encoded), the others are stored one by one and only its caller fails
    (its number is then unused: numbers may have gaps, never repeats).
    """
    collection = AuditEvent._get_collection()
    first = allocate_numbers(len(documents)) if documents else 0
    for position, document in enumerate(documents):
        document.setdefault("_id", ObjectId())
        document["seq"] = first + position
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


def _insert_events(documents: list[dict[str, Any]]) -> list[ObjectId | Failed]:
    """One batch of the trail's group commit."""
    return insert_events(documents)


class AuditTrail:
    """One app's audit trail writer: concurrent requests store their events with one insert
    (``app.infra.batching``), and each waits for its own event to be stored."""

    def __init__(self) -> None:
        self._events: GroupCommit[dict[str, Any], ObjectId] = GroupCommit(_insert_events)

    def store(self, document: dict[str, Any]) -> ObjectId:
        """Store one event built by :func:`event_document`; returns its id once stored."""
        return self._events.submit(document)


def store_all(documents: list[dict[str, Any]], *, not_indexed: Iterable[ObjectId] = (),
              read_at: datetime | None = None) -> list[ObjectId]:
    """Store events built by :func:`event_document` with one insert of their own (a batch write's
    events); raises if one could not be stored (the others are). See :func:`insert_events`."""
    results = insert_events(documents, not_indexed=not_indexed, read_at=read_at)
    for result in results:
        if isinstance(result, Failed):
            raise result.error
    return results  # type: ignore[return-value]


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


def copy_missing_entries(first_seq: int, last_seq: int) -> int:
    """Write the access-log entries of the events numbered ``first_seq..last_seq`` again (after a
    crash between an event and its entries); returns how many entries it wrote or found. Idempotent:
    an entry's id is derived from its event and citizen."""
    events = AuditEvent._get_collection().find({"seq": {"$gte": first_seq, "$lte": last_seq}},
                                               {"at": 1, "access": 1, "actor_type": 1, "citizen_ids": 1})
    entries = [entry for event in events for entry in access_log_entries(event)]
    _store_entries(entries, report_stored=True)
    return len(entries)


def number_unnumbered(chunk: int = 500) -> int:
    """Number the events stored before numbers existed (no ``seq``), newest first downwards from
    the counter's ``low`` (so they page after every numbered event, oldest last); returns how many.

    A one-time upgrade step (``flask audit number``), the only change ever made to stored events:
    it reads the time of every unnumbered event (a collection scan). Numbers are reserved (``low``
    lowered) before they are written, so a run stopped midway leaves a gap, never a repeat, and the
    next run numbers the rest.
    """
    events = AuditEvent._get_collection()
    counters = AuditCounter._get_collection()
    allocate_numbers(0)  # the counter exists
    unnumbered = sorted(((document["at"], document["_id"]) for document in
                         events.find({"seq": {"$exists": False}}, {"at": 1})), reverse=True)
    for start in range(0, len(unnumbered), chunk):
        part = unnumbered[start:start + chunk]
        answer = counters.find_one_and_update({"_id": COUNTER_ID}, {"$inc": {"low": -len(part)}},
                                              projection=["low"], return_document=ReturnDocument.AFTER)
        top = int(answer["low"]) + len(part) - 1  # the reserved numbers: low .. top
        events.bulk_write([UpdateOne({"_id": event_id, "seq": {"$exists": False}}, {"$set": {"seq": top - n}})
                           for n, (_, event_id) in enumerate(part)], ordered=False)
    return len(unnumbered)
