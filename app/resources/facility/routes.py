"""Routes for facility systems (bearer: facility client token)."""

from flask.views import MethodView
from flask_smorest import Blueprint

from app.auth import current_principal
from app.resources.facility.schemas import FacilityIdentitySchema
from app.services import facilities

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
