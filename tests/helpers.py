"""Test helpers that wrap repeated HTTP flows (like flaskr's AuthActions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
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
