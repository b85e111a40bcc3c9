"""Hostile input against every operation of the OpenAPI document, with every role's token: no 5xx.

Issue 12's "Done when". For each operation and each role the access table allows on it (plus
anonymous), a good body (the README walkthrough's, or one built for the operation) is sent with one
field at a time replaced by a hostile value from ``tests.hostile`` (lone surrogates, invalid UTF-8,
NFD text, control characters, strings at and past their documented maximum, nesting up to 100,000
deep, 5,000-digit integers, ``1e999``, ``NaN``, long and surrogate keys, operator objects, wrong
types); then hostile whole bodies and extra members; then each path and query parameter. NDJSON
lines go to the bulk upload and hostile element text to the QĐ 130 import. Roles not allowed on an
operation get a few hostile bodies and must be refused with a problem document.

Every answer must be below 500, and a 4xx must be an ``application/problem+json`` document with
``type`` and ``status``. A refused request (4xx) must not have recorded a successful audit event,
and for the support actions and ``PATCH /me`` the target citizen must be unchanged.

Each test collects every failing case (with the exception and the app line that raised it, read from
the 500's log record) instead of stopping at the first, so one run lists them all. Hypothesis draws
the concrete values: one example is one sweep over every (field, kind) pair of an operation;
``HOSO_HOSTILE_EXAMPLES`` sets the number of sweeps (default 1), ``HOSO_HOSTILE_REPORT`` names a
JSON-lines file that receives every failure.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from flask import Flask, current_app
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app import create_app
from app.runtime import runtime
from app.services.signing_keys import init_keys
from app.web import access
from tests import hostile
from tests.conftest import drop_database, make_settings
from tests.data.xml130 import make_fixtures as xml130
from tests.helpers import (
    COMMITTED,
    CitizenActions,
    StaffActions,
    citizen_body,
    create_facility_client,
    facility_token,
    system_context,
)
from tests.records_data import immunization_body, visit_body

V1 = "/api/v1"
EXAMPLES = int(os.environ.get("HOSO_HOSTILE_EXAMPLES", "1"))
REPORT = os.environ.get("HOSO_HOSTILE_REPORT")
APP_DIR = str(Path(__file__).parents[3] / "app")
DOCUMENT = json.loads(COMMITTED.read_text())
RECURSION_LIMIT = sys.getrecursionlimit()  # before Hypothesis changes it
OPERATIONS = [
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if method in ("get", "post", "put", "patch", "delete")
]
ROLES = (access.ANONYMOUS, access.ADMIN, access.SUPPORT, access.FACILITY, access.CITIZEN)
# Operations that end the calling session (or every session of the citizen): a fresh one per case.
SESSION_ENDING = {("POST", f"{V1}/auth/logout"), ("DELETE", f"{V1}/me/sessions/{{session_id}}")}
# Answers other than problem documents that a 4xx may be: RFC 6749 errors of the token endpoint.
OAUTH = ("POST", f"{V1}/oauth/token")
BODIES = hostile.body_strategies()
VN_RULES = json.loads((Path(__file__).parents[3] / "app" / "data" / "dcc-rules" / "VN.json").read_text("utf-8"))
REFUSED_KINDS = ("body-deep-nesting", "body-lone-surrogate", "body-huge-integer")
HOSTILE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                            suppress_health_check=list(HealthCheck),
                            phases=[Phase.explicit, Phase.generate])


def allowed_roles(method: str, path: str) -> frozenset[str]:
    """Roles the access table allows on a documented operation (``{uvci}`` is ``<path:uvci>``)."""
    for (rule_method, rule), roles in access.ROUTE_ROLES.items():
        if rule_method == method and re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule) == path:
            return roles
    return frozenset()


def mode_of(role: str, allowed: frozenset[str]) -> str:
    """``allowed``; ``token-ignored`` on a public operation (a token is not needed); ``refused``."""
    if role in allowed:
        return "allowed"
    return "token-ignored" if access.ANONYMOUS in allowed else "refused"


def role_cases() -> Iterator[Any]:
    for method, path in OPERATIONS:
        allowed = allowed_roles(method, path)
        for role in ROLES:
            mode = mode_of(role, allowed)
            yield pytest.param(method, path, role, mode, id=f"{method} {path} as {role} ({mode})")


@contextmanager
def production_recursion_limit() -> Iterator[None]:
    """Python's own recursion limit while the app runs: Hypothesis raises it for its tests, which
    would hide a RecursionError that the deep-nesting cases raise in production."""
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(raised)


# --- the world the cases run in -----------------------------------------------------------------------


class ErrorRecords(logging.Handler):
    """Keeps the exceptions the app logged (its 500 handler logs them with ``exc_info``)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.exceptions: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.exceptions.append(record.exc_info[1])


@dataclass
class World:
    """Accounts, records and ids that good bodies refer to; renewed when a case used one up."""

    app: Flask
    staff: StaffActions
    citizens: CitizenActions
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    serials: Iterator[int] = field(default_factory=lambda: itertools.count(500_000))
    codes: Iterator[int] = field(default_factory=lambda: itertools.count(10_000))
    fresh: dict[str, Any] = field(default_factory=dict)

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.citizens.client

    def citizen_session(self, national_id: str | None = None) -> tuple[str, str, str]:
        """A new session of a citizen: (access token, refresh token, session id)."""
        from app.models.citizen import Citizen
        from app.runtime import runtime
        from app.services.sessions import start_session
        from app.web.auth import request_context

        with current_app.test_request_context():
            citizen = Citizen.objects.get(national_id=national_id or self.ids["national_id"])
            issued = start_session(request_context(), runtime().accounts, citizen, "hostile", None)
        return issued.access_token, issued.refresh_token, issued.session_id

    def token(self, role: str, fresh_session: bool = False) -> str | None:
        if role == access.ANONYMOUS:
            return None
        if role == access.CITIZEN and fresh_session:
            return self.citizen_session()[0]
        return self.tokens[role]

    def serial(self) -> int:
        return next(self.serials)

    def renew(self, name: str) -> None:
        """Forget a used-up account of a flow whose credentials work once (TOTP and activation
        codes, lockout counters); the next case gets a new one."""
        self.fresh.pop(name, None)

    def get(self, name: str) -> Any:
        """The current account for a flow, made when there is none."""
        if name not in self.fresh:
            self.fresh[name] = FRESH[name](self)
        return self.fresh[name]


def _enrolled(w: World) -> Any:
    return w.citizens.enrol(serial=w.serial())


def _pending(w: World) -> dict[str, str]:
    body = citizen_body(w.serial())
    registered = w.citizens.register(body)
    assert registered.status_code == 201, registered.json
    return {"national_id": body["national_id"], "activation_code": registered.json["activation_code"]}


def _enrolling(w: World) -> dict[str, str]:
    pending = _pending(w)
    activated = w.citizens.activate(pending["national_id"], pending["activation_code"])
    assert activated.status_code == 200, activated.json
    return activated.json


def _staff_account(w: World) -> Any:
    return w.staff.create(f"login-{uuid.uuid4().hex[:8]}", "support")


def _oauth_client(w: World) -> tuple[str, str]:
    return create_facility_client("01001")


FRESH: dict[str, Callable[[World], Any]] = {
    "enrolled": _enrolled, "pending": _pending, "enrolling": _enrolling,
    "staff_account": _staff_account, "oauth_client": _oauth_client,
}


@pytest.fixture(scope="module")
def world(mongodb_server, tmp_path_factory) -> Iterator[World]:
    """One app for the module (limits out of the way), its accounts, records and their ids."""
    settings_ = make_settings(mongodb_server, tmp_path_factory.mktemp("hostile"),
                              rate_limit_default="1000000 per minute",
                              rate_limit_auth_per_ip="1000000 per minute")
    app = create_app(settings_)
    errors = ErrorRecords()
    loggers = [logging.getLogger("hoso"), app.logger]  # app.logger: errors inside error handlers
    for logger in loggers:
        logger.addHandler(errors)
    with app.app_context():
        client = app.test_client()
        w = World(app, StaffActions(app, client), CitizenActions(client))
        app.config["HOSTILE_ERRORS"] = errors
        w.tokens = {access.ADMIN: w.staff.token("admin"), access.SUPPORT: w.staff.token("support"),
                    access.FACILITY: facility_token("01001")}
        alice = w.citizens.enrol()
        w.ids["national_id"] = alice.national_id
        w.fresh["citizen"] = alice  # the account behind the citizen token (never renewed)
        w.tokens[access.CITIZEN] = alice.access_token
        facility = {"Authorization": f"Bearer {w.tokens[access.FACILITY]}"}
        assert client.put(f"{V1}/facility/visits/LK1", json=visit_body(), headers=facility).status_code < 300
        assert client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(),
                          headers=facility).status_code < 300
        me = alice.headers
        init_keys(system_context(), runtime().settings)
        w.ids["visit_id"] = client.get(f"{V1}/me/visits", headers=me).json["items"][0]["id"]
        w.ids["immunization_id"] = client.get(f"{V1}/me/immunizations", headers=me).json["items"][0]["id"]
        passport = client.post(f"{V1}/me/passports", headers=me).json
        w.ids["uvci"], w.ids["hc1"] = passport["uvci"], passport["hc1"]
        share = client.post(f"{V1}/me/shares", json={"scope": ["immunizations"], "expires_in_hours": 2},
                            headers=me).json
        w.ids["share_code"] = share["code"]
        w.ids["share_id"] = client.post(f"{V1}/me/shares", json={"scope": ["visits"], "expires_in_hours": 1},
                                        headers=me).json["id"]  # another one, for the revocation
        device = client.post(f"{V1}/me/devices", json={"platform": "android", "push_token": "x" * 40},
                             headers=me).json
        w.ids["device_id"] = device["id"]
        inbox = client.get(f"{V1}/me/notifications", headers=me).json["items"]
        w.ids["message_id"] = inbox[0]["id"] if inbox else "0" * 24
        w.ids["session_id"] = w.citizen_session()[2]
        w.ids["client_id"] = create_facility_client("01002")[0]
        w.ids["support_target"] = w.citizens.enrol(serial=333_333).national_id
        xml_clinic = facility_token("79012")
        w.tokens["xml130"] = xml_clinic
        yield w
    for logger in loggers:
        logger.removeHandler(errors)
    drop_database(settings_)


# --- good requests, one per operation -----------------------------------------------------------------


@dataclass
class Good:
    """A request that the operation accepts (or refuses for a business reason), to be mutated."""

    body: Callable[[World], Any] | None = None
    path: Callable[[World], dict[str, str]] = lambda w: {}
    query: dict[str, str] = field(default_factory=dict)
    form: bool = False
    # after a case: the named fresh account was used up unless the request was refused as malformed
    spends: str | None = None
    # a snapshot that a refused (4xx) request must leave as it was
    snapshot: Callable[[World], Any] | None = None


def _citizen_doc(national_id: str) -> dict[str, Any]:
    from app.models.citizen import Citizen

    document = Citizen.objects.get(national_id=national_id).to_mongo().to_dict()
    document.pop("last_seen_at", None)
    return document


def _support_snapshot(w: World) -> Any:
    from app.models.session import Session

    target = _citizen_doc(w.ids["support_target"])
    return target, Session.objects(citizen_id=target["_id"]).count()


def _me_snapshot(w: World) -> Any:
    return _citizen_doc(w.ids["national_id"])


def _login(w: World) -> dict[str, Any]:
    account = w.get("enrolled")
    return {"national_id": account.national_id, "password": account.password,
            "totp_code": account.code(1), "device_label": "Pixel 8"}


def _confirm(w: World) -> dict[str, Any]:
    from app.clock import utcnow
    from app.security import totp

    enrolling = w.get("enrolling")
    return {"enrollment_token": enrolling["enrollment_token"], "device_label": "Pixel 8",
            "totp_code": totp.code_for_step(enrolling["totp_secret"], totp.step_at(utcnow()))}


def _staff_login(w: World) -> dict[str, Any]:
    account = w.get("staff_account")
    return {"username": account.username, "password": account.password, "totp_code": account.code()}


def _oauth(w: World) -> dict[str, Any]:
    client_id, secret = w.get("oauth_client")
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


IDENTITY_CHECK = {"document_type": "cccd", "method": "video_call"}
PROFILE = {"email": "nam@example.org", "phone": "0912345678", "language": "vi",
           "address": {"line": "Số 12 ngõ 34 phố Láng Hạ", "province_code": "01", "ward_code": "00001"},
           "notification_preferences": {"record_added": {"sms": True, "email": False, "push": True}}}
PAGING = {"limit": "5"}
GOOD: dict[tuple[str, str], Good] = {
    ("GET", f"{V1}/admin/audit"): Good(query={
        "limit": "5", "action": "citizen.login", "actor_type": "citizen", "actor_id": "x",
        "citizen_id": "0" * 24, "outcome": "success", "from": "2026-01-01T00:00:00Z",
        "to": "2026-12-31T00:00:00Z"}),
    ("GET", f"{V1}/admin/facilities"): Good(query=PAGING),
    ("POST", f"{V1}/admin/facilities"): Good(lambda w: {
        "code": f"H{next(w.codes) % 10_000:04d}", "name": "Bệnh viện Bạch Mai", "province": "Hà Nội",
        "level": "Trung ương"}),
    ("GET", f"{V1}/admin/facilities/{{code}}/clients"): Good(path=lambda w: {"code": "01001"}, query=PAGING),
    ("POST", f"{V1}/admin/facilities/{{code}}/clients"): Good(lambda w: {"label": "HIS"},
                                                              path=lambda w: {"code": "01002"}),
    ("DELETE", f"{V1}/admin/facilities/{{code}}/clients/{{client_id}}"): Good(
        path=lambda w: {"code": "01002", "client_id": w.ids["client_id"]}),
    ("GET", f"{V1}/admin/notifications"): Good(query={"limit": "5", "status": "pending"}),
    ("POST", f"{V1}/admin/passports/{{uvci}}/revoke"): Good(
        lambda w: {"reason": "Cấp nhầm người"}, path=lambda w: {"uvci": w.ids["uvci"]}),
    ("POST", f"{V1}/admin/staff"): Good(lambda w: {"username": f"hotline{next(w.codes)}", "role": "support"}),
    ("POST", f"{V1}/auth/activate"): Good(lambda w: {
        **w.get("pending"), "password": "Mây trắng bay qua đồi 2026"}, spends="pending"),
    ("POST", f"{V1}/auth/activate/confirm"): Good(_confirm, spends="enrolling"),
    ("POST", f"{V1}/auth/login"): Good(_login, spends="enrolled"),
    ("POST", f"{V1}/auth/reauthenticate"): Good(lambda w: {
        "password": w.fresh["citizen"].password, "totp_code": w.fresh["citizen"].code(1)}),
    ("POST", f"{V1}/auth/refresh"): Good(lambda w: {"refresh_token": w.citizen_session()[1]}),
    ("POST", f"{V1}/facility/citizens"): Good(lambda w: citizen_body(w.serial())),
    ("PUT", f"{V1}/facility/immunizations/{{source_id}}"): Good(
        lambda w: immunization_body(), path=lambda w: {"source_id": f"IMH{next(w.codes)}"}),
    ("PUT", f"{V1}/facility/visits/{{source_id}}"): Good(
        lambda w: visit_body(), path=lambda w: {"source_id": f"LKH{next(w.codes)}"}),
    ("PATCH", f"{V1}/me"): Good(lambda w: PROFILE, snapshot=_me_snapshot),
    ("GET", f"{V1}/me/access-log"): Good(query=PAGING),
    ("POST", f"{V1}/me/devices"): Good(lambda w: {"platform": "ios", "push_token": "apns-" + "a" * 60}),
    ("DELETE", f"{V1}/me/devices/{{device_id}}"): Good(path=lambda w: {"device_id": w.ids["device_id"]}),
    ("GET", f"{V1}/me/export"): Good(query={"since": "2026-01-01T00:00:00Z"}),
    ("GET", f"{V1}/me/immunizations"): Good(query=PAGING),
    ("GET", f"{V1}/me/immunizations/{{immunization_id}}"): Good(
        path=lambda w: {"immunization_id": w.ids["immunization_id"]}),
    ("POST", f"{V1}/me/immunizations/{{immunization_id}}/reactions"): Good(
        lambda w: {"description": "Sốt nhẹ, đau chỗ tiêm", "onset_at": "2021-09-16T08:00:00+07:00",
                   "severity": "mild"},
        path=lambda w: {"immunization_id": w.ids["immunization_id"]}),
    ("GET", f"{V1}/me/notifications"): Good(query=PAGING),
    ("POST", f"{V1}/me/notifications/{{message_id}}/read"): Good(
        path=lambda w: {"message_id": w.ids["message_id"]}),
    ("GET", f"{V1}/me/passports/{{uvci}}/qr.png"): Good(path=lambda w: {"uvci": w.ids["uvci"]}),
    ("GET", f"{V1}/me/passports/{{uvci}}/qr.svg"): Good(path=lambda w: {"uvci": w.ids["uvci"]}),
    ("GET", f"{V1}/me/prescriptions"): Good(query=PAGING),
    ("DELETE", f"{V1}/me/sessions/{{session_id}}"): Good(path=lambda w: {"session_id": w.ids["session_id"]}),
    ("POST", f"{V1}/me/shares"): Good(lambda w: {"scope": ["immunizations", "visits"], "expires_in_hours": 2}),
    ("DELETE", f"{V1}/me/shares/{{share_id}}"): Good(path=lambda w: {"share_id": w.ids["share_id"]}),
    ("GET", f"{V1}/me/visits"): Good(query={
        "limit": "5", "from": "2026-01-01T00:00:00+07:00", "to": "2026-12-31T00:00:00+07:00", "facility": "01001"}),
    ("GET", f"{V1}/me/visits/{{visit_id}}"): Good(path=lambda w: {"visit_id": w.ids["visit_id"]}),
    ("POST", f"{V1}/oauth/token"): Good(_oauth, form=True, spends="oauth_client"),
    ("POST", f"{V1}/passport/verify"): Good(lambda w: {"hc1": w.ids["hc1"], "country": "VN",
                                                       "at": "2026-12-01T09:00:00+07:00"}),
    # its X-RESUME-TOKEN header has its own hostile cases in test_dcc_gateway.py
    ("GET", f"{V1}/passport/dcc/signercertificateUpdate"): Good(),
    ("GET", f"{V1}/passport/rules"): Good(),
    ("GET", f"{V1}/passport/rules/{{country}}"): Good(path=lambda w: {"country": "VN"}),
    ("GET", f"{V1}/admin/passport-rules/{{country}}"): Good(path=lambda w: {"country": "VN"}),
    ("PUT", f"{V1}/admin/passport-rules/{{country}}"): Good(lambda w: {"rules": VN_RULES},
                                                            path=lambda w: {"country": "VN"}),
    ("POST", f"{V1}/shared-records"): Good(lambda w: {"code": w.ids["share_code"]}),
    ("POST", f"{V1}/staff/login"): Good(_staff_login, spends="staff_account"),
    ("GET", f"{V1}/support/citizens/{{national_id}}"): Good(
        path=lambda w: {"national_id": w.ids["support_target"]}),
    ("POST", f"{V1}/support/citizens/{{national_id}}/access-reset"): Good(
        lambda w: {"reason": "Mất điện thoại, đã xác minh qua cuộc gọi video",
                   "identity_check": {**IDENTITY_CHECK, "document_number_last4": w.ids["support_target"][-4:]}},
        path=lambda w: {"national_id": w.ids["support_target"]}, snapshot=_support_snapshot),
    ("POST", f"{V1}/support/citizens/{{national_id}}/lock"): Good(
        lambda w: {"reason": "Nghi ngờ bị chiếm đoạt tài khoản"},
        path=lambda w: {"national_id": w.ids["support_target"]}, snapshot=_support_snapshot),
    ("POST", f"{V1}/support/citizens/{{national_id}}/unlock"): Good(
        lambda w: {"reason": "Đã xác minh lại chủ tài khoản"},
        path=lambda w: {"national_id": w.ids["support_target"]}, snapshot=_support_snapshot),
}
BULK = ("POST", f"{V1}/facility/bulk")
XML130 = ("POST", f"{V1}/facility/xml130")


def test_every_documented_operation_has_a_good_request():
    """A new operation needs a good request here (or needs none: no body, path or query)."""
    special = {BULK, XML130}
    for method, path in OPERATIONS:
        operation = DOCUMENT["paths"][path][method.lower()]
        needs = "{" in path or "requestBody" in operation or operation.get("parameters")
        if needs and (method, path) not in special:
            assert (method, path) in GOOD, f"{method} {path}"


def test_good_requests_are_accepted(world):
    """The unmutated requests succeed, so that each mutation is what a refusal is about.

    Runs before the hostile tests (file order), while the revocable passport, the deletable
    device, client and share and the lockable citizen are as the fixture made them.
    """
    refused = []
    with world.app.app_context():
        for (method, path), good in GOOD.items():
            if (method, path) in SESSION_ENDING or good.spends == "oauth_client":
                continue
            role = next(iter(sorted(allowed_roles(method, path) - {access.ANONYMOUS})), access.ANONYMOUS)
            token = world.token(role)
            content_type = "application/x-www-form-urlencoded" if good.form else "application/json"
            body = None
            if good.body:
                fields = good.body(world)
                body = (form_with(fields, "", "") if good.form
                        else json.dumps(fields, ensure_ascii=False).encode())
            query = query_string(good.query)
            url = url_of(path, encode_params(good.path(world))) + (f"?{query}" if query else "")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = world.client.open(url, method=method, data=body,
                                         headers={**headers, "Content-Type": content_type})
            if good.spends:
                world.renew(good.spends)
            missing_message = "message_id" in path and world.ids["message_id"] == "0" * 24
            if response.status_code >= 400 and not (missing_message and response.status_code == 404):
                refused.append(f"{method} {path} as {role}: {response.status_code} {response.get_data()[:200]!r}")
        lines = [json.dumps(_bulk_line(kind, f"GOOD{kind}"), ensure_ascii=False).encode()
                 for kind in ("visit", "immunization")]
        bulk = world.client.post(f"{V1}/facility/bulk", data=b"\n".join(lines), headers={
            "Authorization": f"Bearer {world.tokens[access.FACILITY]}", "Content-Type": "application/x-ndjson"})
        statuses = [json.loads(line)["status"] for line in bulk.get_data().splitlines()]
        if statuses != [201, 201]:
            refused.append(f"bulk: {statuses}")
        document = xml_document({**xml130.NAM_XML1, "MA_LK": "XGOOD"}, None, b"", inner=True)
        imported = world.client.post(f"{V1}/facility/xml130", data=document, headers={
            "Authorization": f"Bearer {world.tokens['xml130']}", "Content-Type": "application/xml"})
        if [record["status"] for record in imported.json["records"]] != [201]:
            refused.append(f"xml130: {imported.json}")
    assert not refused, "\n".join(refused)


# --- the cases ----------------------------------------------------------------------------------------


@dataclass
class Case:
    """One request to send."""

    where: str  # the mutated field, parameter or line
    kind: str
    path_params: dict[str, str]
    query: str = ""
    body: bytes | None = None
    content_type: str | None = "application/json"


@dataclass
class Outcome:
    """What a case did, when it is a failure."""

    where: str
    kind: str
    status: int | None
    problem: str
    exception: str = ""
    app_line: str = ""
    sample: str = ""

    def line(self) -> str:
        raised = f" {self.exception} at {self.app_line}" if self.exception else ""
        return f"{self.where} <- {self.kind}: {self.status} {self.problem}{raised} [{self.sample}]"


def schema_of(method: str, path: str) -> dict[str, Any] | None:
    content = DOCUMENT["paths"][path][method.lower()].get("requestBody", {}).get("content", {})
    for media in ("application/json", "application/x-www-form-urlencoded"):
        if media in content:
            return content[media].get("schema")
    return None


def _resolve(schema: dict[str, Any] | None) -> dict[str, Any]:
    while schema:
        if "$ref" in schema:
            schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema
    return {}


def max_length_at(schema: dict[str, Any] | None, path: tuple[str | int, ...]) -> int | None:
    """The documented ``maxLength`` of the member at ``path`` (None when not a bounded string)."""
    node = _resolve(schema)
    for step in path:
        node = _resolve(node.get("items") if isinstance(step, int) else node.get("properties", {}).get(step))
    return node.get("maxLength")


def url_of(path: str, params: dict[str, str]) -> str:
    """The operation's path with its (already percent-encoded) parameters."""
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)


def encode_params(params: dict[str, str]) -> dict[str, str]:
    from urllib.parse import quote

    return {name: quote(value, safe="") for name, value in params.items()}


def query_string(query: dict[str, str], override: tuple[str, str] | None = None) -> str:
    from urllib.parse import quote

    pairs = [(name, quote(value, safe="")) for name, value in query.items()]
    if override:
        pairs = [(name, override[1] if name == override[0] else value) for name, value in pairs]
    return "&".join(f"{name}={value}" for name, value in pairs)


def form_with(fields: dict[str, str], name: str, raw: str) -> bytes:
    """A form body with one field's value replaced by raw (percent-encoded) text."""
    from urllib.parse import quote

    return "&".join(f"{key}={raw if key == name else quote(value, safe='')}"
                    for key, value in fields.items()).encode()


def json_cases(data: st.DataObject, method: str, path: str, good: Good, w: World) -> Iterator[Case]:
    """Every (field, kind) mutation of the good JSON body, then hostile whole bodies and members."""
    schema = schema_of(method, path)
    sample = good.body(w) if good.body else {}
    for index, member in enumerate(hostile.leaf_paths(sample)):
        for kind, strategy in hostile.value_strategies(max_length_at(schema, member)).items():
            if index and kind in hostile.PARSER_KINDS:
                continue
            raw = data.draw(strategy, label=f"{hostile.dotted(member)} {kind}")
            yield Case(hostile.dotted(member), kind, {},
                       body=_Deferred(lambda b, m=member, r=raw: hostile.json_with(b, m, r)))  # type: ignore[arg-type]
    for kind, strategy in hostile.body_strategies().items():
        raw = data.draw(strategy, label=kind)
        yield Case("<body>", kind, {}, body=raw)
    for kind, strategy in hostile.extra_member.items():
        raw = data.draw(strategy, label=kind)
        yield Case("<extra member>", kind, {}, body=_Deferred(lambda b, r=raw: hostile.json_plus(b, r)))  # type: ignore[arg-type]


def form_cases(data: st.DataObject, good: Good, w: World) -> Iterator[Case]:
    for name, value in (good.body(w) if good.body else {}).items():
        for kind, strategy in hostile.text_strategies(value).items():
            raw = data.draw(strategy, label=f"{name} {kind}")
            yield Case(name, kind, {}, body=_Deferred(lambda b, n=name, r=raw: form_with(b, n, r)),  # type: ignore[arg-type]
                       content_type="application/x-www-form-urlencoded")


def parameter_cases(data: st.DataObject, path: str, good: Good, w: World) -> Iterator[Case]:
    for name, value in good.path(w).items():
        for kind, strategy in hostile.text_strategies(value).items():
            raw = data.draw(strategy, label=f"path {name} {kind}")
            yield Case(f"path:{name}", kind, {name: raw})
    for name, value in good.query.items():
        for kind, strategy in hostile.text_strategies(value).items():
            raw = data.draw(strategy, label=f"query {name} {kind}")
            yield Case(f"query:{name}", kind, {}, query=query_string(good.query, (name, raw)))
        yield Case(f"query:{name}", "repeated", {}, query=query_string(good.query) + f"&{name}=1&{name}=2")
        yield Case(f"query:{name}", "bracketed-operator", {},
                   query=query_string(good.query) + f"&{name}[$ne]=1&{name}.$gt=")


class _Deferred:
    """A body built from the case's own fresh good body (fresh ids, fresh accounts)."""

    def __init__(self, build: Callable[[Any], bytes]) -> None:
        self.build = build


# --- sending and judging ------------------------------------------------------------------------------


def send(w: World, method: str, path: str, case: Case, role: str, good: Good | None,
         refused: bool = False) -> Outcome | None:
    """Send a case and judge the answer; an Outcome when it fails.

    ``refused``: the role is not allowed here, so the answer must be 401 (no token) or 403.
    """
    errors: ErrorRecords = w.app.config["HOSTILE_ERRORS"]
    errors.exceptions.clear()
    fresh = (method, path) in SESSION_ENDING
    token = w.token(role, fresh_session=fresh)
    params = encode_params(good.path(w)) if good else {}
    params.update(case.path_params)
    body = case.body
    if isinstance(body, _Deferred):
        fields = good.body(w) if good and good.body else {}
        body = body.build(fields)
    elif body is None and good and good.body and case.content_type != "application/x-www-form-urlencoded":
        body = json.dumps(good.body(w), ensure_ascii=False).encode()
    elif body is None and good and good.body:
        body = form_with(good.body(w), "", "")
    query = case.query or (query_string(good.query) if good else "")
    url = url_of(path, params) + (f"?{query}" if query else "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None and case.content_type:
        headers["Content-Type"] = case.content_type
    snapshot = good.snapshot(w) if good and good.snapshot else None
    last_event = _audit_marker()
    sample = (body or b"")[:80].decode("utf-8", "backslashreplace") if body else url[:120]
    try:
        response = w.client.open(url, method=method, data=body, headers=headers)
        status, payload, mimetype = response.status_code, response.get_data(), response.mimetype
    except Exception as error:  # noqa: BLE001 - a broken answer is the finding
        return _failure(case, None, "the request raised in the app (connection cut)", error, sample)
    outcome = judge(w, method, path, case, token, refused, status, payload, mimetype, sample, good,
                    snapshot, last_event)
    if good and good.spends and status not in (400, 413, 415, 422):
        w.renew(good.spends)  # after judging: the new account's own audit events are not the case's
    return outcome


def judge(w: World, method: str, path: str, case: Case, token: str | None, refused: bool, status: int,
          payload: bytes, mimetype: str, sample: str, good: Good | None, snapshot: Any,
          last_event: Any) -> Outcome | None:
    """Why an answer fails (None when it passes)."""
    errors: ErrorRecords = w.app.config["HOSTILE_ERRORS"]
    if status >= 500:
        exception = errors.exceptions[-1] if errors.exceptions else None
        return _failure(case, status, _problem_slug(payload), exception, sample)
    if refused and status != (401 if token is None else 403):
        return Outcome(case.where, case.kind, status, f"a role not allowed here got {status}", sample=sample)
    if status >= 400:
        bad = _not_a_problem((method, path), status, payload, mimetype)
        if bad:
            return Outcome(case.where, case.kind, status, bad, sample=sample)
        if _successes_since(last_event):
            return Outcome(case.where, case.kind, status, "refused, yet a success audit event was written",
                           sample=sample)
        if snapshot is not None and good and good.snapshot and good.snapshot(w) != snapshot:
            return Outcome(case.where, case.kind, status, "refused, yet the target changed", sample=sample)
    return None


def _audit_marker() -> ObjectId:
    """An id that every later audit event's id exceeds (pymongo makes ids in this process, in order;
    a marker costs no query, where a sorted read would scan the whole collection here)."""
    return ObjectId()


def _successes_since(marker: ObjectId) -> int:
    from app.models.audit import AuditEvent

    return AuditEvent.objects(id__gt=marker, outcome="success").count()


def _problem_slug(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("type"))
    except (ValueError, AttributeError):
        return payload[:80].decode("utf-8", "replace")


def _not_a_problem(operation: tuple[str, str], status: int, payload: bytes, mimetype: str) -> str | None:
    """Why a 4xx answer is not an acceptable error document (None when it is)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return f"4xx body is not JSON ({mimetype})"
    if operation == OAUTH and mimetype == "application/json" and "error" in document:
        return None
    if mimetype != "application/problem+json":
        return f"4xx is {mimetype}, not application/problem+json"
    if not isinstance(document, dict) or "type" not in document or document.get("status") != status:
        return "4xx problem without type/status"
    return None


def _failure(case: Case, status: int | None, problem: str, error: BaseException | None,
             sample: str) -> Outcome:
    if error is None:
        return Outcome(case.where, case.kind, status, problem, "(no exception logged)", sample=sample)
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if frame.filename.startswith(APP_DIR)]
    libraries = [frame for frame in frames if "site-packages" in frame.filename]
    where = ours[-1] if ours else (libraries[-1] if libraries else (frames[-1] if frames else None))
    app_line = f"{_short(where.filename)}:{where.lineno} {where.name}" if where else "?"
    last = frames[-1] if frames else None
    if last and where is not last:
        app_line += f" (raised in {_short(last.filename)}:{last.lineno})"
    message = str(error).splitlines()[0][:120] if str(error) else ""
    return Outcome(case.where, case.kind, status, problem, f"{type(error).__name__}: {message}", app_line,
                   sample)


def _short(filename: str) -> str:
    if filename.startswith(APP_DIR):
        return os.path.relpath(filename, Path(APP_DIR).parent)
    return f"{Path(filename).parent.name}/{Path(filename).name}"


def report(method: str, path: str, role: str, failures: dict[tuple[str, ...], Outcome]) -> None:
    """Fail with every distinct failure of this operation and role (and log them for the lead)."""
    if REPORT and failures:
        with open(REPORT, "a", encoding="utf-8") as out:
            for outcome in failures.values():
                out.write(json.dumps({"operation": f"{method} {path}", "role": role, **outcome.__dict__},
                                     ensure_ascii=False) + "\n")
    if failures:
        lines = "\n".join(outcome.line() for outcome in failures.values())
        pytest.fail(f"{len(failures)} hostile input(s) broke {method} {path} as {role}:\n{lines}",
                    pytrace=False)


def record(failures: dict[tuple[str, ...], Outcome], outcome: Outcome | None) -> None:
    if outcome is not None:
        key = (outcome.where, outcome.kind, str(outcome.status), outcome.exception.split(":")[0],
               outcome.app_line, outcome.problem if not outcome.exception else "")
        failures.setdefault(key, outcome)


# --- the tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, role, mode", list(role_cases()))
def test_hostile_input_gets_no_5xx(world, method, path, role, mode):
    operation = (method, path)
    if operation in (BULK, XML130) and mode == "allowed":
        pytest.skip("NDJSON lines and XML text have their own tests below")
    good = GOOD.get(operation, Good())
    failures: dict[tuple[str, ...], Outcome] = {}

    @HOSTILE_SETTINGS
    @given(data=st.data())
    def sweep(data):
        with world.app.app_context(), production_recursion_limit():
            if mode != "allowed":
                # a role the table does not allow is refused before its body is read; on a public
                # operation a token is not needed, and hostile bodies must still get no 5xx
                for kind in REFUSED_KINDS:
                    case = Case("<body>", kind, {}, body=data.draw(BODIES[kind], label=kind))
                    record(failures, send(world, method, path, case, role, good,
                                          refused=mode == "refused"))
                return
            cases: list[Iterator[Case]] = [parameter_cases(data, path, good, world)]
            if good.form:
                cases.append(form_cases(data, good, world))
            elif schema_of(method, path) or good.body:
                cases.append(json_cases(data, method, path, good, world))
            else:
                # an operation without a body must ignore (or refuse) a hostile one
                cases.append(iter(Case("<stray body>", kind, {}, body=data.draw(strategy, label=kind))
                                  for kind, strategy in hostile.body_strategies().items()))
            for case in itertools.chain(*cases):
                record(failures, send(world, method, path, case, role, good))

    sweep()
    report(method, path, role, failures)


# --- NDJSON bulk: each line gets its own answer line --------------------------------------------------


def _bulk_line(kind: str, source_id: str) -> dict[str, Any]:
    body = visit_body() if kind == "visit" else immunization_body()
    return {"type": kind, "source_id": source_id, **body}


def bulk_send(w: World, lines: list[bytes], where: str, kind: str) -> Outcome | None:
    errors: ErrorRecords = w.app.config["HOSTILE_ERRORS"]
    errors.exceptions.clear()
    payload = b"\n".join(lines) + b"\n"
    sample = b" | ".join(line[:60] for line in lines).decode("utf-8", "backslashreplace")[:160]
    try:
        response = w.client.post(f"{V1}/facility/bulk", data=payload, headers={
            "Authorization": f"Bearer {w.tokens[access.FACILITY]}", "Content-Type": "application/x-ndjson"})
        status, body = response.status_code, response.get_data()
    except Exception as error:  # noqa: BLE001 - the stream broke mid-answer
        return _failure(Case(where, kind, {}), 200, "the answer stream broke", error, sample)
    if status >= 500:
        exception = errors.exceptions[-1] if errors.exceptions else None
        return _failure(Case(where, kind, {}), status, _problem_slug(body), exception, sample)
    if status >= 400:
        bad = _not_a_problem(BULK, status, body, response.mimetype)
        return Outcome(where, kind, status, bad, sample=sample) if bad else None
    try:
        answers = [json.loads(line) for line in body.splitlines()]
    except ValueError:
        return Outcome(where, kind, status, "an answer line is not JSON", sample=sample)
    expected = [n for n, line in enumerate(lines, 1) if line.strip()]
    if [answer.get("line") for answer in answers] != expected:
        return Outcome(where, kind, status, f"answer lines {[a.get('line') for a in answers]} "
                       f"for input lines {expected}", sample=sample)
    broken = [answer for answer in answers if answer.get("status", 0) >= 500]
    if broken:
        exception = errors.exceptions[-1] if errors.exceptions else None
        return _failure(Case(where, kind, {}), broken[0]["status"], f"a line answered {broken[0]}",
                        exception, sample)
    return None


@pytest.mark.parametrize("kind", ["visit", "immunization"])
def test_hostile_ndjson_lines_each_get_an_answer(world, kind):
    failures: dict[tuple[str, ...], Outcome] = {}
    counter = itertools.count()
    schema = {"type": "object", "properties": {
        "type": {"type": "string"}, "source_id": {"type": "string", "maxLength": 64},
        **_resolve({"$ref": f"#/components/schemas/{'VisitPush' if kind == 'visit' else 'ImmunizationPush'}"})[
            "properties"]}}

    @HOSTILE_SETTINGS
    @given(data=st.data())
    def sweep(data):
        with world.app.app_context(), production_recursion_limit():
            good = _bulk_line(kind, "BULKGOOD")
            cases: list[tuple[str, str, bytes]] = []
            # nested members are the PUT routes' schemas (tested there); a line's own parsing is here
            for index, member in enumerate((key,) for key in good):
                for name, strategy in hostile.value_strategies(max_length_at(schema, member)).items():
                    if index and name in hostile.PARSER_KINDS:
                        continue
                    raw = data.draw(strategy, label=f"{hostile.dotted(member)} {name}")
                    line_body = {**good, "source_id": f"BH{next(counter)}"}
                    cases.append((hostile.dotted(member), name, hostile.json_with(line_body, member, raw)))
            for name, strategy in hostile.body_strategies().items():
                cases.append(("<line>", name, data.draw(strategy, label=name)))
            cases.append(("<line>", "over-64-KiB", b'{"a": "' + b"x" * 70_000 + b'"}'))
            cases.append(("<line>", "lone-CR-and-NUL", b"\r\x00\r"))
            # the same good lines each time: after the first upload they are unchanged (no writes)
            before = json.dumps({**good, "source_id": f"BA-{kind}"}, ensure_ascii=False).encode()
            after = json.dumps({**good, "source_id": f"BZ-{kind}"}, ensure_ascii=False).encode()
            for where, name, raw in cases:
                # a hostile line between two good ones: three answers, in order
                record(failures, bulk_send(world, [before, raw, after], where, name))

    sweep()
    report("POST", f"{V1}/facility/bulk", f"facility ({kind} lines)", failures)


# --- QĐ 130 XML: hostile text in an element -----------------------------------------------------------

XML1_FIELDS = ("HO_TEN", "SO_CCCD", "NGAY_SINH", "GIOI_TINH", "NGAY_VAO", "NGAY_RA", "MA_BENH_CHINH",
               "MA_BENH_KT", "LY_DO_VV", "CHAN_DOAN_RV", "GHI_CHU", "MA_LK", "MA_LOAI_KCB", "MA_KHOA",
               "MA_CSKCB", "NGAY_TAI_KHAM", "DIA_CHI")
SENTINEL = "HOSTILEVALUE"


def xml_texts() -> dict[str, st.SearchStrategy[bytes]]:
    """Hostile element content as raw XML bytes (not escaped: char refs and bytes are the point)."""
    return {
        "control-char-ref": st.sampled_from((b"&#0;", b"&#1;", b"&#x1B;", b"Nam&#x7;", b"&#x85;&#x9F;")),
        "raw-control-bytes": hostile.with_controls().map(lambda s: s.encode("utf-8", "surrogatepass")),
        "surrogate-char-ref": st.sampled_from((b"&#xD800;", b"Nguy&#xDFFF;n", b"&#55296;")),
        "invalid-utf8": st.sampled_from((b"\xff", b"Nguy\xe1\xbb", b"\xed\xa0\x80", b"\xc0\xaf")),
        "nfd": hostile.nfd.map(str.encode),
        "over-long": st.sampled_from((201, 1_001, 100_000)).map(lambda n: "ễ".encode() * n),
        "huge-number": st.integers(4_301, 20_000).map(lambda n: b"9" * n),
        "deep-elements": st.sampled_from((1_000, 3_000, 100_000)).map(lambda n: b"<a>" * n + b"</a>" * n),
        "undefined-entity": st.just(b"&hoso;"),
        "cdata": st.just(b"<![CDATA[</HO_TEN><MA_LK>X</MA_LK>]]>"),
        "operator-text": st.just(b'{"$ne": ""}'),
    }


def xml_document(xml1: dict[str, str], field_name: str | None, raw: bytes, *, inner: bool) -> bytes:
    """An envelope with one record; ``raw`` replaces an XML1 field (inner) or the MACSKCB (outer)."""
    fields = {**xml1}
    if field_name:
        fields[field_name] = SENTINEL
    table = xml130.summary(fields)
    if inner:
        table = table.replace(SENTINEL.encode(), raw)
    document = xml130.envelope([[("XML1", table)]])
    if not inner:
        document = document.replace(b"<MACSKCB>79012</MACSKCB>", b"<MACSKCB>" + raw + b"</MACSKCB>")
    return document


def test_hostile_xml130_text_gets_no_5xx(world):
    failures: dict[tuple[str, ...], Outcome] = {}
    counter = itertools.count()

    @HOSTILE_SETTINGS
    @given(data=st.data())
    def sweep(data):
        with world.app.app_context(), production_recursion_limit():
            for where in (*XML1_FIELDS, "envelope MACSKCB", "NOIDUNGFILE"):
                for kind, strategy in xml_texts().items():
                    raw = data.draw(strategy, label=f"{where} {kind}")
                    xml1 = {**xml130.NAM_XML1, "MA_LK": f"XH{next(counter)}"}
                    if where == "NOIDUNGFILE":
                        document = xml130.envelope([[("XML1", "")]]).replace(
                            b"<NOIDUNGFILE></NOIDUNGFILE>", b"<NOIDUNGFILE>" + raw + b"</NOIDUNGFILE>")
                    elif where.startswith("envelope"):
                        document = xml_document(xml1, None, raw, inner=False)
                    else:
                        document = xml_document(xml1, where, raw, inner=True)
                    record(failures, xml_send(world, document, where, kind))

    sweep()
    report("POST", f"{V1}/facility/xml130", "facility", failures)


def xml_send(w: World, document: bytes, where: str, kind: str) -> Outcome | None:
    errors: ErrorRecords = w.app.config["HOSTILE_ERRORS"]
    errors.exceptions.clear()
    sample = f"{len(document)} bytes"
    try:
        response = w.client.post(f"{V1}/facility/xml130", data=document, headers={
            "Authorization": f"Bearer {w.tokens['xml130']}", "Content-Type": "application/xml"})
    except Exception as error:  # noqa: BLE001
        return _failure(Case(where, kind, {}), None, "the request raised", error, sample)
    status, body = response.status_code, response.get_data()
    if status >= 500:
        exception = errors.exceptions[-1] if errors.exceptions else None
        return _failure(Case(where, kind, {}), status, _problem_slug(body), exception, sample)
    if status >= 400:
        bad = _not_a_problem(XML130, status, body, response.mimetype)
        return Outcome(where, kind, status, bad, sample=sample) if bad else None
    broken = [r for r in response.json["records"] if r.get("status", 0) >= 500]
    if broken:
        exception = errors.exceptions[-1] if errors.exceptions else None
        return _failure(Case(where, kind, {}), broken[0]["status"], f"a record answered {broken[0]}",
                        exception, sample)
    return None
