"""Facilities push visits and immunizations: create, replace, leave unchanged, or void.

One code path serves the single PUT, the NDJSON bulk upload and the QĐ 130 XML import: a batch of
validated items goes through a handful of bulk database operations, so a bulk upload costs a few
round trips per hundred records instead of several per record.

Idempotency: the key ``<kind>:<facility>:<source id>`` is inserted into ``record_keys`` before
the record (unique ``_id``), so concurrent identical pushes make exactly one record. A push whose
payload hash equals the stored one writes nothing and keeps the version.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bson import ObjectId

from app.infra.embedded_quirks import in_chunks
from app.models.citizen import Citizen
from app.models.records import VOIDED, Provenance, RecordKey
from app.services import audit, outbox
from app.services.audit import RequestContext
from app.services.citizens import IdentityMismatch, NewCitizen, check_identities, find_or_create_citizens
from app.services.errors import Conflict, LockedOut
from app.services.ingest.items import PushItem, PushResult, check_source_id
from app.services.ingest.kinds import RecordKind, kind, kinds
from app.services.ingest.writes import RecordWrites, insert_ignoring_duplicates

MAX_VERSION_RETRIES = 5
# An upload reuses a citizen it has already found for this long (a state read this long ago is
# still checked against the list index builds since: see ``list_index.apply``).
CITIZEN_REUSE_SECONDS = 20.0


@dataclass(frozen=True)
class _CitizenRef:
    """What a push needs of its citizen (a projection: whole documents cost more than the inserts)."""

    id: ObjectId
    national_id: str
    date_of_birth: str
    state: str
    registered_by_facility: str | None = None

    @classmethod
    def of(cls, document: dict[str, Any]) -> _CitizenRef:
        return cls(document["_id"], document["national_id"], document["date_of_birth"], document.get("state", ""),
                   document.get("registered_by_facility"))


CITIZEN_REF_FIELDS = {"_id": 1, "national_id": 1, "date_of_birth": 1, "state": 1, "registered_by_facility": 1}


class KnownCitizens:
    """Citizens one upload has already found, so that a patient's later lines need no look-up.

    Exports list the same patients again and again (several visits, a vaccination series). Only
    what cannot change is relied on (id, national id, birth date); the state, which can, is used
    for at most ``CITIZEN_REUSE_SECONDS`` and each batch reports when its oldest citizen was read
    (``list_index.apply`` then adds the items of citizens whose index was built since). Bounded,
    so an upload of many different people stays flat.
    """

    def __init__(self, max_size: int = 5_000) -> None:
        self._max_size = max_size
        self._found: OrderedDict[str, tuple[_CitizenRef, float]] = OrderedDict()

    def get(self, national_id: str, now: float) -> tuple[_CitizenRef, float] | None:
        """The citizen and when it was read, if read within ``CITIZEN_REUSE_SECONDS``."""
        entry = self._found.get(national_id)
        if entry is None or now - entry[1] > CITIZEN_REUSE_SECONDS:
            return None
        self._found.move_to_end(national_id)
        return entry

    def put(self, citizen: _CitizenRef, read_at: float) -> None:
        self._found[citizen.national_id] = (citizen, read_at)
        self._found.move_to_end(citizen.national_id)
        while len(self._found) > self._max_size:
            self._found.popitem(last=False)


@dataclass
class _Pending:
    """An item in flight through :func:`ingest`."""

    index: int
    item: PushItem
    key: str
    citizen: _CitizenRef | None = None
    payload_hash: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def push_one(ctx: RequestContext, kind_name: str, source_id: str, data: dict[str, Any]) -> PushResult:
    """The PUT of one record: the same path as a bulk line, errors raised as domain errors."""
    check_source_id(source_id)
    result = ingest(ctx, [PushItem(kind(kind_name).name, source_id, data)])[0]
    if result.error is not None:
        raise result.error
    return result


def record_key(kind: str, facility_code: str, source_id: str) -> str:
    """The idempotency key of a facility's record."""
    return f"{kind}:{facility_code}:{source_id}"


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def payload_hash(kind: str, data: dict[str, Any]) -> str:
    """SHA-256 of the canonical form of a validated push (time zones normalised)."""
    canonical = json.dumps([kind, _canonical(data)], sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _document(record_kind: RecordKind, pending: _Pending, record_id: ObjectId, ctx: RequestContext) -> dict:
    """The MongoDB document of a new record, built directly from validated data.

    (Building mongoengine objects only to serialise them cost more than the database write.)
    """
    assert pending.citizen is not None
    document = {
        "_id": record_id, "citizen_id": pending.citizen.id, "facility_code": ctx.actor.facility_code,
        "source_id": pending.item.source_id, **pending.fields, "version": 1,
        "payload_hash": pending.payload_hash, "provenance": _provenance(ctx, pending),
        "created_at": ctx.now, "updated_at": ctx.now,
    }
    document.update(record_kind.stamped(pending.fields, ctx.now))
    document.update({name: list(value) if isinstance(value, list) else value
                     for name, value in record_kind.created_fields.items()})
    return document


def _provenance(ctx: RequestContext, pending: _Pending) -> dict[str, Any]:
    return {"client_id": ctx.actor.id, "facility_code": ctx.actor.facility_code or "",
            "received_at": ctx.now, "payload_hash": pending.payload_hash, "channel": pending.item.channel}


def _resolve_citizens(ctx: RequestContext, batch: list[_Pending], results: list[PushResult | None],
                      remembered: KnownCitizens) -> float:
    """Attach each item's citizen: those the upload already knows, then one find-or-create for the rest.

    Records exist whether or not the person ever uses the app, so an unknown CCCD creates a
    citizen without an account (``citizens.find_or_create_citizens``: the one rule, the one
    audit event). A known CCCD with another birth date is a 409 for that item.
    Returns when the oldest of the citizens used was read (``time.monotonic()``).
    """
    read_at = oldest = time.monotonic()
    known: dict[str, _CitizenRef] = {}
    wanted: dict[str, NewCitizen] = {}
    for pending in batch:
        data = pending.item.data
        if (entry := remembered.get(data["national_id"], read_at)) is not None:
            known[data["national_id"]] = entry[0]
            oldest = min(oldest, entry[1])
        elif data["national_id"] not in known:
            wanted[data["national_id"]] = NewCitizen(data["national_id"], data["full_name"], data["date_of_birth"],
                                                     data["sex"])
    if wanted:
        found, _ = find_or_create_citizens(ctx, list(wanted.values()), CITIZEN_REF_FIELDS)
        for document in found.values():
            citizen = known[document["national_id"]] = _CitizenRef.of(document)
            remembered.put(citizen, read_at)
    checks = [(known[p.item.data["national_id"]], p.item.data["date_of_birth"]) for p in batch]
    for pending, (citizen, _), error in zip(batch, checks, check_identities(ctx, checks), strict=True):
        if isinstance(error, LockedOut):
            results[pending.index] = PushResult(429, problem="too-many-attempts", error=error)
        elif error is not None:
            results[pending.index] = PushResult(409, problem=IdentityMismatch.slug, error=error,
                                                errors={"date_of_birth": [str(error.detail)]})
        else:
            pending.citizen = citizen
    return oldest


def _find_in(model: Any, field: str, values: list[Any]) -> list[Any]:
    """Documents whose ``field`` is one of ``values``, queried in chunks."""
    return [document for chunk in in_chunks(values) for document in model.objects(**{f"{field}__in": chunk})]


RECORD_REF_FIELDS = ("id", "version", "payload_hash", "citizen_id")


def _records_of(model: Any, refs: list[tuple[ObjectId, ObjectId]]) -> dict[ObjectId, Any]:
    """Records by ``(record id, citizen id)``, as ``record_keys`` names them: each query names the
    citizens of its chunk (the shard key), so it reaches their shards only."""
    found: dict[ObjectId, Any] = {}
    for chunk in in_chunks(refs):
        query = model.objects(id__in=[record_id for record_id, _ in chunk],
                              citizen_id__in=list({citizen_id for _, citizen_id in chunk}))
        found.update((record.id, record) for record in query.only(*RECORD_REF_FIELDS))
    return found


def _key_citizens(key_id: str) -> list[ObjectId]:
    """Every citizen the record of this key may be under: the key's, and each one a correction
    or a recovery named (``RecordKey.held_by``, written before the record goes there)."""
    stored = RecordKey._get_collection().find_one({"_id": key_id}, {"citizen_id": 1, "held_by": 1}) or {}
    return list(dict.fromkeys(filter(None, [stored.get("citizen_id"), *(stored.get("held_by") or [])])))


def _locate(model: Any, key_id: str, record_id: ObjectId) -> Any:
    """A record that was not where its key said (another request moved it, or a correction stopped
    between its writes): under one of the citizens the key lists, read again (one query naming
    them: their shards only). None when it does not exist (its key was written, it was not)."""
    citizens = _key_citizens(key_id)
    if not citizens:  # pragma: no cover - keys are never deleted
        return None
    return model.objects(id=record_id, citizen_id__in=citizens).only(*RECORD_REF_FIELDS).first()


def _may_hold(key: RecordKey, citizen_id: ObjectId) -> None:
    """List ``citizen_id`` on the key before the record is written under that citizen, so that
    whatever stops half-way, the record is always under a citizen its key lists."""
    if citizen_id != key.citizen_id and citizen_id not in (key.held_by or []):
        RecordKey.objects(id=key.id).update_one(add_to_set__held_by=citizen_id)
        key.held_by = [*(key.held_by or []), citizen_id]


@dataclass
class Prepared:
    """A batch of pushes whose citizens are resolved and payloads hashed, ready for :func:`write`."""

    pending: list[_Pending]
    results: list[PushResult | None]
    citizens_read_at: float  # time.monotonic() when the oldest citizen was read (see RecordWrites)


def ingest(ctx: RequestContext, items: list[PushItem]) -> list[PushResult]:
    """Create, replace or leave unchanged each item's record; results in the order of ``items``.

    ``ctx.actor.facility_code`` is the pushing facility. A source id repeated within ``items`` is
    applied in order (the later push sees the earlier one's result).
    """
    return write(ctx, prepare(ctx, items))


def prepare(ctx: RequestContext, items: list[PushItem], known: KnownCitizens | None = None) -> Prepared:
    """First half of :func:`ingest`: find or create the citizens, check identities, hash payloads.

    A bulk upload prepares the next batch while the last one is written, and passes the same
    ``known`` for all its batches.
    """
    results: list[PushResult | None] = [None] * len(items)
    pending = [_Pending(index, item, record_key(kind(item.kind).name, ctx.actor.facility_code or "", item.source_id))
               for index, item in enumerate(items)]
    citizens_read_at = time.monotonic()
    if pending:
        citizens_read_at = _resolve_citizens(ctx, pending, results, known or KnownCitizens())
    for entry in pending:
        if entry.citizen is not None:
            entry.payload_hash = payload_hash(entry.item.kind, entry.item.data)
            entry.fields = kind(entry.item.kind).record_fields(entry.item.data)
    return Prepared(pending, results, citizens_read_at)


def write(ctx: RequestContext, prepared: Prepared) -> list[PushResult]:
    """Second half of :func:`ingest`: the records, their keys and audit events."""
    results = prepared.results
    batch: list[_Pending] = []
    seen: set[str] = set()
    for entry in prepared.pending:
        if entry.citizen is None:
            continue  # refused while preparing (identity mismatch)
        if entry.key in seen:
            _apply(ctx, batch, results, prepared.citizens_read_at)
            batch, seen = [], set()
        seen.add(entry.key)
        batch.append(entry)
    _apply(ctx, batch, results, prepared.citizens_read_at)
    return [result for result in results if result is not None]


def _apply(ctx: RequestContext, live: list[_Pending], results: list[PushResult | None],
           citizens_read_at: float) -> None:
    """Push one batch of prepared items whose keys are distinct (one unit of :class:`RecordWrites`)."""
    if not live:
        return
    # Insert every key first: the usual upload is new records, whose keys need no look-up; a key
    # that already exists (a re-push, or another request a moment ago) is a duplicate, read after.
    new_ids = {p.key: ObjectId() for p in live}
    key_documents = [
        {"_id": p.key, "record_id": new_ids[p.key], "citizen_id": p.citizen.id, "created_at": ctx.now}
        for p in live if p.citizen is not None
    ]
    duplicates = insert_ignoring_duplicates(RecordKey._get_collection(), key_documents)
    existing = [live[i] for i in sorted(duplicates)]
    keys = {key.id: key for key in _find_in(RecordKey, "id", [p.key for p in existing])}
    new = [p for i, p in enumerate(live) if i not in duplicates]
    writes: list[dict] = []
    not_active = {p.citizen.id for p in live if p.citizen is not None and p.citizen.state != "active"}
    with RecordWrites(not_active, citizens_read_at) as store:  # updates the list indexes at the end
        _create(ctx, store, new, new_ids, results, writes)
        _update_existing(ctx, store, existing, keys, results, writes)
        if writes:
            # the access-log entries of pending citizens are built with their index (activation)
            audit.store_all(_write_events(ctx, writes), not_indexed=not_active, read_at=ctx.now)


def _create(
    ctx: RequestContext,
    store: RecordWrites,
    new: list[_Pending],
    new_ids: dict[str, ObjectId],
    results: list[PushResult | None],
    writes: list[dict],
) -> None:
    for record_kind in kinds():
        chosen = [p for p in new if p.item.kind == record_kind.name]
        if not chosen:
            continue
        documents = [_document(record_kind, p, new_ids[p.key], ctx) for p in chosen]
        duplicates = store.insert(record_kind.model, documents)
        for position, pending in enumerate(chosen):
            created = position not in duplicates
            results[pending.index] = PushResult(201 if created else 200,
                                                "created" if created else "unchanged",
                                                str(new_ids[pending.key]), 1)
            if created:
                writes.append(_write(pending, "create", new_ids[pending.key], 1))
        _notify_new(ctx, [p for i, p in enumerate(chosen) if i not in duplicates], new_ids)


def _update_existing(
    ctx: RequestContext,
    store: RecordWrites,
    existing: list[_Pending],
    keys: dict[str, RecordKey],
    results: list[PushResult | None],
    writes: list[dict],
) -> None:
    for record_kind in kinds():
        model = record_kind.model
        chosen = [p for p in existing if p.item.kind == record_kind.name]
        if not chosen:
            continue
        records = _records_of(model, [(keys[p.key].record_id, keys[p.key].citizen_id) for p in chosen])
        for pending in chosen:
            key = keys[pending.key]
            record = records.get(key.record_id) or _locate(model, key.id, key.record_id)
            if record is None:  # the key was written but the record was not (a crash between)
                document = _document(record_kind, pending, key.record_id, ctx)
                _may_hold(key, document["citizen_id"])
                if not store.insert(model, [document]):
                    results[pending.index] = PushResult(201, "created", str(key.record_id), 1)
                    writes.append(_write(pending, "create", key.record_id, 1))
                    continue
                record = _locate(model, key.id, key.record_id)
            results[pending.index] = _replace(ctx, store, record_kind, record, pending, key, writes)


def _replace(
    ctx: RequestContext, store: RecordWrites, record_kind: RecordKind, record: Any, pending: _Pending,
    key: RecordKey, writes: list[dict],
) -> PushResult:
    """Replace a record's content if its payload changed (optimistic on the version)."""
    assert pending.citizen is not None
    model = record_kind.model
    for _ in range(MAX_VERSION_RETRIES):
        if record.payload_hash == pending.payload_hash:
            return PushResult(200, "unchanged", str(record.id), record.version)
        updates = {f"set__{name}": value for name, value in pending.fields.items()}
        updates.update({f"set__{name}": value for name, value in record_kind.stamped(pending.fields, ctx.now).items()})
        for name in record_kind.cleared_fields(pending.fields):
            updates[f"unset__{name}"] = True
        _may_hold(key, pending.citizen.id)  # a correction moves the record: its key lists the new citizen first
        # a correction moves the record's keys from one citizen's lists to the other's
        updated = store.update(
            model.objects(id=record.id, citizen_id=record.citizen_id, version=record.version),
            set__citizen_id=pending.citizen.id, set__payload_hash=pending.payload_hash,
            set__provenance=Provenance(**_provenance(ctx, pending)), set__updated_at=ctx.now,
            inc__version=1, **updates,
        )
        if updated:
            moved_from = record.citizen_id if record.citizen_id != pending.citizen.id else None
            if key.citizen_id != pending.citizen.id:  # the facility corrected whose record it is
                RecordKey.objects(id=key.id).update_one(set__citizen_id=pending.citizen.id)
            action = "void" if pending.fields.get("status") == VOIDED else "update"
            writes.append(_write(pending, action, record.id, record.version + 1, moved_from))
            return PushResult(200, "updated", str(record.id), record.version + 1)
        # another request changed it first (and may have moved it to another citizen)
        record = _locate(model, key.id, record.id)
        if record is None:  # pragma: no cover - records are never deleted
            break
    error = Conflict("The record is being changed by another request; try again.")
    return PushResult(409, problem="conflict", error=error)  # this item only: the rest of its batch goes on


def _write(pending: _Pending, verb: str, record_id: ObjectId, version: int,
           moved_from: ObjectId | None = None) -> dict[str, Any]:
    """What one write did, for its audit event (``moved_from``: the citizen a correction took it from)."""
    assert pending.citizen is not None
    return {"action": f"{pending.item.kind}.{verb}", "kind": pending.item.kind, "citizen_id": pending.citizen.id,
            "record_id": str(record_id), "source_id": pending.item.source_id, "version": version,
            "payload_hash": pending.payload_hash, "channel": pending.item.channel, "moved_from": moved_from}


def _write_events(ctx: RequestContext, writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The audit events of a batch's writes: one per action (``visit.create``, ``visit.update``...).

    A single write is an ordinary event about its citizen and record. Several writes of one action
    share an event that names every citizen (so each sees it in their access log) and lists each
    record with its source id, version and payload hash. One event per record cost a bulk upload
    more than the records themselves (five indexes each on the embedded database). A record a
    correction moved to another citizen is in both citizens' access logs.
    """
    by_action: dict[str, list[dict[str, Any]]] = {}
    for write in writes:
        by_action.setdefault(write["action"], []).append(write)
    documents = []
    for action, group in by_action.items():
        first = group[0]
        if len(group) == 1:
            details = {key: first[key] for key in ("source_id", "version", "payload_hash", "channel")}
            if first["moved_from"]:
                details["moved_from"] = str(first["moved_from"])
            documents.append(audit.event_document(
                ctx, action, citizen_id=first["citizen_id"], target_type=first["kind"],
                target_id=first["record_id"], access="write", details=details,
                citizen_ids=list(dict.fromkeys(filter(None, (first["citizen_id"], first["moved_from"]))))))
            continue
        concerned = (citizen for write in group for citizen in (write["citizen_id"], write["moved_from"]) if citizen)
        documents.append(audit.event_document(
            ctx, action, citizen_ids=list(dict.fromkeys(concerned)),
            target_type=first["kind"], access="write",
            details={"channel": first["channel"], "records": [
                {"citizen_id": str(write["citizen_id"]), "id": write["record_id"], "source_id": write["source_id"],
                 "version": write["version"], "payload_hash": write["payload_hash"]} for write in group]}))
    return documents


def _notify_new(ctx: RequestContext, created: Iterable[_Pending], ids: dict[str, ObjectId]) -> None:
    """Tell citizens who use the app that a facility added a record (no content in the text)."""
    active = [p for p in created if p.citizen is not None and p.citizen.state == "active"]
    if not active:
        return
    citizens = {c.id: c for c in _find_in(Citizen, "id", list({p.citizen.id for p in active if p.citizen}))}
    for pending in active:
        citizen = citizens.get(pending.citizen.id) if pending.citizen else None
        if citizen is not None:
            outbox.notify(ctx, citizen, "record_added", str(ids[pending.key]))
