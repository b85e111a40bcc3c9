"""Schemas of administration: facilities, their clients, staff, the audit log."""

import marshmallow as ma

from app.models.audit import ACTOR_TYPES, OUTCOMES
from app.models.facility import FACILITY_CODE_PATTERN, Facility, FacilityClient
from app.models.staff import STAFF_ROLES, USERNAME_PATTERN
from app.resources.common import PageArgsSchema, page_schema
from app.schemas.base import StrictSchema
from app.schemas.text import Text

_code = ma.validate.Regexp(FACILITY_CODE_PATTERN, error="Five characters: digits or A-Z.")


class FacilityCreateSchema(StrictSchema):
    """A facility to register."""

    code = Text(5, required=True, validate=_code, metadata={"description": "MA_CSKCB, 5 characters"})
    name = Text(Facility.name.max_length, min_length=1, required=True)
    province = Text(Facility.province.max_length, min_length=1, required=True)
    level = Text(Facility.level.max_length, min_length=1)


class FacilitySchema(ma.Schema):
    """A registered facility."""

    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    province = ma.fields.String(required=True)
    level = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)


FacilityPageSchema = page_schema(FacilitySchema, "FacilityPage")


class ClientCreateSchema(StrictSchema):
    """An API client to issue."""

    label = Text(FacilityClient.label.max_length, min_length=1,
                 metadata={"description": "Which system uses it, e.g. `HIS production`"})


class ClientSchema(ma.Schema):
    """A facility API client (never its secret)."""

    client_id = ma.fields.String(required=True)
    facility_code = ma.fields.String(required=True)
    label = ma.fields.String(allow_none=True)
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)
    last_used_at = ma.fields.DateTime(allow_none=True)


class NewClientSchema(ClientSchema):
    """A new client with its secret: shown once, never again (dumps a ``facilities.NewClient``)."""

    client_id = ma.fields.String(required=True, attribute="client.client_id")
    facility_code = ma.fields.String(required=True, attribute="client.facility_code")
    label = ma.fields.String(allow_none=True, attribute="client.label")
    active = ma.fields.Boolean(required=True, attribute="client.active")
    created_at = ma.fields.DateTime(required=True, attribute="client.created_at")
    last_used_at = ma.fields.DateTime(allow_none=True, attribute="client.last_used_at")
    client_secret = ma.fields.String(required=True)


ClientPageSchema = page_schema(ClientSchema, "ClientPage")


class StaffCreateSchema(StrictSchema):
    """A staff account to create."""

    username = Text(
        64, required=True,
        validate=ma.validate.Regexp(USERNAME_PATTERN, error="3-64 of a-z, 0-9, '.', '_', '-'."),
    )
    role = Text(16, required=True, validate=ma.validate.OneOf(STAFF_ROLES))


class NewStaffSchema(ma.Schema):
    """A new staff account with its one-time password and TOTP URI (shown once): dumps a ``NewStaff``."""

    username = ma.fields.String(required=True, attribute="user.username")
    role = ma.fields.String(required=True, attribute="user.role")
    password = ma.fields.String(required=True)
    totp_uri = ma.fields.String(required=True)


class AuditQueryArgsSchema(PageArgsSchema):
    """Filters of the audit log."""

    action = Text(64, min_length=1)
    actor_type = Text(32, validate=ma.validate.OneOf(ACTOR_TYPES))
    actor_id = Text(128, min_length=1)
    citizen_id = Text(24, validate=ma.validate.Regexp(r"^[0-9a-f]{24}$"))
    outcome = Text(16, validate=ma.validate.OneOf(OUTCOMES))
    from_ = ma.fields.AwareDateTime(data_key="from", metadata={"description": "Inclusive"})
    to = ma.fields.AwareDateTime(metadata={"description": "Exclusive"})


class AuditEventSchema(ma.Schema):
    """One audit event."""

    id = ma.fields.String(required=True)
    at = ma.fields.DateTime(required=True)
    actor_type = ma.fields.String(required=True)
    actor_id = ma.fields.String(allow_none=True)
    actor_label = ma.fields.String(allow_none=True)
    facility_code = ma.fields.String(allow_none=True)
    action = ma.fields.String(required=True)
    outcome = ma.fields.String(required=True)
    citizen_id = ma.fields.String(allow_none=True, metadata={"description": "The citizen, when exactly one"})
    citizen_ids = ma.fields.List(ma.fields.String(), metadata={
        "description": "Every citizen concerned (a bulk upload's write event names several)"})
    target_type = ma.fields.String(allow_none=True)
    target_id = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    ip = ma.fields.String(allow_none=True)
    details = ma.fields.Dict(keys=ma.fields.String())


AuditPageSchema = page_schema(AuditEventSchema, "AuditPage")


class NotificationQueryArgsSchema(PageArgsSchema):
    status = Text(16, load_default="dead",
                  validate=ma.validate.OneOf(("pending", "sending", "sent", "failed", "dead")))


class OutboxItemSchema(ma.Schema):
    """A message's delivery state (never its text: it may carry a code)."""

    id = ma.fields.String(required=True)
    citizen_id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    channel = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    attempts = ma.fields.Integer(required=True)
    last_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    next_attempt_at = ma.fields.DateTime(allow_none=True)


OutboxPageSchema = page_schema(OutboxItemSchema, "OutboxPage")
