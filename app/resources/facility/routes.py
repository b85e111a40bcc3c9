"""Routes for facility systems (bearer: facility client token)."""

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api import problem
from app.auth import current_principal, request_context
from app.http import accepts
from app.resources.facility import bulk
from app.resources.facility.records_schemas import (
    ImmunizationPushSchema,
    PushResultSchema,
    VisitPushSchema,
)
from app.resources.facility.schemas import (
    CitizenRegisterSchema,
    FacilityIdentitySchema,
    IssuedCodeSchema,
)
from app.runtime import runtime
from app.services import citizens, facilities, records

NDJSON = "application/x-ndjson"

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


def _pushed(result: records.PushResult):  # type: ignore[no-untyped-def]
    return {"id": result.id, "version": result.version, "outcome": result.outcome}, result.status


@blp.route("/facility/visits/<source_id>")
class FacilityVisitViews(MethodView):
    @blp.arguments(VisitPushSchema)
    @blp.response(201, PushResultSchema, description="Created")
    @blp.alt_response(200, schema=PushResultSchema, description="Updated (version + 1) or unchanged")
    @blp.alt_response(409, **problem("`identity-mismatch`: the CCCD is known with another birth date"))
    def put(self, body, source_id):
        """Create or replace this facility's visit `source_id` (idempotent)

        `status: entered-in-error` voids the visit: it is kept, and the citizen sees it as
        withdrawn by the facility.
        """
        return _pushed(records.push_one(request_context(), "visit", source_id, body))


@blp.route("/facility/immunizations/<source_id>")
class FacilityImmunizationViews(MethodView):
    @blp.arguments(ImmunizationPushSchema)
    @blp.response(201, PushResultSchema, description="Created")
    @blp.alt_response(200, schema=PushResultSchema, description="Updated (version + 1) or unchanged")
    @blp.alt_response(409, **problem("`identity-mismatch`: the CCCD is known with another birth date"))
    def put(self, body, source_id):
        """Create or replace this facility's vaccination `source_id` (idempotent)"""
        return _pushed(records.push_one(request_context(), "immunization", source_id, body))


@blp.route("/facility/bulk")
class FacilityBulkViews(MethodView):
    @accepts(NDJSON)
    @blp.doc(requestBody={"required": True, "content": {NDJSON: {"schema": {
        "type": "string", "description": 'One JSON object a line: a visit or immunization push '
        'body plus `"type"` (`visit` or `immunization`) and `"source_id"`.'}}}})
    @blp.response(200, description="One NDJSON result a line, in input order: "
                  '`{"line", "status", "id"?, "version"?, "outcome"?, "problem"?, "errors"?}`',
                  content_type=NDJSON)
    def post(self):
        """Push many records as NDJSON; each line is accepted or rejected on its own

        Both directions stream: memory stays flat whatever the upload size. A line over 64 KiB
        is rejected (status 413) without affecting the others.
        """
        request.max_content_length = runtime().settings.bulk_max_bytes
        ctx = request_context()
        stream = request.stream
        return Response(stream_with_context(bulk.run(ctx, stream)), mimetype=NDJSON)
