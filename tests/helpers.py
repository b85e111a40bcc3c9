"""Test helpers shared by test modules: repeated HTTP flows (like flaskr's AuthActions), problem checks,
ports, request bodies. Test modules import from here (or a conftest fixture), never from each other."""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient

from app.clock import utcnow
from app.runtime import runtime
from app.security import totp
from app.security.tokens import TokenType
from app.services import facilities
from app.services import staff as staff_service
from app.services.audit import SYSTEM_ACTOR, RequestContext
from app.web.problems import PROBLEM_MIMETYPE

COMMITTED = Path(__file__).parents[1] / "openapi" / "openapi.json"  # the API contract, as committed
PROBLEM_KEYS = {"type", "title", "status", "instance", "request_id"}
NDJSON = "application/x-ndjson"
RESET = {"reason": "Lost phone, called the hotline",
         "identity_check": {"document_type": "cccd", "document_number_last4": "3456",
                            "method": "video_call"}}


def system_context() -> RequestContext:
    """An audit context for set-up done by the test itself."""
    return RequestContext(actor=SYSTEM_ACTOR, now=utcnow(), request_id="test")


def totp_secret_of(uri: str) -> str:
    """The base32 secret inside an ``otpauth://`` URI."""
    return parse_qs(urlsplit(uri).query)["secret"][0]


@dataclass
class StaffAccount:
    """A staff account created through the service, with its credentials."""

    username: str
    role: str
    password: str
    totp_secret: str

    def code(self, steps_ahead: int = 0) -> str:
        """The TOTP code of the current step (or a later one, within the accepted window)."""
        moment = utcnow() + timedelta(seconds=totp.STEP_SECONDS * steps_ahead)
        return totp.code_for_step(self.totp_secret, totp.step_at(moment))


class StaffActions:
    """Create staff, log in through the API, or mint tokens the production verifier accepts."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self._app = app
        self._client = client

    def create(self, username: str = "alice", role: str = "admin") -> StaffAccount:
        rt = runtime()
        new = staff_service.create_staff(
            system_context(), username, role, passwords=rt.passwords, box=rt.box
        )
        return StaffAccount(username, role, new.password, totp_secret_of(new.totp_uri))

    def login(self, account: StaffAccount, steps_ahead: int = 0):  # type: ignore[no-untyped-def]
        return self._client.post(
            "/api/v1/staff/login",
            json={"username": account.username, "password": account.password,
                  "totp_code": account.code(steps_ahead)},
        )

    def token(self, role: str = "admin", username: str | None = None) -> str:
        """A staff token for a fresh account of ``role`` (signed by the app's key)."""
        account = self.create(username or f"{role}-{uuid.uuid4().hex[:8]}", role)
        issued = runtime().tokens.issue(account.username, TokenType.STAFF, utcnow(), role=role)
        return issued.token

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


def create_facility_client(code: str = "01001") -> tuple[str, str]:
    """Register a facility and issue a client; returns (client_id, client_secret)."""
    ctx = system_context()
    from app.models.facility import Facility

    if not Facility.objects(code=code).count():
        facilities.register_facility(ctx, code, f"Bệnh viện {code}", "Hà Nội")
    new = facilities.issue_client(ctx, code, runtime().passwords, "test HIS")
    return new.client.client_id, new.client_secret


def facility_token(code: str = "01001") -> str:
    """A facility token obtained the production way (client credentials, in-process)."""
    client_id, secret = create_facility_client(code)
    rt = runtime()
    issued = facilities.client_credentials_grant(
        system_context(), client_id, secret, passwords=rt.passwords, tokens=rt.tokens,
        failures=rt.client_auth_failures, ip_attempts=rt.auth_ip_attempts,
    )
    return issued.token


DEFAULT_PASSWORD = "Mây trắng bay qua đồi 2026"


def national_id_for(year: int, sex: str = "male", serial: int = 123456, province: str = "001") -> str:
    """A CCCD whose century/sex digit and year agree with ``year`` and ``sex``."""
    digit = (year // 100 - 19) * 2 + (1 if sex == "female" else 0)
    return f"{province}{digit}{year % 100:02d}{serial:06d}"


def citizen_body(serial: int = 123456, **changes: object) -> dict:
    """A valid registration body (Nguyễn Văn Nam, born 1985) with a unique CCCD per serial."""
    body = {
        "national_id": national_id_for(1985, "male", serial),
        "full_name": "Nguyễn Văn Nam",
        "date_of_birth": "1985-03-14",
        "sex": "male",
        "phone": "0912345678",
        "email": "nam@example.org",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@dataclass
class CitizenAccount:
    """A citizen who went through registration, activation and TOTP confirmation."""

    national_id: str
    password: str
    totp_secret: str
    access_token: str
    refresh_token: str
    recovery_codes: list[str]

    def code(self, steps_ahead: int = 0) -> str:
        moment = utcnow() + timedelta(seconds=totp.STEP_SECONDS * steps_ahead)
        return totp.code_for_step(self.totp_secret, totp.step_at(moment))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class CitizenActions:
    """The citizen flows through the HTTP API, as the mobile app does them."""

    def __init__(self, client: FlaskClient, facility_code: str = "01001") -> None:
        self.client = client
        self._facility_code = facility_code
        self._facility_headers: dict[str, str] | None = None

    @property
    def facility_headers(self) -> dict[str, str]:
        if self._facility_headers is None:
            self._facility_headers = {"Authorization": f"Bearer {facility_token(self._facility_code)}"}
        return self._facility_headers

    def register(self, body: dict | None = None):  # type: ignore[no-untyped-def]
        return self.client.post("/api/v1/facility/citizens", json=body or citizen_body(),
                                headers=self.facility_headers)

    def activate(self, national_id: str, code: str, password: str = DEFAULT_PASSWORD):  # type: ignore[no-untyped-def]
        return self.client.post("/api/v1/auth/activate", json={
            "national_id": national_id, "activation_code": code, "password": password})

    def confirm(self, enrollment_token: str, totp_secret: str, device: str = "Pixel 8"):  # type: ignore[no-untyped-def]
        code = totp.code_for_step(totp_secret, totp.step_at(utcnow()))
        return self.client.post("/api/v1/auth/activate/confirm", json={
            "enrollment_token": enrollment_token, "totp_code": code, "device_label": device})

    def enrol(self, serial: int = 123456, **changes: object) -> CitizenAccount:
        """Register, activate and confirm a citizen; returns the signed-in account."""
        body = citizen_body(serial, **changes)
        registered = self.register(body)
        assert registered.status_code in (200, 201), registered.json
        activated = self.activate(body["national_id"], registered.json["activation_code"])
        assert activated.status_code == 200, activated.json
        confirmed = self.confirm(activated.json["enrollment_token"], activated.json["totp_secret"])
        assert confirmed.status_code == 200, confirmed.json
        return CitizenAccount(
            body["national_id"], DEFAULT_PASSWORD, activated.json["totp_secret"],
            confirmed.json["access_token"], confirmed.json["refresh_token"],
            confirmed.json["recovery_codes"],
        )

    def login(self, account: CitizenAccount, steps_ahead: int = 1, device: str = "Pixel 8"):  # type: ignore[no-untyped-def]
        """Sign in; the default uses the next step's code (the current one was used at enrolment)."""
        return self.client.post("/api/v1/auth/login", json={
            "national_id": account.national_id, "password": account.password,
            "totp_code": account.code(steps_ahead), "device_label": device})


def assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    """Check an RFC 9457 problem answer (status, media type, keys, request id); its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MIMETYPE
    body = response.json
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def support_url(national_id: str, action: str = "") -> str:
    """A support route of one citizen (``access-reset``, ``lock``, ...)."""
    return f"/api/v1/support/citizens/{national_id}" + (f"/{action}" if action else "")


def line(kind: str, source_id: str, body: dict) -> str:
    """One NDJSON line of a bulk upload."""
    return json.dumps({"type": kind, "source_id": source_id, **body}, ensure_ascii=False)


def upload(client, headers, lines: list[str]) -> list[dict]:  # type: ignore[no-untyped-def]
    """POST lines to /facility/bulk; the per-line answers, in order."""
    response = client.post("/api/v1/facility/bulk", data="\n".join(lines) + "\n", content_type=NDJSON,
                           headers=headers)
    assert response.status_code == 200
    assert response.mimetype == NDJSON
    return [json.loads(text) for text in response.get_data(as_text=True).splitlines()]
