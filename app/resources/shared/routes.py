"""POST /shared-records: a doctor opens the part of a record a citizen shared."""

from flask.views import MethodView

from app.resources.common import Blueprint
from app.resources.me import present
from app.resources.shared.schemas import ShareCodeSchema, SharedRecordSchema
from app.runtime import runtime
from app.services import shares
from app.web.api import problem
from app.web.auth import request_context

blp = Blueprint("shared", __name__, description="Records shared by citizens")


@blp.route("/shared-records")
class SharedRecordViews(MethodView):
    @blp.arguments(ShareCodeSchema)
    @blp.response(200, SharedRecordSchema)
    @blp.alt_response(404, **problem("Unknown, expired or revoked code"))
    @blp.alt_response(429, **problem("Too many attempts from this address"))
    def post(self, body):
        """Open a shared record with its code (a facility token, if sent, is named in the access log)"""
        shared = shares.open_share(request_context(), body["code"], box=runtime().box,
                                   attempts=runtime().share_attempts)
        records = [*shared.visits, *shared.immunizations, *shared.prescriptions]
        names = runtime().facility_names.names({r.facility_code for r in records})
        with_rx = "prescriptions" in shared.scope
        return {
            "patient": shared.citizen,
            "scope": shared.scope,
            "expires_at": shared.expires_at,
            "visits": [present.visit_detail(v, names, with_prescriptions=with_rx) for v in shared.visits],
            "immunizations": [present.immunization(r, names) for r in shared.immunizations],
            "prescriptions": [e for v in shared.prescriptions for e in present.prescription_entries(v, names)],
        }
