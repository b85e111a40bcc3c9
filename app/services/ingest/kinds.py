"""The record kinds facilities push: one entry each, read by every channel, route and export.

Adding a kind is one :class:`RecordKind` entry in ``KINDS`` plus its push schema
(``app.schemas.records``), its model (``app.models.records``), its FHIR builder
(``app.services.fhir_resources``) and its presenter (``app.resources.me.present``). The three
ingestion channels (PUT, NDJSON, XML 130), the facility routes, the FHIR export and index
creation all iterate this table; a kind not in it is an error, never another kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

import marshmallow as ma
import mongoengine as me

from app.models.records import VOIDED, Immunization, Visit
from app.schemas.records import ImmunizationPushSchema, VisitPushSchema
from app.services.fhir_resources import immunization_resources, visit_resources

IDENTITY_FIELDS = ("national_id", "full_name", "date_of_birth", "sex")


def _no_stamp(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class RecordKind:
    """What HoSo knows about one kind of record.

    ``content_fields``: the optional content fields a replacement push removes when it leaves
    them out (PUT replaces). ``stored_fields``: validated push data (identity fields removed) ->
    the stored fields. ``stamped``: fields set on every write from the write's time (e.g. when a
    facility's reactions were recorded). ``created_fields``: fields only a new record gets.
    ``time_field``: the clinical time that orders the timeline and the export.
    """

    name: str
    plural: str
    label: str  # how the facility documentation names one record
    model: type[me.Document]
    push_schema: ma.Schema
    time_field: str
    content_fields: tuple[str, ...]
    fhir_resources: Callable[[Any, str, dict[str, str]], list[tuple[str, dict]]]
    stored_fields: Callable[[dict[str, Any]], dict[str, Any]] = dict
    stamped: Callable[[dict[str, Any], datetime], dict[str, Any]] = _no_stamp
    created_fields: dict[str, Any] = field(default_factory=dict)
    put_description: str = ""

    def record_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        """The stored fields of a record (identity fields belong to the citizen, not the record)."""
        return self.stored_fields({key: value for key, value in data.items() if key not in IDENTITY_FIELDS})

    def cleared_fields(self, fields: dict[str, Any]) -> list[str]:
        """Optional content fields absent from a replacement push are removed (PUT replaces)."""
        return [name for name in self.content_fields if name not in fields]


def _visit_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(fields.get("follow_up_date"), date):
        fields["follow_up_date"] = fields["follow_up_date"].isoformat()
    for prescription in fields.get("prescriptions") or []:
        if prescription.get("code"):
            prescription["code"] = prescription["code"].lower()
    if fields.get("prescriptions") and fields.get("status") != VOIDED:
        fields["prescribed_at"] = fields["started_at"]  # the prescription list's range (Visit.prescribed_at)
    return fields


def _immunization_fields(fields: dict[str, Any]) -> dict[str, Any]:
    fields["primary_source"] = True
    fields["reactions"] = [dict(reaction, reported_by="facility") for reaction in fields.get("reactions") or []]
    return fields


def _immunization_stamp(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"reactions": [dict(reaction, recorded_at=now) for reaction in fields["reactions"]]}


KINDS: Mapping[str, RecordKind] = MappingProxyType({kind.name: kind for kind in (
    RecordKind(
        name="visit", plural="visits", label="visit", model=Visit, push_schema=VisitPushSchema(),
        time_field="started_at",
        content_fields=("visit_type", "ended_at", "department", "practitioner", "reason", "diagnoses",
                        "lab_results", "prescriptions", "follow_up_date", "notes",
                        "prescribed_at"),  # derived: removed when the visit no longer prescribes
        fhir_resources=visit_resources, stored_fields=_visit_fields,
        put_description="`status: entered-in-error` voids the visit: it is kept, and the citizen sees it as\n"
                        "withdrawn by the facility.",
    ),
    RecordKind(
        name="immunization", plural="immunizations", label="vaccination", model=Immunization,
        push_schema=ImmunizationPushSchema(), time_field="administered_at",
        content_fields=("lot", "site", "route"),
        fhir_resources=immunization_resources, stored_fields=_immunization_fields,
        stamped=_immunization_stamp, created_fields={"citizen_reactions": []},
    ),
)})  # read-only: the table is declared here, not registered into


def kind(name: object) -> RecordKind:
    """The kind called ``name``; any other name is a ``KeyError`` (never a default kind)."""
    if not isinstance(name, str) or name not in KINDS:
        raise KeyError(f"unknown record kind: {name!r}")
    return KINDS[name]


def kinds() -> Iterator[RecordKind]:
    """Every kind, in table order."""
    return iter(KINDS.values())


def names_text(quoted: bool = True) -> str:
    """The kinds' names as documentation lists them: ```visit` or `immunization``` (or unquoted)."""
    names = [f"`{name}`" if quoted else name for name in KINDS]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
