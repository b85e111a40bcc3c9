"""Business rules in the EU DCC gateway's format: CertLogic rules a country of arrival applies.

A rule is the gateway's validation-rule JSON (``Identifier``, ``Type``, ``Country``, ``Version``,
``SchemaVersion``, ``Engine``, ``EngineVersion``, ``CertificateType``, ``Description``, ``ValidFrom``,
``ValidTo``, ``AffectedFields``, ``Logic``). Verifier apps evaluate ``Logic`` on
``{"payload": <DCC payload>, "external": {...}}`` and show each rule as passed, failed or open;
this module does the same, in the same order as the verifier page (``web/verifier/src/lib/rules.js``):

1. the rules that apply: the arrival country's ``Acceptance`` rules and the issuing country's
   ``Invalidation`` rules, of ``CertificateType`` ``General`` or the certificate's type, valid at the
   clock (``ValidFrom <= clock < ValidTo``), the highest ``Version`` of each ``Identifier``;
2. a rule whose engine is not CertLogic 0.x/1.x, or whose ``SchemaVersion`` has another major version
   than the payload's ``ver``, is ``open``;
3. ``Logic`` evaluating to ``true`` is ``passed``, to ``false`` is ``failed``; anything else, or an
   error, is ``open``.

CertLogic is evaluated by ``panzi-json-logic`` (``json_logic.cert_logic``). That library implements
the CertLogic operations but is as lenient as JsonLogic about operand types, predates CertLogic 1.3
(no ``dccDateOfBirth``, no partial dates in ``plusTime``) and compares with Python's ``==``. Through
its operations hook (the library's own extension point) the operations here check their operands as
the specification (1.3.2) and certlogic-js require, and the two 1.3 additions are supplied; evaluation
itself stays the library's. ``tests/web/test_rules_agreement.py`` runs certlogic-js on the same rules
and data and compares every verdict.
"""

from __future__ import annotations

import json
import re
from calendar import monthrange
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from json_logic.cert_logic import certLogic  # type: ignore[import-untyped]
from json_logic.cert_logic.builtins import BUILTINS  # type: ignore[import-untyped]
from json_logic.cert_logic.builtins import op_plus_time as _library_plus_time

from .errors import RulesError
from .verify import VerificationResult

__all__ = [
    "CERTIFICATE_TYPES",
    "ENGINE",
    "RULE_TYPES",
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "check_rules",
    "evaluate_logic",
    "evaluate_rules",
    "external_data",
    "select_rules",
    "verdict_json",
]

Result = Literal["passed", "failed", "open"]
ENGINE = "CERTLOGIC"
SUPPORTED_ENGINE_MAJOR = 1
RULE_TYPES = ("Acceptance", "Invalidation")
CERTIFICATE_TYPES = ("General", "Test", "Vaccination", "Recovery")
_PREFIX_OF_TYPE = {"General": "GR", "Test": "TR", "Vaccination": "VR", "Recovery": "RR"}
_KINDS = {"vaccination": "Vaccination", "test": "Test", "recovery": "Recovery"}
IDENTIFIER = re.compile(r"^(GR|VR|TR|RR|IR)-([A-Z]{2})-\d{4}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
SEMVER = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
LANGUAGE = re.compile(r"^[a-z]{2}(-[A-Za-z0-9]{1,8})?$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
MAX_DEPTH = 64
MAX_RULE_BYTES = 64 * 1024
MAX_RULES = 500
MAX_TEXT = 2000
OPERATIONS = frozenset({"var", "if", "===", "and", "<", ">", "<=", ">=", "in", "+", "after", "before",
                        "not-after", "not-before", "!", "plusTime", "reduce", "extractFromUVCI",
                        "dccDateOfBirth"})
TIME_UNITS = ("year", "month", "day", "hour")


# ------------------------------------------------------------------------------ evaluation


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(name: str, values: tuple[Any, ...]) -> None:
    if len(values) not in (2, 3) or not all(_is_int(value) for value in values):
        raise TypeError(f"the operands of {name!r} must be 2 or 3 integers")


def _dates(name: str, values: tuple[Any, ...]) -> None:
    if len(values) not in (2, 3) or not all(isinstance(value, datetime) for value in values):
        raise TypeError(f"the operands of {name!r} must be 2 or 3 date-times (from plusTime)")


def _strict(name: str, check: Callable[[str, tuple[Any, ...]], None]) -> Callable[..., Any]:
    library = BUILTINS[name]

    def operation(data: Any, *values: Any) -> Any:
        check(name, values)
        return library(data, *values)

    return operation


def _round_up_partial(text: str) -> datetime | None:
    """A DCC partial date (``YYYY`` or ``YYYY-MM``) as midnight UTC of its last day (CertLogic 1.3)."""
    if re.fullmatch(r"\d{4}", text):
        return datetime(int(text), 12, 31, tzinfo=UTC)
    if re.fullmatch(r"\d{4}-\d{2}", text):
        year, month = int(text[:4]), int(text[5:])
        return datetime(year, month, monthrange(year, month)[1], tzinfo=UTC)
    return None


def _plus_time(data: Any, when: Any = None, amount: Any = None, unit: Any = None, *_: Any) -> Any:
    if not isinstance(when, str):
        raise TypeError("the date argument of 'plusTime' must be a string")
    if not _is_int(amount):
        raise TypeError("the amount of 'plusTime' must be an integer")
    if unit not in TIME_UNITS:
        raise TypeError(f"the unit of 'plusTime' must be one of {', '.join(TIME_UNITS)}")
    partial = _round_up_partial(when)
    return _library_plus_time(data, partial if partial is not None else when, amount, unit)


def _date_of_birth(data: Any, value: Any = None, *_: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("the operand of 'dccDateOfBirth' must be a string")
    partial = _round_up_partial(value)
    if partial is not None:
        return partial
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"{value[:20]!r} is not a DCC date of birth")
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _in(data: Any, needle: Any = None, haystack: Any = None, *_: Any) -> bool:
    if not isinstance(haystack, list):
        raise TypeError("the right-hand side of 'in' must be an array")
    return any(_same(needle, item) for item in haystack)


def _same(a: Any, b: Any) -> bool:
    """JavaScript's ``===`` on JSON values: no ``1 == True``, arrays and objects only by identity."""
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return a is b
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _plus(data: Any, a: Any = None, b: Any = None, *rest: Any) -> int:
    if rest or not (_is_int(a) and _is_int(b)):
        raise TypeError("the operands of '+' must be two integers")
    return int(a) + int(b)


def _not(data: Any, value: Any = None, *_: Any) -> bool:
    truth = _boolsiness(value)
    if truth is None:
        raise TypeError("the operand of '!' is neither truthy nor falsy")
    return not truth


def _boolsiness(value: Any) -> bool | None:
    """CertLogic's truthy (True) and falsy (False); ``None`` for values that are neither (a date-time)."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, (str, list, dict)):
        return bool(value)
    if _is_int(value):
        return bool(value != 0)
    return None


OPERATION_TABLE: dict[str, Any] = {
    **BUILTINS,
    "===": lambda data, a=None, b=None, *_: _same(a, b),
    "<": _strict("<", _ints),
    ">": _strict(">", _ints),
    "<=": _strict("<=", _ints),
    ">=": _strict(">=", _ints),
    "after": _strict("after", _dates),
    "before": _strict("before", _dates),
    "not-after": _strict("not-after", _dates),
    "not-before": _strict("not-before", _dates),
    "in": _in,
    "+": _plus,
    "!": _not,
    "plusTime": _plus_time,
    "dccDateOfBirth": _date_of_birth,
}


def evaluate_logic(logic: Any, data: Any) -> Any:
    """Evaluate a CertLogic expression on ``data`` with panzi-json-logic (operands checked as CertLogic does).

    :raises Exception: whatever the evaluation raises (callers turn it into an ``open`` result)
    """
    return certLogic(logic, data, OPERATION_TABLE)


# ------------------------------------------------------------------------------ rules


def _semver(text: str) -> tuple[int, int, int]:
    match = SEMVER.match(text)
    if not match:
        raise ValueError(text)
    return int(match[1]), int(match[2]), int(match[3])


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(UTC)


def _check_logic(value: Any, depth: int = 0) -> None:
    """A CertLogic expression's structure: literals, arrays, one-key operation objects of known operators."""
    if depth > MAX_DEPTH:
        raise RulesError(f"Logic is nested more than {MAX_DEPTH} deep")
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise RulesError("Logic holds a string longer than 2000 characters")
        return
    if isinstance(value, bool) or _is_int(value):
        if _is_int(value) and abs(value) > 2**53:
            raise RulesError("Logic holds an integer beyond what JavaScript represents exactly")
        return
    if isinstance(value, list):
        for item in value:
            _check_logic(item, depth + 1)
        return
    if isinstance(value, dict):
        if len(value) != 1:
            raise RulesError("a CertLogic operation is an object with exactly one key")
        (operator, operands), = value.items()
        if operator not in OPERATIONS:
            raise RulesError(f"unknown CertLogic operation {str(operator)[:40]!r}")
        if operator == "var":
            if not isinstance(operands, str) or len(operands) > 200:
                raise RulesError("'var' takes a path string")
            return
        if not isinstance(operands, list) or not operands:
            raise RulesError(f"the operands of {operator!r} must be a non-empty array")
        _check_logic(operands, depth + 1)
        return
    raise RulesError(f"Logic holds a value CertLogic has no literal for ({type(value).__name__})")


class Rule(NamedTuple):
    """One business rule, as the gateway's validation-rule JSON defines it (``document`` is that JSON)."""

    identifier: str
    type: str
    country: str
    version: str
    schema_version: str
    engine: str
    engine_version: str
    certificate_type: str
    descriptions: dict[str, str]
    valid_from: datetime
    valid_to: datetime
    affected_fields: tuple[str, ...]
    logic: Any
    document: dict[str, Any]

    @classmethod
    def from_json(cls, document: object) -> Rule:
        """Check a rule in the gateway's format.

        :raises RulesError: naming what is wrong
        """
        if not isinstance(document, dict):
            raise RulesError("a rule is a JSON object")
        where = str(document.get("Identifier"))[:20]
        try:
            return cls._parse(document)
        except RulesError as error:
            raise RulesError(f"rule {where}: {error}") from None

    @classmethod
    def _parse(cls, document: dict[str, Any]) -> Rule:
        required = ("Identifier", "Type", "Country", "Version", "SchemaVersion", "Engine", "EngineVersion",
                    "CertificateType", "Description", "ValidFrom", "ValidTo", "AffectedFields", "Logic")
        missing = [name for name in required if name not in document]
        if missing:
            raise RulesError(f"missing {', '.join(missing)}")
        unknown = sorted(set(document) - set(required))
        if unknown:
            raise RulesError(f"unknown field {str(unknown[0])[:40]}")
        text = {name: document[name] for name in required if name not in ("Description", "AffectedFields", "Logic")}
        for name, value in text.items():
            if not isinstance(value, str) or len(value) > 100:
                raise RulesError(f"{name} must be a string of at most 100 characters")
        identifier, rule_type, country = text["Identifier"], text["Type"], text["Country"]
        match = IDENTIFIER.match(identifier)
        if not match:
            raise RulesError("Identifier must look like VR-VN-0001 (GR, VR, TR, RR or IR)")
        if not COUNTRY.match(country) or match[2] != country:
            raise RulesError("Country must be the two capital letters in the Identifier")
        if rule_type not in RULE_TYPES:
            raise RulesError("Type must be Acceptance or Invalidation")
        certificate_type = text["CertificateType"]
        if certificate_type not in CERTIFICATE_TYPES:
            raise RulesError("CertificateType must be General, Test, Vaccination or Recovery")
        expected = "IR" if rule_type == "Invalidation" else _PREFIX_OF_TYPE[certificate_type]
        if match[1] != expected:
            raise RulesError(f"a {rule_type} rule for {certificate_type} certificates is named {expected}-..")
        for name in ("Version", "SchemaVersion", "EngineVersion"):
            if not SEMVER.match(text[name]):
                raise RulesError(f"{name} must be a semantic version such as 1.0.0")
        for name in ("ValidFrom", "ValidTo"):
            if not DATE_TIME.match(text[name]):
                raise RulesError(f"{name} must be an ISO 8601 date-time with a time zone")
        try:
            valid_from, valid_to = _instant(text["ValidFrom"]), _instant(text["ValidTo"])
        except (ValueError, OverflowError):  # OverflowError: a zone that moves it past year 1 or 9999
            raise RulesError("ValidFrom and ValidTo must be real date-times") from None
        if valid_to <= valid_from:
            raise RulesError("ValidTo must be after ValidFrom")
        descriptions: dict[str, str] = {}
        entries = document["Description"]
        if not isinstance(entries, list) or not 1 <= len(entries) <= 30:
            raise RulesError("Description must be a list of 1 to 30 {lang, desc} objects")
        for entry in entries:
            if not (isinstance(entry, dict) and set(entry) == {"lang", "desc"}
                    and isinstance(entry["lang"], str) and LANGUAGE.match(entry["lang"])
                    and isinstance(entry["desc"], str) and 0 < len(entry["desc"]) <= MAX_TEXT):
                raise RulesError("each Description is {lang: a language code, desc: 1 to 2000 characters}")
            descriptions.setdefault(entry["lang"], entry["desc"])
        if "en" not in descriptions:
            raise RulesError("Description must include English (lang en)")
        fields = document["AffectedFields"]
        if not isinstance(fields, list) or len(fields) > 50 or not all(
                isinstance(field, str) and 0 < len(field) <= 100 for field in fields):
            raise RulesError("AffectedFields must be a list of at most 50 field names")
        _check_logic(document["Logic"])
        if len(json.dumps(document, ensure_ascii=False)) > MAX_RULE_BYTES:
            raise RulesError("a rule may be at most 64 KiB of JSON")
        return cls(identifier, rule_type, country, text["Version"], text["SchemaVersion"], text["Engine"],
                   text["EngineVersion"], certificate_type, descriptions, valid_from, valid_to,
                   tuple(fields), document["Logic"], document)

    def description(self, language: str) -> str:
        """The description in ``language``, else in English (every rule has English)."""
        return self.descriptions.get(language) or self.descriptions["en"]

    @property
    def version_key(self) -> tuple[int, int, int]:
        return _semver(self.version)


class RuleSet:
    """Business rules of one or more countries, and the value sets they name (id -> list of codes)."""

    def __init__(self, rules: Iterable[Rule], value_sets: Mapping[str, list[str]] | None = None) -> None:
        self.rules = tuple(sorted(rules, key=lambda rule: (rule.country, rule.identifier, rule.version_key)))
        self.value_sets: dict[str, list[str]] = dict(value_sets or {})

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(sorted({rule.country for rule in self.rules}))

    def of_country(self, country: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.country == country)

    @classmethod
    def from_json(cls, document: object, value_sets: Mapping[str, list[str]] | None = None) -> RuleSet:
        """Rules from JSON: one rule, a list of rules, or ``{"rules": [...], "valueSets": {...}}``; also
        the document of ``GET /passport/rules`` (``{"countries": {"VN": {"rules": [...]}}, "valueSets"}``).

        ``value_sets`` are used where the document brings none of that id.

        :raises RulesError: on anything that is not rules in the gateway's format
        """
        sets = dict(value_sets or {})
        raw: list[object]
        if isinstance(document, list):
            raw = list(document)
        elif isinstance(document, dict) and "Identifier" in document:
            raw = [document]
        elif isinstance(document, dict) and ("rules" in document or "countries" in document):
            unknown = set(document) - {"rules", "countries", "valueSets"}
            if unknown:
                raise RulesError(f"unknown field {sorted(unknown)[0][:40]}")
            raw = []
            if "rules" in document:
                if not isinstance(document["rules"], list):
                    raise RulesError("'rules' must be a list of rules")
                raw += document["rules"]
            countries = document.get("countries", {})
            if not isinstance(countries, dict) or not all(
                    isinstance(entry, dict) and isinstance(entry.get("rules"), list) for entry in countries.values()):
                raise RulesError("'countries' maps a country code to {\"rules\": [...]}")
            for entry in countries.values():
                raw += entry["rules"]
            sets.update(_value_sets(document.get("valueSets", {})))
        else:
            raise RulesError("expected a rule, a list of rules, or {\"rules\": [...], \"valueSets\": {...}}")
        if len(raw) > MAX_RULES * 20:
            raise RulesError("too many rules in one document")
        rules = [Rule.from_json(item) for item in raw]
        seen: set[tuple[str, str]] = set()
        for rule in rules:
            if (rule.identifier, rule.version) in seen:
                raise RulesError(f"rule {rule.identifier} version {rule.version} appears twice")
            seen.add((rule.identifier, rule.version))
        return cls(rules, sets)


def _value_sets(document: object) -> dict[str, list[str]]:
    if not isinstance(document, dict) or not all(
            isinstance(key, str) and isinstance(codes, list) and all(isinstance(code, str) for code in codes)
            for key, codes in document.items()):
        raise RulesError("'valueSets' maps a value set id to a list of codes")
    return {key: list(codes) for key, codes in document.items()}


class RuleOutcome(NamedTuple):
    """One rule's verdict: ``passed``, ``failed`` or ``open`` (could not be decided), with why when open."""

    rule: Rule
    result: Result
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.rule.identifier, "version": self.rule.version, "country": self.rule.country,
                "type": self.rule.type, "certificate_type": self.rule.certificate_type, "result": self.result,
                "description": {"vi": self.rule.description("vi"), "en": self.rule.description("en")},
                "affected_fields": list(self.rule.affected_fields), "reason": self.reason}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def external_data(clock: datetime, country: str, value_sets: Mapping[str, list[str]], *,
                  issued: datetime | None, expires: datetime | None, issuer_country: str | None,
                  kid: str | None) -> dict[str, Any]:
    """The ``external`` object rules read, as verifier apps give it (``validationClock``, ``valueSets``,
    ``countryCode``, ``exp``, ``iat``, ``issuerCountryCode``, ``kid``); times are UTC, to the second."""
    return {"validationClock": _iso(clock), "valueSets": dict(value_sets), "countryCode": country,
            "exp": _iso(expires) if expires else None, "iat": _iso(issued) if issued else None,
            "issuerCountryCode": issuer_country, "kid": kid}


def select_rules(rules: Iterable[Rule], country: str, issuer_country: str | None, kind: str | None,
                 clock: datetime) -> list[Rule]:
    """The rules that apply, in identifier order: the arrival country's Acceptance rules and the issuing
    country's Invalidation rules, for General or the certificate's type, valid at ``clock``, the highest
    version of each identifier."""
    types = {"General", _KINDS[kind]} if kind in _KINDS else {"General"}
    chosen: dict[str, Rule] = {}
    for rule in rules:
        if not ((rule.type == "Acceptance" and rule.country == country)
                or (rule.type == "Invalidation" and issuer_country is not None and rule.country == issuer_country)):
            continue
        if rule.certificate_type not in types or not rule.valid_from <= clock < rule.valid_to:
            continue
        best = chosen.get(rule.identifier)
        if best is None or rule.version_key > best.version_key:
            chosen[rule.identifier] = rule
    return [chosen[identifier] for identifier in sorted(chosen)]


def _describe(value: Any) -> str:
    if isinstance(value, datetime):
        return "a date-time"
    return json.dumps(value, default=str)[:60]


def evaluate_rules(rules: Iterable[Rule], payload: Mapping[str, Any], external: Mapping[str, Any]) -> list[RuleOutcome]:
    """Evaluate each rule on ``{"payload", "external"}``; never raises.

    :param rules: the rules to evaluate (see :func:`select_rules`)
    :param payload: the DCC payload as JSON data
    :param external: see :func:`external_data`
    """
    data = {"payload": payload, "external": dict(external)}
    version = payload.get("ver")
    try:
        payload_major: int | None = _semver(version)[0] if isinstance(version, str) else None
    except ValueError:
        payload_major = None
    outcomes = []
    for rule in rules:
        if rule.engine != ENGINE or _semver(rule.engine_version)[0] > SUPPORTED_ENGINE_MAJOR:
            outcomes.append(RuleOutcome(rule, "open", f"needs engine {rule.engine} {rule.engine_version}"))
            continue
        if payload_major is None or payload_major != _semver(rule.schema_version)[0]:
            outcomes.append(RuleOutcome(rule, "open", f"written for schema {rule.schema_version}, "
                                                      f"the certificate has {str(version)[:12]}"))
            continue
        try:
            value = evaluate_logic(rule.logic, data)
        except Exception as error:  # a rule that cannot be evaluated on this certificate is open
            outcomes.append(RuleOutcome(rule, "open", f"could not be evaluated ({type(error).__name__})"))
            continue
        if value is True:
            outcomes.append(RuleOutcome(rule, "passed", None))
        elif value is False:
            outcomes.append(RuleOutcome(rule, "failed", None))
        else:
            outcomes.append(RuleOutcome(rule, "open", f"evaluated to {_describe(value)}, not true or false"))
    return outcomes


def check_rules(result: VerificationResult, rule_set: RuleSet, country: str, clock: datetime) -> list[RuleOutcome]:
    """The rules of ``country`` that apply to a verified certificate, each evaluated at ``clock``.

    Nothing is evaluated when the payload could not be decoded (an empty list).
    """
    payload = result.payload_json()
    summary = result.certificate
    if payload is None or summary is None:
        return []
    selected = select_rules(rule_set.rules, country, summary.iss, summary.type, clock)
    external = external_data(clock, country, rule_set.value_sets, issued=summary.iat, expires=summary.exp,
                             issuer_country=summary.iss, kid=summary.to_json()["kid"])
    return evaluate_rules(selected, payload, external)


def verdict_json(result: VerificationResult, outcomes: Iterable[RuleOutcome], country: str) -> dict[str, Any]:
    """The answer of a verification with rules: ``authentic`` (every check of :func:`passport.verify`),
    ``rules`` (each rule's verdict), ``valid`` (authentic and every rule passed), ``country``, and the
    fields of :meth:`VerificationResult.to_json`; ``reasons`` adds one line per rule not passed."""
    outcomes = list(outcomes)
    document = result.to_json()
    document["reasons"] = document["reasons"] + [
        f"rule {outcome.rule.identifier}: {outcome.result}: {outcome.rule.description('en')}"
        for outcome in outcomes if outcome.result != "passed"]
    document["authentic"] = result.valid
    document["valid"] = result.valid and all(outcome.result == "passed" for outcome in outcomes)
    document["country"] = country
    document["rules"] = [outcome.to_json() for outcome in outcomes]
    return document
