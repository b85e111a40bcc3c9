"""Schemas of the records a citizen shared with a doctor."""

import marshmallow as ma

from app.resources.me.schemas import ImmunizationSchema, PrescriptionEntrySchema, VisitSchema
from app.schemas.base import StrictSchema
from app.schemas.text import Text


class ShareCodeSchema(StrictSchema):
    code = Text(64, min_length=1, required=True,
                metadata={"example": "ABCD-EFGH-JKMN-PQRS"})


class SharedPatientSchema(ma.Schema):
    full_name = ma.fields.String(required=True)
    date_of_birth = ma.fields.String(required=True)
    sex = ma.fields.String(required=True)


class SharedRecordSchema(ma.Schema):
    """The shared part of a record, and nothing else."""

    patient = ma.fields.Nested(SharedPatientSchema, required=True)
    scope = ma.fields.List(ma.fields.String(), required=True)
    expires_at = ma.fields.DateTime(required=True)
    visits = ma.fields.List(ma.fields.Nested(VisitSchema))
    immunizations = ma.fields.List(ma.fields.Nested(ImmunizationSchema))
    prescriptions = ma.fields.List(ma.fields.Nested(PrescriptionEntrySchema))
