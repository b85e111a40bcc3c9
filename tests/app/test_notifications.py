"""The outbox delivered: real SMTP and HTTP providers on loopback, two workers, crashes, retries, reminders."""

from __future__ import annotations

import json
import random
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bson import ObjectId

from app.models.notification import Notification
from app.runtime import runtime
from app.services import delivery
from app.services.reminders import run_reminders
from notifications import HttpProviderChannel, SmtpChannel
from tests.app.helpers import describe, shapes_sent
from tests.helpers import CitizenActions, assert_problem, citizen_body, facility_token, system_context
from tests.notifications.helpers import LoopbackController
from tests.records_data import immunization_body, visit_body

V1 = "/api/v1"


class Provider:
    """A real HTTP provider on loopback that records what it receives and answers a scripted status."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["_auth"] = self.headers.get("Authorization")
                provider.received.append(body)
                self.send_response(provider.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd collecting messages."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def sms():
    provider = Provider()
    yield provider
    provider.close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = LoopbackController(box)
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def channels(sms, mailbox):
    _, port = mailbox
    return {"sms": HttpProviderChannel("sms", sms.url, "sms-token-123"),
            "push": HttpProviderChannel("push", sms.url, "sms-token-123"),
            "email": SmtpChannel("127.0.0.1", port, "HoSo <no-reply@hoso.invalid>", starttls=False)}


def run(channels, now=None, worker="w1", rng=None):
    return delivery.run_once(channels, runtime().box, now or runtime().now(), worker, rng=rng or random.Random(1))


def test_security_messages_reach_sms_and_email(app, client, channels, sms, mailbox):
    CitizenActions(client).register()  # "a security code was issued" on every channel
    report = run(channels)
    assert report.sent == 2 and report.dead == 0
    assert [m["to"] for m in sms.received] == ["0912345678"]
    assert sms.received[0]["_auth"] == "Bearer sms-token-123"
    assert "mã bảo mật" in sms.received[0]["text"].lower()
    box, _ = mailbox
    assert len(box.messages) == 1 and box.messages[0].rcpt_tos == ["nam@example.org"]
    assert Notification.objects(channel__in=["sms", "email"], status="sent").count() == 2


def test_activation_code_is_delivered_then_erased(app, client, staff, channels, sms):
    account = CitizenActions(client).enrol()
    run(channels)
    sms.received.clear()
    client.post(f"{V1}/support/citizens/{account.national_id}/access-reset", headers=staff.headers("support"),
                json={"reason": "lost phone", "identity_check": {"document_type": "cccd",
                                                                 "document_number_last4": "3456",
                                                                 "method": "in_person"}})
    run(channels)
    codes = [m["text"] for m in sms.received if "activation" in m["title"].lower() or "kích hoạt" in m["title"]]
    assert len(codes) == 1 and "{secret}" not in codes[0]
    delivered = Notification.objects.get(kind="activation_code_delivery")
    assert delivered.status == "sent" and delivered.secret_encrypted is None
    code = codes[0].split(": ", 1)[1].split(".")[0]
    assert CitizenActions(client).activate(account.national_id, code, "Một mật khẩu mới toanh 42").status_code == 200


def test_two_concurrent_workers_send_each_message_once(app, client, channels, sms):
    actions = CitizenActions(client)
    for serial in range(10):
        actions.register(citizen_body(serial=100000 + serial))
    pending = Notification.objects(channel="sms", status="pending").count()
    assert pending == 10

    def work(name: str) -> None:
        with app.app_context():
            run(channels, worker=name)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [m["id"] for m in sms.received]
    assert len(ids) == 10 and len(set(ids)) == 10


def test_a_worker_that_dies_after_claiming_loses_nothing(app, client, channels, sms):
    CitizenActions(client).register()
    now = runtime().now()
    claimed = delivery.claim(now, "doomed")  # ...and the worker dies here
    assert claimed is not None
    assert run(channels, now=now + timedelta(minutes=1)).sent == 1  # the other message (e-mail)
    assert [m for m in sms.received] == []  # the lease has not passed yet
    assert run(channels, now=now + timedelta(minutes=3)).sent == 1
    assert len(sms.received) == 1


def test_temporary_failures_retry_with_backoff_then_dead(app, client, staff, channels, sms):
    sms.status = 503
    CitizenActions(client).register()
    now = runtime().now()
    run({"sms": channels["sms"]}, now=now)
    message = Notification.objects.get(channel="sms")
    assert message.status == "pending" and message.attempts == 1 and message.next_attempt_at > now
    moment = now
    for _ in range(20):
        moment += timedelta(hours=7)
        run({"sms": channels["sms"]}, now=moment)
    message.reload()
    assert message.status == "dead" and "503" in message.last_error
    dead = client.get(f"{V1}/admin/notifications?status=dead", headers=staff.headers()).json["items"]
    assert [item["id"] for item in dead if item["channel"] == "sms"] == [str(message.id)]
    assert "body" not in dead[0]


def test_provider_4xx_is_permanent(app, client, channels, sms):
    sms.status = 400
    CitizenActions(client).register()
    run({"sms": channels["sms"]})
    assert Notification.objects.get(channel="sms").status == "dead"


def test_reminders_fire_once_on_the_right_day(app, client, channels):
    account = CitizenActions(client).enrol()
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    first_dose = immunization_body(dose_number=1, series_doses=2, administered_at="2026-03-02T09:00:00+07:00",
                                   reactions=[])
    client.put(f"{V1}/facility/immunizations/D1", json=first_dose, headers=hanoi)
    client.put(f"{V1}/facility/visits/V1", json=visit_body(follow_up_date="2026-06-09"), headers=hanoi)
    interval = timedelta(days=28)
    ctx = system_context()
    due = datetime(2026, 3, 30).date()
    assert run_reminders(ctx, due - timedelta(days=1), interval) == 0
    assert run_reminders(ctx, due, interval) == 1
    assert run_reminders(ctx, due, interval) == 0  # the same day again: nothing new
    assert run_reminders(ctx, due + timedelta(days=1), interval) == 0  # the next day: already sent
    assert Notification.objects(kind="next_dose_reminder", channel="in_app").count() == 1
    assert run_reminders(ctx, datetime(2026, 6, 8).date(), interval) == 1  # the day before the follow-up
    # the second dose completes the series: no reminder after it
    client.put(f"{V1}/facility/immunizations/D2", json=immunization_body(
        dose_number=2, series_doses=2, administered_at="2026-03-30T09:00:00+07:00", reactions=[]), headers=hanoi)
    assert run_reminders(ctx, datetime(2026, 4, 27).date(), interval) == 0
    assert account


def test_inbox_is_per_citizen(client):
    actions = CitizenActions(client)
    alice = actions.enrol()
    bob = actions.enrol(serial=222222)
    mine = client.get(f"{V1}/me/notifications", headers=alice.headers).json
    assert mine["unread_count"] >= 1 and all(item["kind"] for item in mine["items"])
    theirs = client.get(f"{V1}/me/notifications", headers=bob.headers).json["items"][0]["id"]
    assert_problem(client.post(f"{V1}/me/notifications/{theirs}/read", headers=alice.headers), 404)
    read = client.post(f"{V1}/me/notifications/{mine['items'][0]['id']}/read", headers=alice.headers)
    assert read.status_code == 200 and read.json["read_at"]
    after = client.get(f"{V1}/me/notifications", headers=alice.headers).json
    assert after["unread_count"] == mine["unread_count"] - 1


def test_devices_receive_push_and_preferences_are_honoured(app, client, channels, sms):
    actions = CitizenActions(client)
    account = actions.enrol()
    device = client.post(f"{V1}/me/devices", json={"platform": "android", "push_token": "fcm-token-abcdef"},
                         headers=account.headers)
    assert device.status_code == 201
    again = client.post(f"{V1}/me/devices", json={"platform": "android", "push_token": "fcm-token-abcdef"},
                        headers=account.headers)
    assert again.json["id"] == device.json["id"]
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    client.put(f"{V1}/facility/visits/V1", json=visit_body(), headers=hanoi)
    run(channels)
    pushed = [m for m in sms.received if m["to"] == "fcm-token-abcdef"]
    assert len(pushed) == 1 and "Viêm" not in pushed[0]["text"] and "J20" not in pushed[0]["text"]
    client.patch(f"{V1}/me", json={"notification_preferences": {"record_added": {"push": False}}},
                 headers=account.headers)
    client.put(f"{V1}/facility/visits/V2", json=visit_body(started_at="2026-06-03T08:00:00+07:00",
                                                           ended_at=None, follow_up_date=None), headers=hanoi)
    assert Notification.objects(kind="record_added", channel="push").count() == 1
    other = actions.enrol(serial=222222)
    assert_problem(client.delete(f"{V1}/me/devices/{device.json['id']}", headers=other.headers), 404)
    assert client.delete(f"{V1}/me/devices/{device.json['id']}", headers=account.headers).status_code == 204


def test_development_file_channel_shows_what_would_be_sent(app, client, settings):
    from app.infra.configured_channels import build_channels

    channels = build_channels(settings)
    assert set(channels) == {"email", "sms", "push"}  # development: every channel writes to var/outbox
    CitizenActions(client).register()
    assert run(channels).sent == 2
    lines = (settings.var_dir / "outbox" / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["to"] == "0912345678"
    production = settings.replace(env="production")
    assert build_channels(production) == {}  # production: an unconfigured channel does not exist


def test_passport_expiring_within_30_days_is_announced_once(app, client):
    from app.models.passports import Certificate
    from app.services.signing_keys import init_keys

    init_keys(system_context(), runtime().settings)
    account = CitizenActions(client).enrol()
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(), headers=hanoi)
    uvci = client.post(f"{V1}/me/passports", headers=account.headers).json["uvci"]
    expires = Certificate.objects.get(uvci=uvci).expires_at.date()
    ctx, interval = system_context(), timedelta(days=28)
    assert run_reminders(ctx, expires - timedelta(days=31), interval) == 0
    assert run_reminders(ctx, expires - timedelta(days=30), interval) == 1
    assert run_reminders(ctx, expires - timedelta(days=29), interval) == 0
    assert Notification.objects(kind="passport_expiring", channel="in_app").count() == 1


def test_messages_go_to_the_address_they_were_queued_for(app, client, staff, channels, sms, mailbox):
    """A change of phone, e-mail or push token after queueing redirects nothing already queued."""
    from app.models.citizen import Citizen
    from app.models.device import Device

    account = CitizenActions(client).enrol()
    client.post(f"{V1}/me/devices", json={"platform": "android", "push_token": "fcm-token-old"},
                headers=account.headers)
    run(channels)
    sms.received.clear()
    box, _ = mailbox
    box.messages.clear()
    citizen = Citizen.objects.get(national_id=account.national_id)
    client.post(f"{V1}/support/citizens/{account.national_id}/lock", headers=staff.headers("support"),
                json={"reason": "suspected fraud"})
    assert Notification.objects(kind="account_locked", status="pending", channel__in=["sms", "email"]).count() == 2
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    client.put(f"{V1}/facility/visits/V1", json=visit_body(), headers=hanoi)  # a push to the device
    queued = Notification.objects(status="pending").count()
    pending = client.get(f"{V1}/admin/notifications?status=pending", headers=staff.headers())
    assert pending.status_code == 200 and len(pending.json["items"]) == queued
    assert all("address" not in item for item in pending.json["items"])
    for personal in ("0912345678", "nam@example.org", "fcm-token-old"):
        assert personal not in pending.get_data(as_text=True)
    Citizen.objects(id=citizen.id).update_one(set__phone="0987000111", set__email="new@example.org")
    Device.objects(citizen_id=citizen.id).update(set__push_token="fcm-token-new")
    report = run(channels)
    assert report.sent == queued and report.dead == 0
    assert {m["to"] for m in sms.received} == {"0912345678", "fcm-token-old"}
    assert [m.rcpt_tos for m in box.messages] == [["nam@example.org"]]
    assert Notification.objects(address__ne=None).count() == 0  # erased once sent


def test_messages_queued_before_addresses_were_stored_use_todays_contact_data(app, client, channels, sms):
    CitizenActions(client).register()
    Notification.objects(channel="sms").update(unset__address=True)
    assert run({"sms": channels["sms"]}).sent == 1
    assert [m["to"] for m in sms.received] == ["0912345678"]


def test_a_removed_device_receives_no_push(app, client, channels, sms):
    account = CitizenActions(client).enrol()
    device = client.post(f"{V1}/me/devices", json={"platform": "android", "push_token": "fcm-token-lost"},
                         headers=account.headers).json
    client.put(f"{V1}/facility/visits/V1", json=visit_body(),
               headers={"Authorization": f"Bearer {facility_token('01001')}"})
    client.delete(f"{V1}/me/devices/{device['id']}", headers=account.headers)
    run(channels)
    assert "fcm-token-lost" not in [m["to"] for m in sms.received]
    message = Notification.objects.get(channel="push")
    assert message.status == "dead" and message.address is None


def test_every_write_of_a_claimed_message_names_its_citizen(request, app, client, channels, sms):
    """notifications is sharded by citizen: only the claim's candidate reads may reach every shard."""
    CitizenActions(client).register()  # SMS and e-mail
    now = runtime().now()
    sms.status = 503

    def passes() -> None:
        assert run(channels, now=now).sent == 1  # the e-mail; the SMS is retried
        sms.status = 400
        assert run({"sms": channels["sms"]}, now=now + timedelta(days=1)).dead == 1

    shapes = shapes_sent(request.config, "notifications", passes)
    claim = "app.services.delivery:claim"  # the claim's own reads (a comprehension is a frame of its own)
    candidates = [shape for shape in shapes if shape.location in (claim, f"{claim}.<locals>.<listcomp>")]
    rest = [shape for shape in shapes if shape not in candidates]
    assert {shape.command for shape in candidates} == {"find"}
    assert {shape.location for shape in rest} >= {"app.services.delivery:claim.<locals>.take",
                                                  "app.services.outbox:mark_sent"}
    assert any(shape.location.startswith("app.services.delivery:_fail") for shape in rest)
    assert [shape for shape in rest if not shape.pinned] == [], describe(rest)


def test_mark_sent_for_another_citizen_changes_nothing(app, client, channels):
    from app.services.outbox import mark_sent

    CitizenActions(client).register()
    message = Notification.objects.get(channel="sms")
    assert not mark_sent(message.id, ObjectId(), runtime().now())
    message.reload()
    assert message.status == "pending" and message.address
    assert mark_sent(message.id, message.citizen_id, runtime().now())
    assert Notification.objects.get(id=message.id).status == "sent"
