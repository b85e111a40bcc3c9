"""Schemas of support staff's account operations."""

import marshmallow as ma

from app.models.audit import REASON_MAX_LENGTH
from app.schemas.base import StrictSchema
from app.schemas.text import Text

DOCUMENT_TYPES = ("cccd", "cmnd", "passport", "birth_certificate")
CHECK_METHODS = ("in_person", "video_call", "phone_callback")


class ReasonSchema(StrictSchema):
    """Why support acts (recorded in the audit log and shown to the citizen)."""

    reason = Text(REASON_MAX_LENGTH, min_length=3, required=True, multiline=True)


class IdentityCheckSchema(StrictSchema):
    """How support verified that the caller is the account holder."""

    document_type = Text(32, required=True, validate=ma.validate.OneOf(DOCUMENT_TYPES))
    document_number_last4 = Text(
        4, required=True, validate=ma.validate.Regexp(r"^[0-9A-Z]{4}$", error="Last four characters.")
    )
    method = Text(32, required=True, validate=ma.validate.OneOf(CHECK_METHODS))


class AccessResetSchema(ReasonSchema):
    """An access reset with its identity-proofing evidence."""

    identity_check = ma.fields.Nested(IdentityCheckSchema, required=True)


class AccountStateSchema(ma.Schema):
    """An account's state: never health data."""

    national_id = ma.fields.String(required=True)
    full_name = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={
        "description": "pending_activation, active, reset_pending or locked"})
    locked = ma.fields.Boolean(required=True)
    registered_by_facility = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    activated_at = ma.fields.DateTime(allow_none=True)
    last_login_at = ma.fields.DateTime(allow_none=True)
    active_sessions = ma.fields.Integer(required=True)
    contact_channels = ma.fields.List(ma.fields.String(), required=True)


class ActionResultSchema(ma.Schema):
    """The account state after a support action."""

    national_id = ma.fields.String(required=True)
    state = ma.fields.String(required=True)
    locked = ma.fields.Boolean(required=True)
