"""Schemas of facility systems' own routes."""

import marshmallow as ma

from app.schemas.base import StrictSchema
from app.schemas.citizen_fields import (
    date_of_birth_field,
    email_field,
    full_name_field,
    national_id_field,
    phone_field,
    sex_field,
)


class FacilityIdentitySchema(ma.Schema):
    """The client and facility a facility token stands for."""

    client_id = ma.fields.String(required=True)
    facility_code = ma.fields.String(required=True)
    facility_name = ma.fields.String(required=True)


class CitizenRegisterSchema(StrictSchema):
    """A citizen whom the facility has identified in person."""

    national_id = national_id_field()
    full_name = full_name_field()
    date_of_birth = date_of_birth_field()
    sex = sex_field()
    phone = phone_field(required=True)
    email = email_field()


class IssuedCodeSchema(ma.Schema):
    """The activation code to hand to the citizen: shown this once, never again."""

    citizen_id = ma.fields.String(required=True)
    activation_code = ma.fields.String(required=True, metadata={"example": "K7MPQ-3XRT9"})
    expires_at = ma.fields.DateTime(required=True)


class Xml130ResultSchema(ma.Schema):
    """One record's result."""

    index = ma.fields.Integer(required=True)
    source_id = ma.fields.String(allow_none=True, metadata={"description": "MA_LK"})
    status = ma.fields.Integer(required=True)
    id = ma.fields.String()
    version = ma.fields.Integer()
    outcome = ma.fields.String()
    errors = ma.fields.Dict()


class Xml130ReportSchema(ma.Schema):
    """Each record's result, and the totals."""

    facility_code = ma.fields.String(allow_none=True)
    records = ma.fields.List(ma.fields.Nested(Xml130ResultSchema), required=True)
    summary = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
