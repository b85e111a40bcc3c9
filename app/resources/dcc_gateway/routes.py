"""The EU DCC Gateway's trust list format and the national-backend API DGCA verifier apps use."""

from flask import Response
from flask.views import MethodView

from app.resources.common import Blueprint
from app.resources.dcc_gateway.schemas import GatewayTrustListEntrySchema, ResumeTokenHeadersSchema
from app.services import dcc_gateway
from app.web.api import problem
from app.web.auth import request_context

blp = Blueprint("dcc-gateway", __name__, description="EU DCC Gateway formats: Viet Nam's and other countries' DSCs "
                                                      "for EU verifier apps and national backends")


@blp.route("/passport/dcc/trustList")
class GatewayTrustListViews(MethodView):
    @blp.response(200, GatewayTrustListEntrySchema(many=True),
                  description="The DSC entries, each signed by its country's upload certificate (detached CMS)")
    def get(self):
        """Every trusted DSC as the EU DCC Gateway lists them (`GET /trustList/DSC`)"""
        return dcc_gateway.gateway_entries(request_context().now)


@blp.route("/passport/dcc/signercertificateStatus")
class SignerCertificateStatusViews(MethodView):
    @blp.response(200)
    @blp.doc(responses={"200": {
        "description": "The base64 kids of every DSC a verifier should hold; it drops the others",
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}},
                                         "example": ["8xYtW2837bc=", "zoQi+KT68LM="]}}}})
    def get(self):
        """The kids of all valid DSCs (the DGCA national-backend API)"""
        return dcc_gateway.status_kids(request_context().now)


@blp.route("/passport/dcc/signercertificateUpdate")
class SignerCertificateUpdateViews(MethodView):
    @blp.arguments(ResumeTokenHeadersSchema, location="headers", as_kwargs=True)
    @blp.response(200)
    @blp.alt_response(204, description="No DSC after this resume token: the download is complete")
    @blp.alt_response(422, **problem("`X-RESUME-TOKEN` is not a non-negative integer"))
    @blp.doc(responses={"200": {
        "description": "One DSC, base64 DER. `X-KID` is its kid, `X-RESUME-TOKEN` the value to send next; "
                       "repeat until 204.",
        "headers": {"X-KID": {"description": "base64 kid of this DSC", "schema": {"type": "string"}},
                    "X-RESUME-TOKEN": {"description": "send it back to get the next DSC",
                                       "schema": {"type": "integer", "minimum": 0}}},
        "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def get(self, resume_token=None):
        """One DSC per call, paged by `X-RESUME-TOKEN` (the DGCA national-backend API)"""
        found = dcc_gateway.next_certificate(request_context().now, resume_token)
        if found is None:
            return Response(status=204)
        kid, der_b64, token = found
        return Response(der_b64, mimetype="text/plain", headers={"X-KID": kid, "X-RESUME-TOKEN": str(token)})
