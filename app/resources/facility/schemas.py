"""Schemas of the facility system's own identity."""

import marshmallow as ma


class FacilityIdentitySchema(ma.Schema):
    """The client and facility a facility token stands for."""

    client_id = ma.fields.String(required=True)
    facility_code = ma.fields.String(required=True)
    facility_name = ma.fields.String(required=True)
