"""POST /shared-records: a doctor opens the part of a record a citizen shared."""

import marshmallow as ma
from flask.views import MethodView

from app.resources.common import Blueprint, StrictSchema
from app.resources.me import present
from app.resources.me.schemas import ImmunizationSchema, PrescriptionEntrySchema, VisitSchema
from app.runtime import runtime
from app.schemas.text import Text
from app.services import shares
from app.web.api import problem
from app.web.auth import request_context

blp = Blueprint("shared", __name__, description="Records shared by citizens")


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


@blp.route("/shared-records")
class SharedRecordViews(MethodView):
    @blp.arguments(ShareCodeSchema)
    @blp.response(200, SharedRecordSchema)
    @blp.alt_response(404, **problem("Unknown, expired or revoked code"))
    @blp.alt_response(429, **problem("Too many attempts from this address"))
    def post(self, body):
        """Open a shared record with its code (a facility token, if sent, is named in the access log)"""
        shared = shares.open_share(request_context(), runtime(), body["code"])
        records = [*shared.visits, *shared.immunizations, *shared.prescriptions]
        names = runtime().facility_names.names({r.facility_code for r in records})
        with_rx = "prescriptions" in shared.scope
        return {
            "patient": {"full_name": shared.citizen.full_name, "date_of_birth": shared.citizen.date_of_birth,
                        "sex": shared.citizen.sex},
            "scope": shared.scope,
            "expires_at": shared.expires_at,
            "visits": [present.visit_detail(v, names, with_prescriptions=with_rx) for v in shared.visits],
            "immunizations": [present.immunization(r, names) for r in shared.immunizations],
            "prescriptions": [e for v in shared.prescriptions for e in present.prescription_entries(v, names)],
        }
