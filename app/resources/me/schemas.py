"""Schemas of the citizen's own account and record."""

from __future__ import annotations

from datetime import datetime

import marshmallow as ma

from app.models.citizen import ADDRESS_LINE_MAX_LENGTH, LANGUAGES
from app.models.records import SEVERITIES
from app.resources.auth.schemas import SessionSchema
from app.resources.common import PageArgsSchema, page_schema
from app.runtime import runtime
from app.schemas.base import StrictSchema, WholeNumber
from app.schemas.citizen_fields import email_field, phone_field
from app.schemas.text import Text
from app.services.profile import PREFERENCE_KINDS

SessionListSchema = page_schema(SessionSchema, "SessionList")


def _not_future(value: datetime) -> None:
    """Refuse a time after the app's now (its clock, which tests and replays may move)."""
    if value > runtime().now():
        raise ma.ValidationError("Cannot be in the future.")


class AddressSchema(StrictSchema):
    line = Text(ADDRESS_LINE_MAX_LENGTH, min_length=1)
    ward_code = Text(10, validate=ma.validate.Regexp(r"^[0-9]{1,10}$"))
    province_code = Text(3, validate=ma.validate.Regexp(r"^[0-9]{2,3}$"))


class AddressOutSchema(ma.Schema):
    line = ma.fields.String(allow_none=True)
    ward_code = ma.fields.String(allow_none=True)
    province_code = ma.fields.String(allow_none=True)


class ProfileSchema(ma.Schema):
    """The citizen's profile."""

    national_id = ma.fields.String(required=True)
    full_name = ma.fields.String(required=True)
    family_name = ma.fields.String(allow_none=True)
    given_name = ma.fields.String(allow_none=True)
    date_of_birth = ma.fields.String(required=True, metadata={"description": "YYYY-MM-DD, YYYY-MM or YYYY"})
    sex = ma.fields.String(required=True)
    phone = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    address = ma.fields.Nested(AddressOutSchema, allow_none=True)
    language = ma.fields.String(required=True)
    notification_preferences = ma.fields.Dict(required=True)


class ChannelPreferencesSchema(StrictSchema):
    """Which channels carry this kind of message (the in-app inbox always does)."""

    sms = ma.fields.Boolean()
    email = ma.fields.Boolean()
    push = ma.fields.Boolean()


# Security messages are not listed: they cannot be turned off.
NotificationPreferencesSchema = StrictSchema.from_dict(
    {kind: ma.fields.Nested(ChannelPreferencesSchema) for kind in PREFERENCE_KINDS},
    name="NotificationPreferences",
)


class ProfilePatchSchema(StrictSchema):
    """What the citizen may change: contact data and preferences only."""

    phone = phone_field()
    email = email_field()
    address = ma.fields.Nested(AddressSchema, allow_none=True)
    language = Text(8, validate=ma.validate.OneOf(LANGUAGES))
    notification_preferences = ma.fields.Nested(
        NotificationPreferencesSchema,
        metadata={"description": "kind -> {sms|email|push: bool}; security messages always go out"},
    )


class FacilityRefSchema(ma.Schema):
    code = ma.fields.String(required=True)
    name = ma.fields.String(allow_none=True)


class DiagnosisOutSchema(ma.Schema):
    code = ma.fields.String(required=True)
    display = ma.fields.String(allow_none=True)
    text = ma.fields.String(allow_none=True)
    principal = ma.fields.Boolean(required=True)


class LabResultOutSchema(ma.Schema):
    code = ma.fields.String(allow_none=True)
    name = ma.fields.String(required=True)
    value = ma.fields.String(allow_none=True)
    unit = ma.fields.String(allow_none=True)
    conclusion = ma.fields.String(allow_none=True)
    at = ma.fields.DateTime(allow_none=True)


class PrescriptionItemOutSchema(ma.Schema):
    drug_code = ma.fields.String(allow_none=True)
    name = ma.fields.String(required=True)
    strength = ma.fields.String(allow_none=True)
    dose_text = ma.fields.String(allow_none=True)
    quantity = ma.fields.Float(allow_none=True)
    route = ma.fields.String(allow_none=True)


class PrescriptionOutSchema(ma.Schema):
    code = ma.fields.String(allow_none=True, metadata={"description": "National e-prescription code"})
    items = ma.fields.List(ma.fields.Nested(PrescriptionItemOutSchema), required=True)


class PractitionerOutSchema(ma.Schema):
    code = ma.fields.String(allow_none=True)
    name = ma.fields.String(allow_none=True)


class VisitSummarySchema(ma.Schema):
    """A visit in the timeline (a withdrawn one shows only that it was withdrawn)."""

    id = ma.fields.String(required=True)
    facility = ma.fields.Nested(FacilityRefSchema, required=True)
    started_at = ma.fields.DateTime(required=True)
    status = ma.fields.String(required=True, metadata={"description": "final or entered-in-error"})
    withdrawn = ma.fields.Boolean(required=True)
    note = ma.fields.String(allow_none=True)
    visit_type = ma.fields.String(allow_none=True)
    ended_at = ma.fields.DateTime(allow_none=True)
    department = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    diagnoses = ma.fields.List(ma.fields.Nested(DiagnosisOutSchema))
    follow_up_date = ma.fields.String(allow_none=True)


class VisitSchema(VisitSummarySchema):
    """A visit with diagnoses, results and prescriptions."""

    practitioner = ma.fields.Nested(PractitionerOutSchema, allow_none=True)
    lab_results = ma.fields.List(ma.fields.Nested(LabResultOutSchema))
    prescriptions = ma.fields.List(ma.fields.Nested(PrescriptionOutSchema))
    notes = ma.fields.String(allow_none=True)
    version = ma.fields.Integer()


VisitPageSchema = page_schema(VisitSummarySchema, "VisitPage")


class VisitQueryArgsSchema(PageArgsSchema):
    """Timeline filters."""

    from_ = ma.fields.AwareDateTime(data_key="from", metadata={"description": "Visits from (inclusive)"})
    to = ma.fields.AwareDateTime(metadata={"description": "Visits before (exclusive)"})
    facility = Text(5, validate=ma.validate.Regexp(r"^[0-9A-Z]{5}$"))


class ReactionOutSchema(ma.Schema):
    onset_at = ma.fields.DateTime(required=True)
    description = ma.fields.String(required=True)
    severity = ma.fields.String(required=True)
    reported_by = ma.fields.String(required=True, metadata={"description": "facility or citizen"})
    recorded_at = ma.fields.DateTime(required=True)


class VaccineOutSchema(ma.Schema):
    name = ma.fields.String(allow_none=True)
    target_disease = ma.fields.String(required=True, metadata={"description": "`tg`"})
    type = ma.fields.String(required=True, metadata={"description": "`vp`"})
    product = ma.fields.String(required=True, metadata={"description": "`mp`"})
    manufacturer = ma.fields.String(required=True, metadata={"description": "`ma`"})


class ImmunizationSchema(ma.Schema):
    """A vaccination with the injection time and reactions."""

    id = ma.fields.String(required=True)
    facility = ma.fields.Nested(FacilityRefSchema, required=True)
    status = ma.fields.String(required=True)
    withdrawn = ma.fields.Boolean(required=True)
    note = ma.fields.String(allow_none=True)
    administered_at = ma.fields.DateTime(required=True)
    vaccine = ma.fields.Nested(VaccineOutSchema, allow_none=True)
    dose_number = ma.fields.Integer(allow_none=True)
    series_doses = ma.fields.Integer(allow_none=True)
    lot = ma.fields.String(allow_none=True)
    site = ma.fields.String(allow_none=True)
    route = ma.fields.String(allow_none=True)
    country = ma.fields.String(allow_none=True)
    primary_source = ma.fields.Boolean(allow_none=True)
    reactions = ma.fields.List(ma.fields.Nested(ReactionOutSchema))


ImmunizationPageSchema = page_schema(ImmunizationSchema, "ImmunizationPage")


class ReactionReportSchema(StrictSchema):
    """A reaction the citizen noticed after a vaccination."""

    onset_at = ma.fields.AwareDateTime(required=True, validate=_not_future)
    description = Text(1000, min_length=1, required=True, multiline=True)
    severity = Text(16, required=True, validate=ma.validate.OneOf(SEVERITIES))


class PrescriptionEntrySchema(ma.Schema):
    """A prescription as shown at a pharmacy."""

    visit_id = ma.fields.String(required=True)
    facility = ma.fields.Nested(FacilityRefSchema, required=True)
    prescribed_at = ma.fields.DateTime(required=True)
    practitioner = ma.fields.Nested(PractitionerOutSchema, allow_none=True)
    code = ma.fields.String(allow_none=True)
    items = ma.fields.List(ma.fields.Nested(PrescriptionItemOutSchema), required=True)


PrescriptionPageSchema = page_schema(PrescriptionEntrySchema, "PrescriptionPage")


class AccessEntrySchema(ma.Schema):
    """Who read or changed the record, when, on what basis."""

    id = ma.fields.String(required=True)
    at = ma.fields.DateTime(required=True)
    access = ma.fields.String(required=True, metadata={"description": "read or write"})
    action = ma.fields.String(required=True)
    actor_type = ma.fields.String(required=True)
    actor_label = ma.fields.String(allow_none=True)
    facility_code = ma.fields.String(allow_none=True)
    facility_name = ma.fields.String(allow_none=True)
    outcome = ma.fields.String(required=True)


AccessLogPageSchema = page_schema(AccessEntrySchema, "AccessLogPage")


class ExportArgsSchema(StrictSchema):
    since = ma.fields.AwareDateTime(metadata={"description": "Only records changed since then"})


class ShareCreateSchema(StrictSchema):
    """What to share, for how long."""

    scope = ma.fields.List(
        Text(16, validate=ma.validate.OneOf(("visits", "immunizations", "prescriptions"))),
        required=True, validate=ma.validate.Length(1, 3))
    expires_in_hours = WholeNumber(required=True, validate=ma.validate.Range(1, 72))


class ShareSchema(ma.Schema):
    """A share (never its code after creation)."""

    id = ma.fields.String(required=True)
    scope = ma.fields.List(ma.fields.String(), required=True)
    created_at = ma.fields.DateTime(required=True)
    expires_at = ma.fields.DateTime(required=True)
    revoked_at = ma.fields.DateTime(allow_none=True)
    active = ma.fields.Boolean(required=True)
    times_opened = ma.fields.Integer(required=True)
    last_opened_at = ma.fields.DateTime(allow_none=True)


class NewShareSchema(ma.Schema):
    """A new share code: give it to the doctor; it is shown only now (dumps a ``shares.NewShare``)."""

    id = ma.fields.String(required=True, attribute="share.id")
    code = ma.fields.String(required=True)
    expires_at = ma.fields.DateTime(required=True, attribute="share.expires_at")
    scope = ma.fields.List(ma.fields.String(), required=True, attribute="share.scope")


ShareListSchema = page_schema(ShareSchema, "ShareList")


class InboxItemSchema(ma.Schema):
    id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)
    read_at = ma.fields.DateTime(allow_none=True)


class InboxPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(InboxItemSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)
    unread_count = ma.fields.Integer(required=True)


class DeviceCreateSchema(StrictSchema):
    platform = Text(16, required=True, validate=ma.validate.OneOf(("android", "ios")))
    push_token = Text(4096, min_length=8, required=True)


class DeviceSchema(ma.Schema):
    id = ma.fields.String(required=True)
    platform = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)
