"""Routes for facility systems (bearer: facility client token)."""

from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import problem
from app.auth import current_principal, request_context
from app.resources.facility.schemas import (
    CitizenRegisterSchema,
    FacilityIdentitySchema,
    IssuedCodeSchema,
)
from app.runtime import runtime
from app.services import citizens, facilities

blp = Blueprint("facility", __name__, description="Facility systems (OAuth2 client credentials)")


@blp.route("/facility/me")
class FacilityMeViews(MethodView):
    @blp.response(200, FacilityIdentitySchema)
    def get(self):
        """The client and facility this token stands for"""
        client = current_principal().subject
        facility = facilities.get_facility(client.facility_code)
        return {"client_id": client.client_id, "facility_code": facility.code,
                "facility_name": facility.name}


@blp.route("/facility/citizens")
class FacilityCitizenViews(MethodView):
    @blp.arguments(CitizenRegisterSchema)
    @blp.response(201, IssuedCodeSchema, description="New citizen registered; code issued")
    @blp.alt_response(200, schema=IssuedCodeSchema,
                      description="Existing citizen, account not active; new code issued")
    @blp.alt_response(409, **problem("`identity-mismatch` or `account-active`"))
    def post(self, body):
        """Register a citizen and issue an activation code (shown once)

        The facility has checked the person's identity document. A new code cancels any older
        one; it is valid 72 hours by default and works once.
        """
        issued = citizens.register_citizen(
            request_context(), runtime(), body["national_id"], body["full_name"],
            body["date_of_birth"], body["sex"], body.get("phone"), body.get("email"),
        )
        return {"citizen_id": str(issued.citizen.id), "activation_code": issued.code,
                "expires_at": issued.expires_at}, 201 if issued.created else 200
