"""Routes for facility systems (bearer: facility client token)."""

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView

from app.resources.common import Blueprint
from app.resources.facility.schemas import (
    CitizenRegisterSchema,
    FacilityIdentitySchema,
    IssuedCodeSchema,
    Xml130ReportSchema,
)
from app.runtime import runtime
from app.schemas.base import app_clock
from app.schemas.records import PushResultSchema
from app.services import citizens, facilities
from app.services.ingest import bulk, records, xml130_import
from app.services.ingest.items import PushResult
from app.services.ingest.kinds import RecordKind, kinds, names_text
from app.web import json_body
from app.web.api import problem
from app.web.auth import current_principal, request_context
from app.web.http import accepts

NDJSON = "application/x-ndjson"
XML_TYPES = ("application/xml", "text/xml")

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
    @blp.alt_response(409, **problem("`identity-mismatch` or `account-active` (to a facility related to the "
                                     "citizen), else `registration-refused` for both"))
    @blp.alt_response(429, **problem("Too many refused identity checks"))
    def post(self, body):
        """Register a citizen and issue an activation code (shown once)

        The facility has checked the person's identity document. A new code cancels any older
        one; it is valid 72 hours by default and works once.
        """
        issued = citizens.register_citizen(
            request_context(), runtime().accounts, body["national_id"], body["full_name"],
            body["date_of_birth"], body["sex"], body.get("phone"), body.get("email"),
        )
        return {"citizen_id": str(issued.citizen.id), "activation_code": issued.code,
                "expires_at": issued.expires_at}, 201 if issued.created else 200


def _pushed(result: PushResult):  # type: ignore[no-untyped-def]
    return {"id": result.id, "version": result.version, "outcome": result.outcome}, result.status


def _on_app_clock(view: Callable[..., Any]) -> Callable[..., Any]:
    """Validate the push body (clinical times "not in the future") against the app's clock."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with app_clock(runtime().now()):
            return view(*args, **kwargs)
    return wrapped


def _push_route(kind: RecordKind) -> None:
    """``PUT /facility/<kind plural>/<source_id>``, one per entry of the kind table."""

    @blp.arguments(type(kind.push_schema))
    @blp.response(201, PushResultSchema, description="Created")
    @blp.alt_response(200, schema=PushResultSchema, description="Updated (version + 1) or unchanged")
    @blp.alt_response(409, **problem("`identity-mismatch`: the CCCD is known with another birth date"))
    @blp.alt_response(429, **problem("Too many refused identity checks"))
    def put(self, body, source_id):  # type: ignore[no-untyped-def]
        return _pushed(records.push_one(request_context(), kind.name, source_id, body))

    put.__doc__ = f"Create or replace this facility's {kind.label} `source_id` (idempotent)" + (
        f"\n\n{kind.put_description}" if kind.put_description else "")
    views = type(f"Facility{kind.name.title()}Views", (MethodView,), {"put": put, "decorators": [_on_app_clock]})
    blp.route(f"/facility/{kind.plural}/<source_id>")(views)


for _kind in kinds():
    _push_route(_kind)


@blp.route("/facility/bulk")
class FacilityBulkViews(MethodView):
    @accepts(NDJSON)
    @blp.doc(requestBody={"required": True, "content": {NDJSON: {"schema": {
        "type": "string", "description": f'One JSON object a line: a {names_text(quoted=False)} push '
        f'body plus `"type"` ({names_text()}) and `"source_id"`.'}}}})
    @blp.response(200, description="One NDJSON result a line, in input order: "
                  '`{"line", "status", "id"?, "version"?, "outcome"?, "problem"?, "errors"?}`',
                  content_type=NDJSON)
    def post(self):
        """Push many records as NDJSON; each line is accepted or rejected on its own

        Both directions stream: memory stays flat whatever the upload size. A line over 64 KiB
        is rejected (status 413) without affecting the others.
        """
        request.max_content_length = runtime().settings.bulk_max_bytes
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        answers = bulk.run(request_context(), request.stream, loads=json_body.loads, writer_context=app.app_context,
                           clock=runtime().now)
        return Response(stream_with_context(answers), mimetype=NDJSON)


@blp.route("/facility/xml130")
class FacilityXml130Views(MethodView):
    @accepts(*XML_TYPES)
    @blp.doc(requestBody={"required": True, "content": {t: {"schema": {
        "type": "string", "description": "A GIAMDINHHS envelope (QĐ 130/4750)"}} for t in XML_TYPES}})
    @blp.response(200, Xml130ReportSchema)
    @blp.alt_response(422, **problem("The document is not a usable GIAMDINHHS envelope"))
    def post(self):
        """Import visits from Vietnam's insurance XML (XML1, XML2, XML4, XML5), keyed by MA_LK

        DTDs and entities are refused. Each record is accepted or rejected on its own.
        """
        request.max_content_length = runtime().settings.xml130_max_bytes
        report = xml130_import.import_envelope(request_context(), request.get_data(cache=False))
        return {"facility_code": report.facility_code, "records": report.records,
                "summary": report.summary}
