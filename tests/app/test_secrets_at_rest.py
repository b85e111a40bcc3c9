"""No code, password, token or TOTP value is stored or logged in clear (SECURITY 1, 8, 30)."""

from __future__ import annotations

import io
import logging

import mongoengine
from bson import json_util

from app.models.notification import Notification
from app.runtime import runtime
from app.services.outbox import secret_context
from app.web.logs import configure
from tests.helpers import CitizenActions, citizen_body, create_facility_client, totp_secret_of

RESET = {"reason": "lost phone", "identity_check": {"document_type": "cccd",
                                                    "document_number_last4": "3456",
                                                    "method": "in_person"}}


def dump_every_collection() -> str:
    db = mongoengine.get_db()
    return "\n".join(
        json_util.dumps(list(db[name].find())) for name in db.list_collection_names()
    )


def test_no_secret_appears_in_any_collection_or_log(app, client, staff):
    stream = io.StringIO()
    handler = configure("DEBUG", stream)
    secrets: list[str] = []
    try:
        citizens = CitizenActions(client)
        registered = citizens.register()
        secrets.append(registered.json["activation_code"])
        activated = citizens.activate(citizen_body()["national_id"],
                                      registered.json["activation_code"])
        secrets += [activated.json["enrollment_token"], activated.json["totp_secret"]]
        confirmed = citizens.confirm(activated.json["enrollment_token"],
                                     activated.json["totp_secret"])
        secrets += [confirmed.json["access_token"], confirmed.json["refresh_token"],
                    *confirmed.json["recovery_codes"]]
        refreshed = client.post("/api/v1/auth/refresh",
                                json={"refresh_token": confirmed.json["refresh_token"]}).json
        secrets += [refreshed["access_token"], refreshed["refresh_token"]]
        secrets.append(citizens.facility_headers["Authorization"].split()[1])
        secrets.append("Mây trắng bay qua đồi 2026")  # the password
        client_id, client_secret = create_facility_client("01009")
        secrets.append(client_secret)
        admin = staff.create("auditor", "admin")
        secrets += [admin.password, admin.totp_secret]
        login = staff.login(admin).json
        secrets.append(login["access_token"])
        new_staff = client.post("/api/v1/admin/staff", json={"username": "newbie", "role": "support"},
                                headers={"Authorization": f"Bearer {login['access_token']}"}).json
        secrets += [new_staff["password"], totp_secret_of(new_staff["totp_uri"])]
        client.post(f"/api/v1/support/citizens/{citizen_body()['national_id']}/access-reset",
                    json=RESET, headers=staff.headers("support"))
        delivery = Notification.objects.get(kind="activation_code_delivery")
        secrets.append(runtime().box.decrypt(delivery.secret_encrypted,
                                             secret_context(delivery.dedupe_key)))
    finally:
        for name in ("hoso", "app"):
            logging.getLogger(name).removeHandler(handler)
    stored = dump_every_collection()
    logged = stream.getvalue()
    assert logged, "the flows above must have logged something"
    for secret in secrets:
        plain = secret.replace("-", "")
        for text, where in ((stored, "database"), (logged, "logs")):
            assert secret not in text, f"a secret is in the {where}"
            assert plain not in text, f"a secret is in the {where}"
    assert citizen_body()["national_id"] not in logged
