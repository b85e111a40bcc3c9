"""Hot paths reach one shard: refresh tokens name their citizen; share codes, CCCDs and UVCIs go
through their registries; record pushes name the citizen; ``flask data build-registries``."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import monitoring

from app.clock import utcnow
from app.dev.demo import seed
from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.passports import Certificate, SigningKey
from app.models.records import RecordKey, Share, Visit
from app.models.registries import CertificateKey, CertificateRevocation, CitizenKey, ShareKey
from app.models.session import Session
from app.runtime import runtime
from app.services import citizens as citizen_service
from app.services import sessions
from app.services.errors import AuthenticationFailed
from app.services.identity import citizen_by_national_id
from app.services.registries import build_registries
from app.services.signing_keys import init_keys
from tests.helpers import assert_problem, system_context
from tests.records_data import identity, immunization_body, visit_body

V1 = "/api/v1"
REFRESH = f"{V1}/auth/refresh"
# The declared shard keys of the collections these paths touch (app.infra.shard_keys holds the table).
BY_CITIZEN = {"sessions", "shares", "certificates", "visits", "immunizations"}
BY_ID = {"citizens", "citizen_keys", "share_keys", "certificate_keys", "record_keys"}
FILTERED = {"find": "filter", "count": "query", "findAndModify": "query", "distinct": "query"}


class _Recorder(monitoring.CommandListener):
    """Every filter the application sends while ``recording()`` is on: (command, collection, filter)."""

    def __init__(self) -> None:
        self.sink: list[tuple[str, str, dict]] | None = None
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.sink is None:
            return
        command, name = event.command, event.command_name
        collection = str(command.get(name))
        filters = []
        if name in FILTERED:
            filters = [command.get(FILTERED[name]) or {}]
        elif name in ("update", "delete"):
            filters = [statement.get("q") or {} for statement in command.get(f"{name}s", [])]
        with self.lock:
            self.sink.extend((name, collection, dict(f)) for f in filters)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


RECORDER = _Recorder()
monitoring.register(RECORDER)  # applies to the clients created after it: each test's app


@contextmanager
def recording():
    """The filters sent inside the block."""
    sink: list[tuple[str, str, dict]] = []
    RECORDER.sink = sink
    try:
        yield sink
    finally:
        RECORDER.sink = None


def _pins(key: str, query: dict) -> bool:
    value = query.get(key)
    if value is None:
        return any(_pins(key, part) for part in query.get("$and", []))
    return not isinstance(value, dict) or set(value) == {"$in"}


def assert_pinned(sent: list[tuple[str, str, dict]]) -> None:
    """Every filter on a sharded collection names its whole shard key (equality or ``$in``)."""
    scattered = [(name, collection, query) for name, collection, query in sent
                 if (collection in BY_CITIZEN and not _pins("citizen_id", query))
                 or (collection in BY_ID and not _pins("_id", query))]
    assert not scattered, scattered
    assert sent  # the block did query


# --- sessions ----------------------------------------------------------------------------------


def test_a_refresh_token_names_its_citizen_and_session(account):
    parsed = sessions.parse_refresh_token(account.refresh_token)
    citizen = Citizen.objects.get(national_id=account.national_id)
    assert parsed is not None and parsed.citizen_id == citizen.id
    session = Session.objects.get(citizen_id=citizen.id)
    assert parsed.family_id == session.family_id
    assert session.token_hash == sessions.refresh_token_hash(runtime().accounts, account.refresh_token)


def test_refresh_rotation_and_reuse_detection_query_one_citizen(client, account):
    with recording() as sent:
        rotated = client.post(REFRESH, json={"refresh_token": account.refresh_token})
        assert rotated.status_code == 200
        assert_problem(client.post(REFRESH, json={"refresh_token": account.refresh_token}), 401)  # reuse
        assert_problem(client.post(REFRESH, json={"refresh_token": rotated.json["refresh_token"]}), 401)
    assert_pinned(sent)
    assert Session.objects.get().revoked_reason == "refresh token reuse"


def test_login_and_a_device_proof_query_one_citizen(client, citizens, account):
    with recording() as sent:
        response = client.post(f"{V1}/auth/login", json={
            "national_id": account.national_id, "password": account.password, "totp_code": account.code(1),
            "device_label": "Laptop", "device_proof": account.refresh_token})
        assert response.status_code == 200
    assert_pinned(sent)


def test_a_token_with_another_citizen_or_session_is_refused_and_ends_nothing(client, citizens, account):
    other = citizens.enrol(serial=654321)
    other_parsed = sessions.parse_refresh_token(other.refresh_token)
    assert other_parsed is not None
    _, family, secret = account.refresh_token.split(".")
    for forged in (f"{other_parsed.citizen_id}.{family}.{secret}",
                   f"{account.refresh_token.split('.')[0]}.{other_parsed.family_id}.{secret}",
                   f"{other_parsed.citizen_id}.{other_parsed.family_id}.{secret}"):
        assert_problem(client.post(REFRESH, json={"refresh_token": forged}), 401)
    assert Session.objects(revoked_at__ne=None).count() == 0
    for holder in (account, other):
        assert client.post(REFRESH, json={"refresh_token": holder.refresh_token}).status_code == 200


def test_an_opaque_token_of_the_old_form_is_the_same_401(client, account):
    old_form = secrets.token_urlsafe(32)
    body = assert_problem(client.post(REFRESH, json={"refresh_token": old_form}), 401)
    last = "B" if account.refresh_token.endswith("A") else "A"
    wrong = assert_problem(client.post(REFRESH, json={"refresh_token": account.refresh_token[:-1] + last}), 401)
    assert (body["type"], body["detail"]) == (wrong["type"], wrong["detail"])
    assert AuditEvent.objects(action="citizen.refresh", outcome="failure").count() == 2


_HEX = "0123456789abcdef"
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_part = st.one_of(st.text(max_size=50), st.text(alphabet=_HEX, min_size=20, max_size=40),
                  st.text(alphabet=_URLSAFE, min_size=40, max_size=46))
malformed_tokens = st.one_of(
    st.text(max_size=200),
    st.lists(_part, min_size=1, max_size=5).map(".".join),
    st.builds(lambda c, f, s: f"{c}.{f}.{s}", st.text(alphabet=_HEX, min_size=24, max_size=24),
              st.text(alphabet=_HEX, min_size=32, max_size=32), st.text(alphabet=_URLSAFE, min_size=43, max_size=43)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=malformed_tokens)
def test_no_malformed_refresh_token_is_more_than_a_401(app, token):
    """Whatever the parts (hypothesis): the service refuses alike, never with another error."""
    ctx = system_context()
    with pytest.raises(AuthenticationFailed):
        sessions.refresh(ctx, runtime().accounts, token)
    assert sessions._earlier_device(runtime().accounts, "001085123456", token, ctx.now) is None


@pytest.mark.parametrize("token", ["", "a.b.c", "..", "0" * 24 + "." + "0" * 32 + "." + "A" * 43,
                                   "\ud7ff" * 3, "x" * 4096, "ZZZZZZZZZZZZZZZZZZZZZZZZ." + "0" * 32 + "." + "A" * 43])
def test_malformed_refresh_tokens_over_http_are_401(client, token):
    response = client.post(REFRESH, json={"refresh_token": token})
    assert response.status_code in (401, 422), response.get_data(as_text=True)
    if token:
        assert_problem(response, 401)


# --- shares ------------------------------------------------------------------------------------


def _share(client, account, hours=2):
    response = client.post(f"{V1}/me/shares", headers=account.headers,
                           json={"scope": ["visits"], "expires_in_hours": hours})
    assert response.status_code == 201, response.json
    return response.json


def test_a_share_code_goes_through_its_registry(client, world):
    new = _share(client, world["alice"])
    share = Share.objects.get(id=new["id"])
    key = ShareKey.objects.get(citizen_id=share.citizen_id)
    assert key.id == share.code_hash and key.share_id == share.id
    with recording() as sent:
        assert client.post(f"{V1}/shared-records", json={"code": new["code"]}).status_code == 200
        assert client.get(f"{V1}/me/shares", headers=world["alice"].headers).status_code == 200
        assert client.delete(f"{V1}/me/shares/{new['id']}", headers=world["alice"].headers).status_code == 204
        assert_problem(client.post(f"{V1}/shared-records", json={"code": new["code"]}), 404)
        assert_problem(client.post(f"{V1}/shared-records", json={"code": "AAAA-BBBB-CCCC-DDDD"}), 404)
    assert_pinned(sent)
    assert Share.objects.get(id=new["id"]).times_opened == 1


def test_a_registry_entry_without_its_share_is_404(client, world):
    ShareKey(id="orphan", citizen_id=ObjectId(), share_id=ObjectId()).save(force_insert=True)
    new = _share(client, world["alice"])
    Share.objects(id=new["id"]).delete()
    assert_problem(client.post(f"{V1}/shared-records", json={"code": new["code"]}), 404)


# --- citizens by CCCD --------------------------------------------------------------------------


def _person(serial: int = 123456) -> citizen_service.NewCitizen:
    data = identity(serial)
    return citizen_service.NewCitizen(data["national_id"], data["full_name"], date.fromisoformat(data["date_of_birth"]),
                                      data["sex"])


def test_creation_writes_the_registry_first_and_finds_through_it(app):
    ctx = system_context()
    with recording() as sent:
        found, created = citizen_service.find_or_create_citizens(ctx, [_person(1), _person(2), _person(1)])
        again, created_again = citizen_service.find_or_create_citizens(ctx, [_person(1), _person(2)])
    assert_pinned(sent)
    assert created == set(found) and created_again == set()
    assert {nid: doc["_id"] for nid, doc in found.items()} == {nid: doc["_id"] for nid, doc in again.items()}
    for national_id, document in found.items():
        assert CitizenKey.objects.get(id=national_id).citizen_id == document["_id"]
    assert Citizen.objects.count() == 2
    assert AuditEvent.objects(action="citizen.create").count() == 1


def test_a_registry_entry_whose_citizen_is_missing_is_healed_with_its_id(app):
    person = _person(7)
    orphan = ObjectId()  # a creation that crashed between the registry's insert and the citizen's
    CitizenKey(id=person.national_id, citizen_id=orphan).save(force_insert=True)
    assert citizen_by_national_id(person.national_id) is None
    found, created = citizen_service.find_or_create_citizens(system_context(), [person], {"_id": 1, "state": 1})
    assert created == {person.national_id} and found[person.national_id] == {"_id": orphan,
                                                                             "state": "pending_activation"}
    assert citizen_by_national_id(person.national_id).id == orphan
    assert AuditEvent.objects.get(action="citizen.create").citizen_id == orphan


def test_concurrent_creations_of_one_person_meet_at_the_registry(app):
    people = [_person(serial) for serial in range(10, 30)]

    def create(_: int) -> dict[str, ObjectId]:
        with app.app_context():
            found, _ = citizen_service.find_or_create_citizens(system_context(), people, {"_id": 1})
            return {nid: doc["_id"] for nid, doc in found.items()}

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(create, range(6)))
    assert all(answer == answers[0] for answer in answers) and len(answers[0]) == 20
    assert Citizen.objects.count() == 20 and CitizenKey.objects.count() == 20
    created = [c for event in AuditEvent.objects(action="citizen.create")
               for c in (event.citizen_ids or [event.citizen_id])]
    assert sorted(created) == sorted(answers[0].values())  # each citizen created once


def test_sign_in_activation_and_support_find_citizens_through_the_registry(client, citizens, staff):
    account = citizens.enrol(serial=333333)
    with recording() as sent:
        assert citizens.login(account).status_code == 200
        assert client.get(f"{V1}/support/citizens/{account.national_id}",
                          headers=staff.headers("support")).status_code == 200
        assert_problem(client.post(f"{V1}/auth/activate", json={
            "national_id": account.national_id, "activation_code": "K7MPQ-3XRT9",
            "password": "a long enough passphrase 42"}), 401)
    assert_pinned(sent)


def test_a_citizen_without_a_registry_entry_is_unknown_to_look_ups(client, citizens, staff):
    account = citizens.enrol()
    CitizenKey.objects(id=account.national_id).delete()
    assert_problem(citizens.login(account), 401)
    assert_problem(client.get(f"{V1}/support/citizens/{account.national_id}",
                              headers=staff.headers("support")), 404)


# --- records by id and citizen -----------------------------------------------------------------


def test_a_re_push_reads_and_updates_records_by_id_and_citizen(client, world):
    hanoi = world["hanoi"]
    with recording() as sent:
        changed = client.put(f"{V1}/facility/visits/LK1", json=visit_body(
            started_at="2026-06-01T08:00:00+07:00", ended_at=None, follow_up_date=None, reason="changed"),
            headers=hanoi)
        assert changed.status_code == 200 and changed.json["outcome"] == "updated"
        assert client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(lot="NEW"),
                          headers=hanoi).json["outcome"] == "updated"
    assert_pinned(sent)


def test_a_citizen_reaction_report_writes_and_reads_its_record_by_id_and_citizen(client, world):
    alice = world["alice"]
    record_id = client.get(f"{V1}/me/immunizations", headers=alice.headers).json["items"][0]["id"]
    with recording() as sent:
        response = client.post(f"{V1}/me/immunizations/{record_id}/reactions", headers=alice.headers,
                               json={"onset_at": "2021-09-16T07:00:00+07:00", "description": "Đau tay",
                                     "severity": "moderate"})
        assert response.status_code == 201
    assert [r["reported_by"] for r in response.json["reactions"]] == ["facility", "citizen"]
    assert_pinned(sent)


@pytest.mark.parametrize("pushed_for", ["alice", "bob"])
def test_a_correction_stopped_between_its_writes_is_found_through_its_key(client, world, pushed_for):
    """A correction listed the new citizen on the key, moved the record, and stopped before the key's
    citizen followed: the next push (for either citizen) finds the record by id and a listed citizen."""
    hanoi = world["hanoi"]
    record = client.put(f"{V1}/facility/visits/MOVE", json=visit_body(), headers=hanoi).json
    bob = Citizen.objects.get(national_id=world["bob"].national_id)
    RecordKey.objects(id="visit:01001:MOVE").update_one(add_to_set__held_by=bob.id)
    Visit.objects(id=record["id"]).update_one(set__citizen_id=bob.id)
    serial = 222222 if pushed_for == "bob" else 123456
    with recording() as sent:
        again = client.put(f"{V1}/facility/visits/MOVE", json=visit_body(serial=serial, reason="moved"),
                           headers=hanoi)
    assert again.status_code == 200 and again.json["id"] == record["id"], again.json
    assert_pinned(sent)
    assert Visit.objects(source_id="MOVE").count() == 1
    holder = Citizen.objects.get(national_id=world[pushed_for].national_id).id
    assert Visit.objects.get(source_id="MOVE").citizen_id == RecordKey.objects.get(id="visit:01001:MOVE").citizen_id
    assert Visit.objects.get(source_id="MOVE").citizen_id == holder


def test_a_correction_lists_the_new_citizen_on_the_key_before_moving_the_record(client, world):
    hanoi = world["hanoi"]
    client.put(f"{V1}/facility/visits/FIX", json=visit_body(), headers=hanoi)
    moved = client.put(f"{V1}/facility/visits/FIX", json=visit_body(serial=222222), headers=hanoi)
    assert moved.json["outcome"] == "updated"
    bob = Citizen.objects.get(national_id=world["bob"].national_id)
    key = RecordKey.objects.get(id="visit:01001:FIX")
    assert key.citizen_id == bob.id and key.held_by == [bob.id]


def test_a_record_missing_everywhere_is_created_once_under_its_key(client, world):
    hanoi = world["hanoi"]
    record = client.put(f"{V1}/facility/visits/LOST", json=visit_body(), headers=hanoi).json
    Visit.objects(id=record["id"]).delete()  # the key was written, the record was not
    again = client.put(f"{V1}/facility/visits/LOST", json=visit_body(), headers=hanoi)
    assert again.status_code == 201 and again.json["id"] == record["id"]
    assert Visit.objects(source_id="LOST").count() == 1


# --- certificates by UVCI ----------------------------------------------------------------------


def _issue(client, account):
    init_keys(system_context(), runtime().settings)
    response = client.post(f"{V1}/me/passports", headers=account.headers)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.json["uvci"]


def test_issuance_writes_the_uvci_registry_and_revocation_goes_through_it(client, world, staff):
    uvci = _issue(client, world["alice"])
    certificate = Certificate.objects.get(uvci=uvci)
    key = CertificateKey.objects.get(id=uvci)
    assert (key.citizen_id, key.certificate_id) == (certificate.citizen_id, certificate.id)
    admin = staff.headers("admin")
    with recording() as sent:
        revoked = client.post(f"{V1}/admin/passports/{quote(uvci, safe='')}/revoke",
                              json={"reason": "issued in error"}, headers=admin)
        assert revoked.status_code == 200, revoked.get_data(as_text=True)
        assert_problem(client.post(f"{V1}/admin/passports/{quote(uvci, safe='')}/revoke", json={"reason": "again"},
                                   headers=admin), 409)
        assert_problem(client.post(f"{V1}/admin/passports/URN:UVCI:01:VN:NOPE/revoke", json={"reason": "unknown one"},
                                   headers=admin), 404)
    assert_pinned(sent)
    listed = CertificateRevocation.objects.get(id=uvci)
    assert (listed.hash_uci, listed.expires_at) == (certificate.hash_uci, certificate.expires_at)
    assert client.get(f"{V1}/passport/revocations").status_code == 200


def test_issuance_remembers_on_its_key_how_long_a_passport_it_signed_lives(client, world):
    uvci = _issue(client, world["alice"])
    certificate = Certificate.objects.get(uvci=uvci)
    until = SigningKey.objects.get(kid=certificate.kid).passports_expire_by
    assert certificate.expires_at < until <= certificate.expires_at + timedelta(days=1)
    assert (until.hour, until.minute, until.second) == (0, 0, 0)


def test_a_revocation_interrupted_before_the_status_is_completed_by_the_next_attempt(client, world, staff):
    uvci = _issue(client, world["alice"])
    certificate = Certificate.objects.get(uvci=uvci)
    from app.services import passports

    passports.revoke(system_context(), uvci, "first", verify_cache={})
    Certificate.objects(id=certificate.id).update_one(set__status="valid")  # as if it stopped half-way
    assert passports.revoke(system_context(), uvci, "again", verify_cache={}).status == "revoked"
    assert CertificateRevocation.objects.count() == 1
    assert passports.revocation_list(utcnow()).to_json()


# --- the migration -----------------------------------------------------------------------------


def test_build_registries_fills_every_registry_once_and_reports_clashes(app, client, world):
    uvci = _issue(client, world["alice"])
    from app.services import passports

    passports.revoke(system_context(), uvci, "for the test", verify_cache={})
    _share(client, world["alice"])
    expected = {"citizen_keys": CitizenKey.objects.count(), "share_keys": ShareKey.objects.count(),
                "certificate_keys": CertificateKey.objects.count(), "certificate_revocations": 1}
    for registry in (CitizenKey, ShareKey, CertificateKey, CertificateRevocation):
        registry.objects.delete()  # as before the upgrade
    SigningKey.objects.update(unset__passports_expire_by=True)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["data", "build-registries"])
    assert first.exit_code == 0, first.output
    for name, count in expected.items():
        assert f"{name}: {count} added, 0 already present" in first.output
    second = runner.invoke(args=["data", "build-registries"])
    assert second.exit_code == 0 and "citizen_keys: 0 added, 2 already present" in second.output
    assert "signing_keys.passports_expire_by: 1 added" in first.output
    certificate = Certificate.objects.get(uvci=uvci)
    assert SigningKey.objects.get(kid=certificate.kid).passports_expire_by == certificate.expires_at
    assert [filled.added for filled in build_registries(utcnow())] == [0, 0, 0, 0, 0]
    alice = Citizen.objects.get(national_id=world["alice"].national_id)
    assert citizen_by_national_id(alice.national_id).id == alice.id
    assert client.post(f"{V1}/auth/refresh", json={"refresh_token": world["alice"].refresh_token}).status_code == 200
    CitizenKey.objects(id=alice.national_id).update_one(set__citizen_id=ObjectId())  # one CCCD, two citizens
    clash = runner.invoke(args=["data", "build-registries"])
    assert clash.exit_code == 1 and f"1 conflicting: {alice.national_id}" in clash.output


def test_records_pushed_after_the_migration_reach_migrated_citizens(client, world):
    CitizenKey.objects.delete()
    assert [f.registry for f in build_registries(utcnow() + timedelta(seconds=1))][0] == "citizen_keys"
    before = Citizen.objects.count()
    assert client.put(f"{V1}/facility/visits/AFTER", json=visit_body(), headers=world["hanoi"]).status_code == 201
    assert Citizen.objects.count() == before


def test_the_demo_seed_migrates_a_development_database_made_before_the_registries(citizens):
    account = citizens.enrol()
    CitizenKey.objects.delete()
    assert_problem(citizens.login(account), 401)
    seed()
    assert citizens.login(account).status_code == 200
