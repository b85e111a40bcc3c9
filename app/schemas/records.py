"""Push bodies of facility systems: a visit and an immunization (field names are a contract).

The contract of all three channels (PUT, NDJSON, XML 130). Clinical times are checked against the
app's clock: a channel loads these schemas inside ``app_clock(ctx.now)`` (``app.schemas.base``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import marshmallow as ma

from app.models.records import SEVERITIES
from app.schemas.base import StrictSchema, WholeNumber, schema_now
from app.schemas.citizen_fields import (
    date_of_birth_field,
    full_name_field,
    national_id_field,
    sex_field,
)
from app.schemas.text import Text
from app.services import valuesets
from app.services.identity import cccd_problems
from passport.payload import MAX_DOSE_NUMBER

ICD10 = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"
PRESCRIPTION_CODE = r"(?i)^[0-9a-z]{12}-[cnhy]$"
CLOCK_SKEW = timedelta(minutes=5)


def _text(maximum: int, required: bool = False, multiline: bool = False) -> Text:
    return Text(maximum, min_length=1, required=required, multiline=multiline)


def _not_future(value: datetime) -> None:
    if value > schema_now() + CLOCK_SKEW:
        raise ma.ValidationError("Cannot be in the future.")


def _in_value_set(field: str) -> ma.validate.OneOf:
    """One of the codes of an EU DCC value set (documented as an enum)."""
    return ma.validate.OneOf(sorted(valuesets.codes(field)),
                             error=f"Not a code of the EU DCC value set for `{field}`.")


class CitizenIdentitySchema(StrictSchema):
    """Who the record belongs to; the CCCD must agree with birth date and sex."""

    national_id = national_id_field()
    full_name = full_name_field()
    date_of_birth = date_of_birth_field()
    sex = sex_field()

    @ma.validates_schema
    def cccd_agrees(self, data, **kwargs):  # type: ignore[no-untyped-def]
        if {"national_id", "date_of_birth", "sex"} <= set(data):
            problems = cccd_problems(data["national_id"], data["date_of_birth"], data["sex"])
            if problems:
                raise ma.ValidationError(problems, "national_id")

    def check_not_before_birth(self, data: dict, moment: datetime | None, field: str) -> None:
        """A clinical time before the person was born is a data error."""
        birth = data.get("date_of_birth")
        if moment is not None and birth is not None and moment.date() < birth:
            raise ma.ValidationError("Cannot be before the date of birth.", field)


class PractitionerSchema(StrictSchema):
    code = _text(50)
    name = _text(200)


class DiagnosisSchema(StrictSchema):
    code = Text(16, required=True, validate=ma.validate.Regexp(
        ICD10, error="An ICD-10 code such as J20.9."))
    display = _text(300)
    text = _text(1000, multiline=True)
    principal = ma.fields.Boolean(load_default=False)


class LabResultSchema(StrictSchema):
    code = _text(50)
    name = _text(200, required=True)
    value = Text(200, metadata={"description": "Kept exactly as sent (a string)"})
    unit = _text(50)
    conclusion = _text(1000, multiline=True)
    at = ma.fields.AwareDateTime(validate=_not_future)


class PrescriptionItemSchema(StrictSchema):
    drug_code = _text(50)
    name = _text(200, required=True)
    strength = _text(100)
    dose_text = _text(500, multiline=True)
    quantity = ma.fields.Float(validate=ma.validate.Range(0, 100_000), allow_nan=False)
    route = _text(100)


class PrescriptionSchema(StrictSchema):
    code = Text(
        14, validate=ma.validate.Regexp(PRESCRIPTION_CODE, error="A national prescription code "
                                    "(12 letters or digits, '-', then c, n, h or y)."),
        metadata={"description": "National e-prescription code, e.g. `79001abcdefg-c`"},
    )
    items = ma.fields.List(ma.fields.Nested(PrescriptionItemSchema), required=True,
                           validate=ma.validate.Length(1, 100))


class VisitPushSchema(CitizenIdentitySchema):
    """A visit (outpatient encounter) as a facility pushes it."""

    visit_type = Text(
        2, validate=ma.validate.Regexp(r"^[0-9]{2}$", error="MA_LOAI_KCB, two digits."),
        metadata={"description": "MA_LOAI_KCB: 01 examination, 02 outpatient treatment, ..."})
    started_at = ma.fields.AwareDateTime(required=True, validate=_not_future)
    ended_at = ma.fields.AwareDateTime(validate=_not_future)
    department = _text(200)
    practitioner = ma.fields.Nested(PractitionerSchema)
    reason = _text(1000, multiline=True)
    diagnoses = ma.fields.List(ma.fields.Nested(DiagnosisSchema), validate=ma.validate.Length(0, 50))
    lab_results = ma.fields.List(ma.fields.Nested(LabResultSchema),
                                 validate=ma.validate.Length(0, 500))
    prescriptions = ma.fields.List(ma.fields.Nested(PrescriptionSchema),
                                   validate=ma.validate.Length(0, 20))
    follow_up_date = ma.fields.Date()
    notes = _text(4000, multiline=True)
    status = Text(32, load_default="final",
                              validate=ma.validate.OneOf(("final", "entered-in-error")))

    @ma.validates_schema
    def consistent(self, data, **kwargs):  # type: ignore[no-untyped-def]
        started, ended = data.get("started_at"), data.get("ended_at")
        self.check_not_before_birth(data, started, "started_at")
        if started and ended and ended < started:
            raise ma.ValidationError("Cannot end before it started.", "ended_at")
        if started and data.get("follow_up_date") and data["follow_up_date"] < started.date():
            raise ma.ValidationError("Cannot be before the visit.", "follow_up_date")
        diagnoses = data.get("diagnoses") or []
        if diagnoses and sum(1 for d in diagnoses if d.get("principal")) != 1:
            raise ma.ValidationError("Exactly one diagnosis must be principal.", "diagnoses")


# Built from a dict: a field named `ma` would shadow the marshmallow module in a class body.
VaccineSchema = StrictSchema.from_dict(
    {
        "tg": Text(64, required=True, validate=_in_value_set("tg"),
                               metadata={"description": "Target disease (SNOMED CT), e.g. 840539006"}),
        "vp": Text(64, required=True, validate=_in_value_set("vp"),
                               metadata={"description": "Vaccine type, e.g. 1119349007 (mRNA)"}),
        "mp": Text(64, required=True, validate=_in_value_set("mp"),
                               metadata={"description": "Product, e.g. EU/1/20/1528"}),
        "ma": Text(64, required=True, validate=_in_value_set("ma"),
                               metadata={"description": "Authorisation holder, e.g. ORG-100030215"}),
        "name": _text(200),
    },
    name="Vaccine",
)


class ReactionSchema(StrictSchema):
    onset_at = ma.fields.AwareDateTime(required=True, validate=_not_future)
    description = _text(1000, required=True, multiline=True)
    severity = Text(16, required=True, validate=ma.validate.OneOf(SEVERITIES))


class ImmunizationPushSchema(CitizenIdentitySchema):
    """A vaccination as a facility pushes it."""

    vaccine = ma.fields.Nested(VaccineSchema, required=True)
    # The EU DCC's range: every vaccination HoSo records is a COVID-19 one that a passport may carry. A dose
    # above the series is accepted: the EU encodes a booster after a one-dose series as 2/1.
    dose_number = WholeNumber(required=True, validate=ma.validate.Range(1, MAX_DOSE_NUMBER))
    series_doses = WholeNumber(required=True, validate=ma.validate.Range(1, MAX_DOSE_NUMBER))
    administered_at = ma.fields.AwareDateTime(
        required=True, validate=_not_future,
        metadata={"description": "The injection time, with time of day and offset"})
    lot = _text(50)
    site = _text(100)
    route = _text(100)
    country = Text(2, load_default="VN", validate=_in_value_set("co"))
    reactions = ma.fields.List(ma.fields.Nested(ReactionSchema), validate=ma.validate.Length(0, 20))
    status = Text(32, load_default="completed",
                              validate=ma.validate.OneOf(("completed", "entered-in-error")))

    @ma.validates_schema
    def consistent(self, data, **kwargs):  # type: ignore[no-untyped-def]
        given = data.get("administered_at")
        self.check_not_before_birth(data, given, "administered_at")
        for reaction in data.get("reactions") or []:
            if given and reaction["onset_at"] < given:
                raise ma.ValidationError("A reaction cannot start before the injection.", "reactions")

    @ma.validates_schema
    def certifiable(self, data, **kwargs):  # type: ignore[no-untyped-def]
        """Deprecated codes and a product with another maker's `ma` are refused, except to withdraw a record
        (a record stored with an old code can still be marked `entered-in-error` as it was)."""
        vaccine = data.get("vaccine")
        if not vaccine or data.get("status") == "entered-in-error":
            return
        problems = valuesets.vaccination_problems(vaccine, data.get("dose_number", 1), data.get("series_doses", 1))
        nested = {key.removeprefix("vaccine."): [message] for key, message in problems.items()
                  if key.startswith("vaccine.")}
        if nested:
            raise ma.ValidationError({"vaccine": nested})


class PushResultSchema(ma.Schema):
    """What a push did."""

    id = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    outcome = ma.fields.String(required=True, metadata={"description": "created, updated or unchanged"})
