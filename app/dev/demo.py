"""Demo data for ``make run``: an admin, a facility and its API client, created once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.models.facility import Facility
from app.models.staff import StaffUser
from app.runtime import runtime
from app.services import facilities, staff
from app.services.audit import SYSTEM_ACTOR, RequestContext
from app.services.registries import build_registries

DEMO_ADMIN = "admin"
DEMO_FACILITY = {"code": "79025", "name": "Phòng khám Đa khoa Demo Sài Gòn",
                 "province": "Thành phố Hồ Chí Minh", "level": "clinic"}
CREDENTIALS_FILE = "demo-credentials.json"


def credentials_path() -> Path:
    """Where development keeps the demo credentials (git-ignored ``var/``)."""
    return runtime().settings.var_dir / CREDENTIALS_FILE


def seed() -> dict[str, Any]:
    """Create the demo data if absent; return the demo credentials (kept in ``var/``)."""
    rt = runtime()
    path = credentials_path()
    # A development database from before the registries existed is migrated on start (idempotent;
    # citizens, shares and passports made from now on write their registry entries themselves).
    build_registries(rt.now())
    if StaffUser.objects(username=DEMO_ADMIN).count() and path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    ctx = RequestContext(actor=SYSTEM_ACTOR, now=rt.now(), request_id="demo-seed", trail=rt.audit_trail)
    credentials: dict[str, Any] = {}
    if not StaffUser.objects(username=DEMO_ADMIN).count():
        new_admin = staff.create_staff(ctx, DEMO_ADMIN, "admin", passwords=rt.passwords, box=rt.box)
        credentials["admin"] = {
            "username": DEMO_ADMIN,
            "password": new_admin.password,
            "totp_uri": new_admin.totp_uri,
            "totp_secret": parse_qs(urlsplit(new_admin.totp_uri).query)["secret"][0],
        }
    if not rt.settings.signer_url:
        from app.services.signing_keys import init_keys

        init_keys(ctx, rt.settings)  # passports work out of the box
    if not Facility.objects(code=DEMO_FACILITY["code"]).count():
        facilities.register_facility(ctx, **DEMO_FACILITY)
    new_client = facilities.issue_client(ctx, DEMO_FACILITY["code"], rt.passwords, "demo HIS")
    credentials["facility"] = {
        "code": DEMO_FACILITY["code"],
        "client_id": new_client.client.client_id,
        "client_secret": new_client.client_secret,
    }
    if path.exists():
        previous = json.loads(path.read_text())
        credentials = {**previous, **credentials}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=2, ensure_ascii=False)
    return credentials
