"""Schemas of staff login and identity."""

import marshmallow as ma

from app.models.staff import STAFF_ROLES
from app.resources.common import StrictSchema


class StaffLoginSchema(StrictSchema):
    """Username, password and the current TOTP code."""

    username = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))
    password = ma.fields.String(required=True, validate=ma.validate.Length(1, 256))
    totp_code = ma.fields.String(
        required=True, validate=ma.validate.Regexp(r"^[0-9]{6}$", error="Six digits.")
    )


class StaffSchema(ma.Schema):
    """A staff member as shown to staff."""

    username = ma.fields.String(required=True)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(STAFF_ROLES))
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)
    last_login_at = ma.fields.DateTime(allow_none=True)
