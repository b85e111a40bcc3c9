"""The declared shard keys: every model's collection is declared, unique indexes fit the cluster,
``pins_shard_key`` says what a sharded cluster would route to one shard, the allow-list is reasoned."""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import UTC, datetime
from pathlib import Path

import mongoengine
import pytest
from bson import ObjectId
from bson.regex import Regex
from hypothesis import given
from hypothesis import strategies as st
from mongoengine.base.common import _document_registry

import app
from app.infra import shard_keys
from app.infra.shard_keys import SCATTER_ALLOWED, SHARD_KEYS, UNSHARDED, pins_shard_key, shard_commands

# Hot paths reach one shard through a registry or because the citizen is in the filter: no entry
# of SCATTER_ALLOWED may name a function of these modules.
HOT_PATH_MODULES = (
    "app.web.auth", "app.security", "app.services.sessions", "app.services.citizens",
    "app.services.timeline", "app.services.shares", "app.services.ingest", "app.services.passports",
    "app.services.inbox", "app.services.access_log", "app.services.profile", "app.services.reauth",
    "app.services.mfa", "app.resources.me", "app.resources.auth", "app.resources.shared",
    "app.resources.verifier", "app.resources.facility", "app.resources.passport",
)


def _models() -> list[type[mongoengine.Document]]:
    """Every mongoengine document class of the app (every app module imported first)."""
    for module in pkgutil.walk_packages(app.__path__, "app."):
        importlib.import_module(module.name)
    return [model for _, model in sorted(_document_registry.items())
            if issubclass(model, mongoengine.Document) and not model._meta.get("abstract")]


MODELS = _models()


def test_the_tables_are_disjoint_and_well_formed():
    assert not set(SHARD_KEYS) & UNSHARDED
    for collection, key in SHARD_KEYS.items():
        assert key, collection
        assert all(value in (1, "hashed") for value in key.values()), collection


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_model_collection_is_declared(model):
    collection = model._get_collection_name()
    assert collection in SHARD_KEYS or collection in UNSHARDED, (
        f"{model.__name__} stores {collection!r}: declare it in app/infra/shard_keys.py "
        "(SHARD_KEYS with its key, or UNSHARDED with the reason)")


@pytest.mark.parametrize("model", [model for model in MODELS if model._get_collection_name() in SHARD_KEYS],
                         ids=lambda model: model.__name__)
def test_unique_indexes_of_a_sharded_collection_start_with_its_shard_key(model):
    """MongoDB refuses a unique index that does not start with the shard key's fields."""
    collection = model._get_collection_name()
    key = list(SHARD_KEYS[collection])
    offenders = [
        [name for name, _ in spec["fields"]]
        for spec in model._meta["index_specs"]
        if spec.get("unique") and [name for name, _ in spec["fields"]][:len(key)] != key
    ]
    assert offenders == [], (
        f"{model.__name__} ({collection}, sharded by {key}) declares unique indexes {offenders}: keep that "
        "uniqueness in a registry keyed by the value (its _id), or start the index with the shard key")


def test_models_of_the_new_collections_are_declared_before_they_exist():
    """The registries and per-citizen collections other changes add have their keys already."""
    for collection in ("access_log", "list_index", "citizen_keys", "share_keys", "certificate_keys"):
        assert collection in SHARD_KEYS


@pytest.mark.parametrize("query", [
    {"citizen_id": ObjectId()},
    {"citizen_id": ObjectId(), "started_at": {"$lte": datetime(2026, 1, 1, tzinfo=UTC)}},
    {"citizen_id": {"$eq": ObjectId()}},
    {"citizen_id": {"$in": [ObjectId(), ObjectId()]}},
    {"citizen_id": {"$in": []}},  # matches nothing: no shard at all
    {"$and": [{"citizen_id": ObjectId()}, {"status": "active"}]},
    {"$and": [{"$and": [{"citizen_id": ObjectId()}]}], "status": "active"},
    {"citizen_id": None},  # an equality on null is routed like any value
])
def test_filters_that_pin_the_citizen(query):
    assert pins_shard_key("visits", query)


@pytest.mark.parametrize("query", [
    {},
    None,
    {"_id": ObjectId()},
    {"_id": ObjectId(), "version": 3},
    {"citizen_id": {"$gte": ObjectId()}},
    {"citizen_id": {"$ne": ObjectId()}},
    {"citizen_id": {"$nin": [ObjectId()]}},
    {"citizen_id": {"$exists": True}},
    {"citizen_id": re.compile("^6")},
    {"citizen_id": Regex("^6")},
    {"citizen_id": {"$in": [ObjectId(), re.compile("x")]}},
    {"$or": [{"citizen_id": ObjectId()}, {"citizen_id": ObjectId()}]},
    {"$nor": [{"citizen_id": ObjectId()}]},
    {"code_hash": "abc"},
    {"spent_hashes": "abc"},
])
def test_filters_that_scatter(query):
    assert not pins_shard_key("visits", query)


def test_an_id_keyed_registry_is_pinned_by_its_id():
    assert pins_shard_key("citizen_keys", {"_id": "001234567890"})
    assert pins_shard_key("citizens", {"_id": {"$in": [ObjectId()]}, "records_version": 2})
    assert not pins_shard_key("citizens", {"national_id": "001234567890"})
    assert pins_shard_key("login_origins", {"account": "staff:admin", "seen_at": {"$gte": 1}})
    assert not pins_shard_key("login_origins", {"expires_at": {"$lt": 1}})


def test_an_unsharded_collection_is_always_on_one_shard():
    assert pins_shard_key("facilities", {"name": re.compile("Bach Mai")})
    assert pins_shard_key("staff_users", {})


def test_a_compound_key_needs_every_field(monkeypatch):
    monkeypatch.setitem(SHARD_KEYS, "pairs", {"a": 1, "b": 1})
    assert pins_shard_key("pairs", {"a": 1, "b": {"$in": [2, 3]}})
    assert pins_shard_key("pairs", {"a": 1, "$and": [{"b": 2}]})
    assert not pins_shard_key("pairs", {"a": 1, "b": {"$gt": 2}})
    assert not pins_shard_key("pairs", {"a": 1})


scalars = st.one_of(st.integers(), st.text(max_size=8), st.booleans(), st.none(),
                    st.builds(ObjectId), st.datetimes(timezones=st.just(UTC)))
others = st.dictionaries(st.sampled_from(["status", "t", "version", "kind"]), scalars, max_size=3)
pinning = st.one_of(scalars, scalars.map(lambda value: {"$eq": value}),
                    st.lists(scalars, max_size=4).map(lambda values: {"$in": values}))
ranges = st.one_of(
    st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$ne"]), scalars, min_size=1, max_size=2),
    st.lists(scalars, max_size=3).map(lambda values: {"$nin": values}),
    st.just({"$exists": True}), st.sampled_from(["", "^6", "a.*b"]).map(re.compile),
)


@given(others, pinning, st.booleans())
def test_an_equality_or_in_on_the_key_pins_whatever_else_the_filter_says(rest, condition, inside_and):
    query = {**rest, "$and": [{"citizen_id": condition}]} if inside_and else {**rest, "citizen_id": condition}
    assert pins_shard_key("sessions", query)


@given(others, st.one_of(st.none(), ranges), st.booleans())
def test_no_equality_on_the_key_scatters(rest, condition, inside_or):
    query = dict(rest)
    if condition is not None:
        query["$or" if inside_or else "citizen_id"] = [{"citizen_id": condition}] if inside_or else condition
    assert not pins_shard_key("sessions", query)
    assert pins_shard_key("facilities", query)  # unsharded: one shard anyway


def test_shard_commands_render_every_sharded_collection():
    commands = shard_commands("hoso").splitlines()
    assert commands[0] == 'sh.enableSharding("hoso")'
    assert 'sh.shardCollection("hoso.visits", { citizen_id: "hashed" })' in commands
    assert 'sh.shardCollection("hoso.citizen_keys", { _id: "hashed" })' in commands
    assert 'sh.shardCollection("hoso.login_origins", { account: "hashed" })' in commands
    assert len(commands) == 1 + len(SHARD_KEYS)


def _resolves(location: str) -> bool:
    module_name, _, qualname = location.partition(":")
    target: object = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return callable(target)


def test_every_allowed_scatter_is_reasoned_and_off_the_hot_paths():
    problems = [
        f"{entry.location} ({entry.collection}): {problem}"
        for entry in SCATTER_ALLOWED
        for problem, found in [
            ("not a sharded collection", not shard_keys.is_sharded(entry.collection)),
            ("no function of the app", not _resolves(entry.location)),
            ("a hot path", entry.location.startswith(HOT_PATH_MODULES)),
            ("say why scatter is acceptable there", len(entry.reason.split()) < 4),
        ] if found
    ]
    assert problems == []


def test_the_allow_list_check_knows_functions_and_hot_paths():
    assert _resolves("app.services.sessions:refresh")
    assert _resolves("app.web.ratelimiting:SharedClientMongoDBStorage.incr")
    assert not _resolves("app.services.sessions:no_such_function")
    assert "app.services.sessions:refresh".startswith(HOT_PATH_MODULES)


def test_the_allow_list_stays_short():
    assert len(SCATTER_ALLOWED) <= 12
    assert len({(entry.location, entry.collection) for entry in SCATTER_ALLOWED}) == len(SCATTER_ALLOWED)


def test_the_readme_shows_the_commands_the_table_implies() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    assert shard_commands("hoso") in readme
