"""Business rules of countries of arrival: import, replace, publish, and verification with them.

A country's rule set is one document (``PassportRuleSet``), replaced whole by one update, and audited.
Viet Nam's own rules ship as data (``app/data/dcc-rules/VN.json``) and are installed the first time a
rule set is needed when the database has none for VN (an administrator's replacement is never
overwritten: the install only inserts). Rules read from the value sets shipped in
``app/data/dcc-valuesets`` (by their ``valueSetId``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from mongoengine import NotUniqueError

import passport
from app.models.rules import PassportRuleSet
from app.services import audit
from app.services.audit import SYSTEM_ACTOR, RequestContext
from app.services.errors import InvalidInput, NotFound
from app.services.passports import VerifyCache

DATA = Path(__file__).parents[1] / "data"
SHIPPED = DATA / "dcc-rules"
VALUESETS = DATA / "dcc-valuesets"
SHIPPED_COUNTRIES = ("VN",)
CACHE_SECONDS = 10.0
MAX_SET_CHARACTERS = 4_000_000  # well under MongoDB's 16 MiB document limit


class NoRulesForCountry(InvalidInput):
    """No rule set is stored for the country asked for."""

    slug = "no-rules-for-country"


@cache
def value_sets() -> dict[str, list[str]]:
    """The shipped EU value sets as rules read them: ``valueSetId`` -> its codes."""
    sets: dict[str, list[str]] = {}
    for path in sorted(VALUESETS.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        sets[document["valueSetId"]] = sorted(document["valueSetValues"])
    return sets


def _texts(rules: Iterable[passport.Rule]) -> list[str]:
    return [json.dumps(rule.document, ensure_ascii=False, separators=(",", ":")) for rule in rules]


def _parse(document: object) -> passport.RuleSet:
    try:
        return passport.RuleSet.from_json(document)
    except passport.RulesError as error:
        raise InvalidInput({"rules": [str(error)]}) from None


class _AlreadyInstalled(Exception):
    """Another process installed the shipped set first (so this one records nothing)."""


def install_shipped(ctx: RequestContext) -> list[str]:
    """Insert the shipped rule set of each country that has none in the database; returns those installed.

    HoSo itself is the actor (whichever request or command needed the rules first).
    """
    system = replace(ctx, actor=SYSTEM_ACTOR, ip=None)
    installed = []
    for country in SHIPPED_COUNTRIES:
        if PassportRuleSet.objects(country=country).only("country").first() is not None:
            continue
        rules = _parse(json.loads((SHIPPED / f"{country}.json").read_text(encoding="utf-8"))).of_country(country)
        try:
            with audit.recording(system, "passport.rules.install", target_type="rule_set", target_id=country,
                                 access="write", details={"rules": len(rules), "source": "shipped"}):
                try:
                    PassportRuleSet(country=country, rules=_texts(rules), revision=1, updated_at=ctx.now,
                                    updated_by=SYSTEM_ACTOR.label, source="shipped").save(force_insert=True)
                except NotUniqueError:
                    raise _AlreadyInstalled from None
        except _AlreadyInstalled:
            continue
        installed.append(country)
    return installed


def replace_rule_set(ctx: RequestContext, country: str, rules: object, source: str, *,
                     verify_cache: VerifyCache) -> PassportRuleSet:
    """Replace a country's whole rule set (every rule must be that country's), audited; the cached
    rules are dropped from ``verify_cache``.

    :raises InvalidInput: when a rule is not in the gateway's format or belongs to another country
    """
    if not passport.rules.COUNTRY.match(country):
        raise NotFound("Rule sets are named by a two-letter country code.")
    parsed = _parse(rules)
    others = sorted({rule.country for rule in parsed.rules} - {country})
    if others:
        raise InvalidInput({"rules": [f"every rule must be {country}'s; found rules of {', '.join(others)}"]})
    if len(parsed.rules) > passport.rules.MAX_RULES:
        raise InvalidInput({"rules": [f"at most {passport.rules.MAX_RULES} rules per country"]})
    texts = _texts(parsed.rules)
    if sum(len(text) for text in texts) > MAX_SET_CHARACTERS:
        raise InvalidInput({"rules": ["the rule set is too large"]})
    identifiers = sorted({rule.identifier for rule in parsed.rules})
    with audit.recording(ctx, "passport.rules.replace", target_type="rule_set", target_id=country,
                         access="write", details={"rules": len(texts), "identifiers": identifiers[:50],
                                                  "source": source}):
        PassportRuleSet.objects(country=country).update_one(
            upsert=True, set__rules=texts, inc__revision=1, set__updated_at=ctx.now,
            set__updated_by=ctx.actor.label, set__source=source)
    verify_cache.pop("rules", None)
    stored = PassportRuleSet.objects(country=country).first()
    assert stored is not None
    return stored


def import_rules(ctx: RequestContext, document: object, source: str = "cli", *,
                 verify_cache: VerifyCache) -> dict[str, int]:
    """Import rules of one or more countries (gateway format): each country's set is replaced by the
    file's rules of that country. Returns the number of rules per country."""
    parsed = _parse(document)
    if not parsed.rules:
        raise InvalidInput({"rules": ["the document holds no rules"]})
    counts = {}
    for country in parsed.countries:
        rules = parsed.of_country(country)
        replace_rule_set(ctx, country, [rule.document for rule in rules], source, verify_cache=verify_cache)
        counts[country] = len(rules)
    return counts


def get_rule_set(ctx: RequestContext, country: str) -> PassportRuleSet:
    """One country's stored rule set (404 when there is none)."""
    install_shipped(ctx)
    stored = PassportRuleSet.objects(country=country).first()
    if stored is None:
        raise NotFound(f"No business rules are stored for {country}.")
    return stored


def stored_rules(ctx: RequestContext, *,
                 verify_cache: VerifyCache) -> tuple[passport.RuleSet, dict[str, PassportRuleSet]]:
    """Every stored rule set (cached in ``verify_cache`` for ten seconds; a replacement clears this app's copy)."""
    cached = verify_cache.get("rules")
    if cached is None or cached[0] < time.monotonic():
        install_shipped(ctx)
        documents = {stored.country: stored for stored in PassportRuleSet.objects.order_by("country")}
        rules = [passport.Rule.from_json(json.loads(text)) for stored in documents.values() for text in stored.rules]
        cached = (time.monotonic() + CACHE_SECONDS, passport.RuleSet(rules, value_sets()), documents)
        verify_cache["rules"] = cached
    return cached[1], cached[2]


def rule_set_json(stored: PassportRuleSet) -> dict[str, Any]:
    """A stored set as its rules in the gateway's format, with when and by whom it was last replaced."""
    return {"country": stored.country, "rules": [json.loads(text) for text in stored.rules],
            "revision": stored.revision, "updated_at": stored.updated_at, "source": stored.source}


def public_document(ctx: RequestContext, country: str | None = None, *, verify_cache: VerifyCache) -> dict[str, Any]:
    """What verifiers download: every country's rules (or one country's) and the value sets they name."""
    _rules, documents = stored_rules(ctx, verify_cache=verify_cache)
    if country is not None and country not in documents:
        raise NotFound(f"No business rules are stored for {country}.")
    chosen = [documents[country]] if country is not None else list(documents.values())
    return {"countries": {stored.country: {"rules": [json.loads(text) for text in stored.rules],
                                           "revision": stored.revision, "updated_at": stored.updated_at}
                          for stored in chosen},
            "valueSets": value_sets()}


def verify_with_rules(ctx: RequestContext, result: passport.VerificationResult, country: str,
                      clock: datetime, *, verify_cache: VerifyCache) -> dict[str, Any]:
    """The verify answer: authenticity, each of ``country``'s rules, and ``valid`` (both).

    :raises NoRulesForCountry: when no rule set is stored for ``country``
    """
    rules, documents = stored_rules(ctx, verify_cache=verify_cache)
    if country not in documents:
        raise NoRulesForCountry({"country": [f"No business rules are stored for {country}; "
                                             f"known: {', '.join(documents) or 'none'}."]})
    answer = passport.verdict_json(result, passport.check_rules(result, rules, country, clock), country)
    # The clock the checks and rules used: a verdict for another moment than now says so.
    answer["validation_clock"] = clock
    return answer
