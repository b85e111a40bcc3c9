"""Support staff: account look-ups without health data, access resets, locks (SECURITY 5, 11, 16)."""

from __future__ import annotations

import pytest

from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.notification import Notification
from app.runtime import runtime
from app.services.outbox import secret_context
from tests.helpers import RESET, assert_problem, citizen_body, support_url


@pytest.fixture
def support(staff) -> dict[str, str]:
    return staff.headers("support")


def test_lookup_shows_account_state_only_and_is_audited(client, citizens, support):
    account = citizens.enrol()
    response = client.get(support_url(account.national_id), headers=support)
    assert response.status_code == 200
    assert response.json["state"] == "active"
    assert response.json["registered_by_facility"] == "01001"
    assert response.json["active_sessions"] == 1
    assert response.json["contact_channels"] == ["sms", "email"]
    for secret_field in ("password_hash", "totp_secret_encrypted", "recovery_code_hashes",
                         "date_of_birth", "phone", "email"):
        assert secret_field not in response.json
    citizen = Citizen.objects.get(national_id=account.national_id)
    lookup = AuditEvent.objects(action="support.lookup").first()
    assert lookup.citizen_id == citizen.id and lookup.actor_type == "staff"


def test_lookup_of_unknown_citizen_is_404(client, support):
    assert_problem(client.get(support_url("001085000000"), headers=support), 404)


def test_admins_and_facilities_cannot_use_support_routes(client, citizens, staff):
    account = citizens.enrol()
    assert_problem(client.get(support_url(account.national_id), headers=staff.headers("admin")),
                   403)
    assert_problem(client.get(support_url(account.national_id), headers=citizens.facility_headers),
                   403)
    assert_problem(client.get(support_url(account.national_id), headers=account.headers), 403)


def test_access_reset_ends_everything_and_sends_a_code_staff_never_see(client, citizens, support):
    account = citizens.enrol()
    response = client.post(support_url(account.national_id, "access-reset"), json=RESET,
                           headers=support)
    assert response.status_code == 200
    assert response.json == {"national_id": account.national_id, "state": "reset_pending",
                             "locked": False}
    # sessions and tokens end at once; the old password and TOTP stop working
    assert_problem(client.get("/api/v1/me/sessions", headers=account.headers), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": account.refresh_token}), 401)
    assert_problem(citizens.login(account), 401)
    citizen = Citizen.objects.get(national_id=account.national_id)
    assert citizen.password_hash is None and citizen.totp_secret_encrypted is None
    assert citizen.recovery_code_hashes == []
    event = AuditEvent.objects(action="support.access_reset", outcome="success").first()
    assert event.reason == RESET["reason"]
    assert event.details["identity_check"]["method"] == "video_call"
    # the code travels only in the outbox, encrypted, to the citizen's own phone
    delivery = Notification.objects.get(kind="activation_code_delivery")
    assert delivery.channel == "sms" and "{secret}" in delivery.body
    code = runtime().box.decrypt(delivery.secret_encrypted, secret_context(delivery.dedupe_key))
    assert code not in response.get_data(as_text=True) and code not in delivery.body
    assert Notification.objects(kind="access_reset", channel="in_app").count() == 1
    # the citizen activates again with that code: new password, new TOTP, no shortcut
    activated = citizens.activate(account.national_id, code, "Một mật khẩu mới toanh 42")
    assert activated.status_code == 200
    confirmed = citizens.confirm(activated.json["enrollment_token"], activated.json["totp_secret"])
    assert confirmed.status_code == 200


def test_reset_without_contact_channel_is_409_and_changes_nothing(client, citizens, support):
    account = citizens.enrol()
    Citizen.objects(national_id=account.national_id).update_one(unset__phone=True,
                                                                 unset__email=True)
    problem = assert_problem(client.post(support_url(account.national_id, "access-reset"),
                                         json=RESET, headers=support), 409)
    assert problem["type"] == "/problems/no-contact-channel"
    assert client.get("/api/v1/me/sessions", headers=account.headers).status_code == 200


def test_reset_with_wrong_document_number_is_refused(client, citizens, support):
    account = citizens.enrol()
    body = {**RESET, "identity_check": {**RESET["identity_check"], "document_number_last4": "9999"}}
    problem = assert_problem(client.post(support_url(account.national_id, "access-reset"),
                                         json=body, headers=support), 409)
    assert problem["type"] == "/problems/identity-check-failed"
    assert client.get("/api/v1/me/sessions", headers=account.headers).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"reason": "x"}, {"identity_check": RESET["identity_check"]},
     {**RESET, "identity_check": {"document_type": "cccd", "method": "video_call"}},
     {**RESET, "identity_check": {**RESET["identity_check"], "method": "telepathy"}},
     {**RESET, "reason": {"$ne": ""}}],
)
def test_reset_needs_reason_and_complete_evidence(client, citizens, support, body):
    account = citizens.enrol()
    assert_problem(client.post(support_url(account.national_id, "access-reset"), json=body,
                               headers=support), 422)
    assert Citizen.objects.get(national_id=account.national_id).state == "active"


def test_lock_stops_tokens_login_and_refresh_then_unlock(client, citizens, support):
    account = citizens.enrol()
    locked = client.post(support_url(account.national_id, "lock"), json={"reason": "stolen phone"},
                         headers=support)
    assert locked.status_code == 200 and locked.json["state"] == "locked"
    assert_problem(client.get("/api/v1/me/sessions", headers=account.headers), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               json={"refresh_token": account.refresh_token}), 401)
    assert_problem(citizens.login(account), 401)
    assert_problem(client.post(support_url(account.national_id, "lock"), json={"reason": "again"},
                               headers=support), 409)
    assert Notification.objects(kind="account_locked", channel="sms").count() == 1
    unlocked = client.post(support_url(account.national_id, "unlock"), json={"reason": "found"},
                           headers=support)
    assert unlocked.status_code == 200 and unlocked.json["state"] == "active"
    body = {"national_id": account.national_id, "password": account.password,
            "recovery_code": account.recovery_codes[0]}
    assert client.post("/api/v1/auth/login", json=body).status_code == 200
    locks = AuditEvent.objects(action__in=["support.lock", "support.unlock"])
    assert sorted((event.action, event.reason) for event in locks) == [
        ("support.lock", "stolen phone"), ("support.unlock", "found")]


def test_locked_pending_account_cannot_activate(client, citizens, support):
    code = citizens.register().json["activation_code"]
    national_id = citizen_body()["national_id"]
    client.post(support_url(national_id, "lock"), json={"reason": "fraud"}, headers=support)
    assert_problem(citizens.activate(national_id, code), 401)


def test_delivered_code_is_erased_from_the_outbox(client, citizens, support):
    from app.clock import utcnow
    from app.services.outbox import mark_sent

    account = citizens.enrol()
    client.post(support_url(account.national_id, "access-reset"), json=RESET, headers=support)
    delivery = Notification.objects.get(kind="activation_code_delivery")
    assert delivery.secret_encrypted
    assert mark_sent(delivery.id, delivery.citizen_id, utcnow())
    delivery.reload()
    assert delivery.status == "sent" and delivery.secret_encrypted is None
    assert not mark_sent(delivery.id, delivery.citizen_id, utcnow())  # sent once only
