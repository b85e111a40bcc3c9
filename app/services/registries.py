"""Fill the registries (``citizen_keys``, ``share_keys``, ``certificate_keys``, the revocation list
``certificate_revocations`` and each signing key's ``passports_expire_by``) from the documents stored
before they existed: ``flask data build-registries``.

A migration, run once when upgrading (writers stopped; see the README), and safe to run again: an
entry that exists is left as it is, and one that names another document is reported, never
overwritten. It reads whole collections in ``_id`` order, so it asks every shard by design.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.models.citizen import Citizen
from app.models.passports import Certificate, SigningKey
from app.models.records import Share
from app.models.registries import CertificateKey, CertificateRevocation, CitizenKey, ShareKey
from app.services.ingest.writes import insert_ignoring_duplicates

BATCH = 500


@dataclass
class Filled:
    """What filling one registry did."""

    registry: str
    added: int = 0
    present: int = 0
    # Values held by two documents (e.g. one CCCD on two citizens): the entry keeps the first.
    conflicts: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.registry}: {self.added} added, {self.present} already present"
        if self.conflicts:
            text += f", {len(self.conflicts)} conflicting: " + ", ".join(self.conflicts[:20])
        return text


def _batches(collection: Any, query: dict[str, Any], fields: dict[str, int]) -> Iterator[list[dict]]:
    """Every matching document, ``fields`` only, in ``_id`` order, ``BATCH`` at a time."""
    batch: list[dict] = []
    for document in collection.find(query, fields).sort("_id", 1):
        batch.append(document)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _fill(filled: Filled, registry: Any, entries: list[dict], points_to: str) -> None:
    """Insert ``entries`` (each with its ``_id``); count duplicates, and those pointing elsewhere."""
    duplicates = insert_ignoring_duplicates(registry._get_collection(), entries)
    filled.added += len(entries) - len(duplicates)
    filled.present += len(duplicates)
    if not duplicates:
        return
    clashes = [entries[i] for i in sorted(duplicates)]
    stored = {entry["_id"]: entry for entry in registry._get_collection().find(
        {"_id": {"$in": [entry["_id"] for entry in clashes]}})}
    for entry in clashes:
        if stored.get(entry["_id"], {}).get(points_to) != entry[points_to]:
            filled.conflicts.append(str(entry["_id"]))


def build_registries(now: datetime) -> list[Filled]:
    """Fill every registry from the stored documents (idempotent); what each fill did."""
    report = []
    citizens = Filled("citizen_keys")
    for batch in _batches(Citizen._get_collection(), {}, {"national_id": 1, "created_at": 1}):
        _fill(citizens, CitizenKey, [
            {"_id": doc["national_id"], "citizen_id": doc["_id"], "created_at": doc.get("created_at") or now}
            for doc in batch if doc.get("national_id")], "citizen_id")
    report.append(citizens)
    shares = Filled("share_keys")
    for batch in _batches(Share._get_collection(), {}, {"code_hash": 1, "citizen_id": 1, "created_at": 1}):
        _fill(shares, ShareKey, [
            {"_id": doc["code_hash"], "citizen_id": doc["citizen_id"], "share_id": doc["_id"],
             "created_at": doc.get("created_at") or now} for doc in batch], "share_id")
    report.append(shares)
    certificates = Filled("certificate_keys")
    fields = {"uvci": 1, "citizen_id": 1, "issued_at": 1}
    for batch in _batches(Certificate._get_collection(), {}, fields):
        _fill(certificates, CertificateKey, [
            {"_id": doc["uvci"], "citizen_id": doc["citizen_id"], "certificate_id": doc["_id"],
             "created_at": doc.get("issued_at") or now} for doc in batch], "certificate_id")
    report.append(certificates)
    revocations = Filled("certificate_revocations")
    fields = {name: 1 for name in ("uvci", "citizen_id", "kid", "expires_at", "revoked_at", "hash_uci",
                                   "hash_countrycode_uci", "hash_signature")}
    query = {"status": "revoked", "expires_at": {"$gt": now}}
    for batch in _batches(Certificate._get_collection(), query, fields):
        _fill(revocations, CertificateRevocation, [
            {"_id": doc["uvci"], "citizen_id": doc["citizen_id"], "kid": doc["kid"], "expires_at": doc["expires_at"],
             "revoked_at": doc.get("revoked_at") or now, "hash_uci": doc["hash_uci"],
             "hash_countrycode_uci": doc["hash_countrycode_uci"], "hash_signature": doc["hash_signature"]}
            for doc in batch], "citizen_id")
    report.append(revocations)
    keys = Filled("signing_keys.passports_expire_by")
    latest = [{"$group": {"_id": "$kid", "until": {"$max": "$expires_at"}}}]
    for last in Certificate._get_collection().aggregate(latest):
        result = SigningKey._get_collection().update_one(
            {"kid": last["_id"], "passports_expire_by": {"$not": {"$gte": last["until"]}}},
            {"$max": {"passports_expire_by": last["until"]}})
        keys.added += result.modified_count
        keys.present += 1 - result.modified_count
    report.append(keys)
    return report
