"""The declared shard keys of a national deployment: one table, and what "pins the shard key" means.

A sharded cluster routes a query to one shard only when its filter names the whole shard key by
equality (or by an ``$in`` of listed values: the shards holding those). Any other query is a
*scatter*: every shard runs it, so its cost grows with the number of shards, and a hot path that
scatters stops the cluster from scaling. Hence the rules, kept by tests:

- every collection the app stores is in ``SHARD_KEYS`` or in ``UNSHARDED`` (``tests/app/infra/
  test_shard_keys.py`` reads the mongoengine models; the query-shape recorder of the test suite,
  ``tests/query_shapes.py``, also fails on a query to a collection in neither);
- health data and account data are sharded by citizen, so everything one citizen's app reads is on
  one shard; what a client presents instead of a citizen id (a CCCD, a share code, a UVCI, a
  facility's record id) is looked up in a small *registry* sharded by that value (``_id``), which
  names the citizen;
- a unique index of a sharded collection starts with its shard key (MongoDB refuses any other):
  uniqueness of another value is kept by its registry's ``_id``;
- every query the application sends to a sharded collection pins the shard key (the recorder fails
  the test run otherwise), unless its code location is in ``SCATTER_ALLOWED`` with the reason why
  scatter is acceptable there. Hot paths are never there.

Nothing here talks to a database: ``shard_commands`` renders the ``mongosh`` commands the README
shows, and the tests hold the app to the table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bson.regex import Regex

BY_CITIZEN: dict[str, str | int] = {"citizen_id": "hashed"}
BY_ID: dict[str, str | int] = {"_id": "hashed"}

SHARD_KEYS: dict[str, dict[str, str | int]] = {
    # Health and account data, by citizen: one citizen's timeline, passports, inbox, devices and
    # sessions are one shard's index range.
    "visits": BY_CITIZEN,
    "immunizations": BY_CITIZEN,
    "sessions": BY_CITIZEN,
    "shares": BY_CITIZEN,
    "certificates": BY_CITIZEN,
    "notifications": BY_CITIZEN,
    "devices": BY_CITIZEN,
    "access_log": BY_CITIZEN,  # one small entry per citizen per access (the citizen's access log)
    # By ``_id``: the citizen (its ``_id`` is the citizen id) and its list index, the audit log
    # (append-only, read by time or actor in admin searches), and the registries, each keyed by
    # what a client presents.
    "citizens": BY_ID,
    "list_index": BY_ID,  # _id = the citizen id
    "audit_events": BY_ID,
    "record_keys": BY_ID,  # _id = facility code + source id -> the record
    "citizen_keys": BY_ID,  # _id = national id (CCCD) -> citizen_id
    "share_keys": BY_ID,  # _id = hash of a share code -> citizen_id, share id
    "certificate_keys": BY_ID,  # _id = UVCI -> citizen_id, certificate id
    # Login origins per account (a staff username or a citizen id): one account's history.
    "login_origins": {"account": "hashed"},
}

# Small reference or admin data, written rarely, read by code paths that are not per-citizen: it
# lives on the database's primary shard. Growth here means a collection belongs in SHARD_KEYS.
UNSHARDED: frozenset[str] = frozenset({
    "facilities",  # the facility register: thousands of rows
    "facility_clients",  # OAuth clients of facility systems: a few per facility
    "staff_users",  # staff accounts: thousands
    "signing_keys",  # the passport signing keys (DSCs): a handful
    "passport_rule_sets",  # business rules for passports: a few versions
    "foreign_signing_keys",  # the EU trust list: a few thousand DSCs
    "dsc_sequence",  # the trust list's resume order: one row per DSC
    "dcc_counters",  # counters of the gateway client: a few rows
    "dcc_gateway_uploads",  # Viet Nam's DSCs uploaded to the EU gateway: a handful
    "dcc_revocation_batches",  # revocation batches uploaded to the gateway: tens per year
    # The revocation list: revoked passports not yet expired (TTL), read whole by every verifier
    # (cached ten seconds) and by the gateway upload: a few thousand rows at most.
    "certificate_revocations",
    "identity_checks",  # per-caller counters of identity checks, expiring (TTL) within a day
    "counters",  # named sequences: the audit events' numbers, one $inc per stored batch
    # Citizens whose list index was built in the last day (TTL): every batch write reads it by
    # time (``at >= since``), which only one shard can answer from one index range.
    "list_index_builds",
    # Rate-limit counters (flask-limiter's and the login guard's): short-lived, per caller, each
    # read by its one key; not health data (a large deployment may move them to Redis).
    "rate_limit_counters",
    "rate_limit_windows",
})


@dataclass(frozen=True)
class ScatterAllowed:
    """A code location (``module:function``) whose queries to ``collection`` may reach every shard."""

    location: str
    collection: str
    reason: str


# Scatter is acceptable where nobody waits on it per request of a citizen: admin searches (few,
# paged, by trained staff), the delivery worker's claim (one query per batch, not per message), a
# scheduled job, a migration command. A location matches when it is any app frame of the query's
# call stack (so an admin search that calls a shared paging helper names the admin search).
SCATTER_ALLOWED: tuple[ScatterAllowed, ...] = (
    ScatterAllowed("app.services.audit:fill_access_log", "audit_events",
                   "a citizen's access log is filled from the audit trail once, on its first read (the entries "
                   "a bulk upload leaves out while the citizen is pending, and events from before entries "
                   "existed): once per citizen in a lifetime, one (citizen_ids, seq) range on each shard"),
    ScatterAllowed("app.services.audit:copy_missing_entries", "audit_events",
                   "the repair command (flask audit entries) after a crash between events and their entries"),
    ScatterAllowed("app.services.audit:number_unnumbered", "audit_events",
                   "the one-time upgrade command (flask audit number)"),
    ScatterAllowed("app.services.audit_log:search", "audit_events",
                   "the admin's audit search (by time, actor, action, outcome or citizen over every event): "
                   "staff only, paged, a few a day; events are spread by _id, so any search is every shard's"),
    ScatterAllowed("app.services.outbox_admin:list_by_status", "notifications",
                   "the admin's outbox list by delivery status: staff only, paged, for oversight"),
    ScatterAllowed("app.services.delivery:claim", "notifications",
                   "the delivery worker's claim: one query per batch for due messages of every citizen "
                   "(and the conditional take of each candidate), in the background, never per request"),
    ScatterAllowed("app.services.delivery:release_claims", "notifications",
                   "the delivery worker hands back its own claims once after a database outage (background)"),
    ScatterAllowed("app.services.delivery:backfill_priority", "notifications",
                   "a one-off migration run when the worker starts: messages queued before priorities existed"),
    ScatterAllowed("app.services.reminders:run_reminders", "citizens",
                   "the scheduled reminder job walks active citizens in _id order, once a day"),
    ScatterAllowed("app.services.registries:build_registries", "citizens",
                   "the migration command `flask data build-registries`: reads every citizen once"),
    ScatterAllowed("app.services.registries:build_registries", "shares",
                   "the migration command `flask data build-registries`: reads every share once"),
    ScatterAllowed("app.services.registries:build_registries", "certificates",
                   "the migration command `flask data build-registries`: reads every certificate once"),
)


def is_sharded(collection: str) -> bool:
    """Whether ``collection`` is declared sharded."""
    return collection in SHARD_KEYS


def is_declared(collection: str) -> bool:
    """Whether ``collection`` is in ``SHARD_KEYS`` or in ``UNSHARDED``."""
    return collection in SHARD_KEYS or collection in UNSHARDED


def _is_operator_document(value: object) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(str(key).startswith("$") for key in value)


def _is_exact(value: object) -> bool:
    """Whether a value matched by equality selects exactly itself (a regex selects a pattern)."""
    return not isinstance(value, re.Pattern | Regex)


def _field_pinned(condition: object) -> bool:
    """Whether the condition on one field is an equality or an ``$in`` of listed values."""
    if not _is_operator_document(condition):
        return _is_exact(condition)  # ``{field: value}``, an embedded document's equality included
    assert isinstance(condition, Mapping)
    if "$eq" in condition and _is_exact(condition["$eq"]):
        return True
    values = condition.get("$in")
    return isinstance(values, list | tuple) and all(_is_exact(value) for value in values)


def _pinned_fields(query: Mapping[str, Any]) -> set[str]:
    """The fields ``query`` pins, at its top level or inside a top-level ``$and`` (nested too)."""
    pinned = {field for field, condition in query.items()
              if not field.startswith("$") and _field_pinned(condition)}
    for clause in query.get("$and", ()):
        if isinstance(clause, Mapping):
            pinned |= _pinned_fields(clause)
    return pinned


def pins_shard_key(collection: str, query: Mapping[str, Any] | None) -> bool:
    """Whether ``query`` names ``collection``'s whole shard key by equality or ``$in`` of values.

    Such a query reaches the shards that hold those key values only. A collection that is not
    sharded lives on one shard: every query to it is pinned. An ``$or`` is not read (mongos may
    target each branch, but the embedded server scans for a top-level ``$or`` anyway).
    """
    if collection not in SHARD_KEYS:
        return True
    return set(SHARD_KEYS[collection]) <= _pinned_fields(query or {})


def _mongosh_key(key: Mapping[str, str | int]) -> str:
    return "{ " + ", ".join(f'{field}: {value!r}'.replace("'", '"') for field, value in key.items()) + " }"


def shard_commands(database: str = "hoso") -> str:
    """The ``mongosh`` commands that shard ``database`` as declared (for the README)."""
    lines = [f'sh.enableSharding("{database}")']
    lines += [f'sh.shardCollection("{database}.{collection}", {_mongosh_key(key)})'
              for collection, key in SHARD_KEYS.items()]
    return "\n".join(lines)
