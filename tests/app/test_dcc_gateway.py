"""The EU DCC Gateway: its trust list format, the national-backend API, uploads to and downloads from
a loopback gateway that implements the gateway's documented contract."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from cryptography import x509

import passport
from app.models.audit import AuditEvent
from app.models.dcc_gateway import GatewayUpload
from app.models.passports import SigningKey
from app.runtime import runtime
from app.services.signing_keys import init_keys, rotate_keys
from passport import gateway
from tests.app.dcc_gateway_world import NOW, VECTORS, GatewayServer, new_gateway, party, write_pem
from tests.conftest import make_settings
from tests.helpers import system_context

V1 = "/api/v1"


@pytest.fixture
def world(tmp_path):
    """A gateway on a loopback port, Viet Nam's upload certificate and the gateway's trust anchor."""
    state = new_gateway()
    upload_key, upload = party("HoSo DCC Upload", "VN")
    cert_file, key_file = write_pem(tmp_path, "upload", upload_key, upload)
    anchor_file = tmp_path / "trust-anchor.pem"
    anchor_file.write_bytes(passport.certificate_pem(state.anchor))
    with GatewayServer(state) as server:
        yield SimpleNamespace(gateway=state, server=server, upload=upload, upload_key=upload_key,
                              cert_file=cert_file, key_file=key_file, anchor_file=anchor_file)


@pytest.fixture
def settings(mongodb_server, tmp_path, world):
    return make_settings(mongodb_server, tmp_path / "var", dcc_gateway_url=world.server.url,
                         rate_limit_verify_per_ip="100000 per minute",
                         dcc_gateway_upload_cert_file=world.cert_file, dcc_gateway_upload_key_file=world.key_file,
                         dcc_gateway_trust_anchor_file=world.anchor_file)


@pytest.fixture
def keys(app, world):
    """Viet Nam's CSCA and DSC, the CSCA onboarded at the gateway with the upload certificate."""
    init_keys(system_context(), runtime().settings)
    csca = x509.load_der_x509_certificate(bytes(SigningKey.objects.first().csca_der))
    world.gateway.onboard("VN", world.upload, csca)
    return csca


def test_trust_list_in_the_gateway_format_field_by_field(app, client, keys, world, tmp_path):
    ours = client.get(f"{V1}/passport/trust-list").json["dsc"]
    # the API signs nothing: Viet Nam's entry carries the signature the upload command made
    assert client.get(f"{V1}/passport/dcc/trustList").json[0]["signature"] == ""
    assert gateway_cli(app, "upload").exit_code == 0
    response = client.get(f"{V1}/passport/dcc/trustList")
    assert response.status_code == 200 and response.mimetype == "application/json"
    entries = response.json
    assert isinstance(entries, list) and len(entries) == len(ours) == 1
    entry = entries[0]
    assert set(entry) == {"kid", "timestamp", "country", "certificateType", "thumbprint", "signature", "rawData"}
    der = base64.b64decode(entry["rawData"], validate=True)
    assert base64.b64encode(der).decode() == ours[0]["certificate"]
    assert entry["kid"] == base64.b64encode(hashlib.sha256(der).digest()[:8]).decode() == ours[0]["kid"]
    assert entry["thumbprint"] == hashlib.sha256(der).hexdigest()
    assert entry["country"] == "VN" and entry["certificateType"] == "DSC"
    assert datetime.fromisoformat(entry["timestamp"]).tzinfo is not None
    # signature: a detached CMS over the DER, signed by the upload certificate (checked twice: by the
    # library, and by OpenSSL as an independent oracle)
    signer, content = gateway.verify_cms(base64.b64decode(entry["signature"]), der)
    assert signer == world.upload and content == der
    (tmp_path / "sig.der").write_bytes(base64.b64decode(entry["signature"]))
    (tmp_path / "dsc.der").write_bytes(der)
    checked = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.der",
                              "-content", tmp_path / "dsc.der", "-noverify", "-out", "/dev/null"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # the CLI reads this format too
    assert passport.gateway.gateway_trust_list(entries).candidates(base64.b64decode(entry["kid"]))


def test_national_backend_pages_one_certificate_per_call(client, keys):
    kids = client.get(f"{V1}/passport/dcc/signercertificateStatus").json
    first = client.get(f"{V1}/passport/dcc/signercertificateUpdate")
    assert first.status_code == 200 and first.mimetype == "text/plain"
    der = base64.b64decode(first.get_data(as_text=True), validate=True)
    # what the DGCA verifier app checks: X-KID is the SHA-256 prefix of the certificate, and listed
    assert first.headers["X-KID"] == base64.b64encode(hashlib.sha256(der).digest()[:8]).decode()
    assert kids == [first.headers["X-KID"]]
    token = int(first.headers["X-RESUME-TOKEN"])
    assert client.get(f"{V1}/passport/dcc/signercertificateUpdate",
                      headers={"X-RESUME-TOKEN": str(token)}).status_code == 204
    # a new DSC comes after the token an app kept; the old one signed no passport, so it is dropped
    rotate_keys(system_context(), runtime().settings, verify_cache=runtime().verify_cache)
    later = client.get(f"{V1}/passport/dcc/signercertificateUpdate", headers={"X-RESUME-TOKEN": str(token)})
    assert later.status_code == 200 and later.headers["X-KID"] != first.headers["X-KID"]
    assert int(later.headers["X-RESUME-TOKEN"]) > token
    assert client.get(f"{V1}/passport/dcc/signercertificateStatus").json == [later.headers["X-KID"]]


@pytest.mark.parametrize("token", ["abc", "-1", "1.5", str(2**63)])
def test_bad_resume_token_is_a_422(client, keys, token):
    response = client.get(f"{V1}/passport/dcc/signercertificateUpdate", headers={"X-RESUME-TOKEN": token})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"


def gateway_cli(app, *args):
    return app.test_cli_runner().invoke(args=["passport", "gateway", *args])


def test_upload_sends_each_dsc_in_a_cms_signed_by_the_upload_certificate(app, client, keys, world):
    result = gateway_cli(app, "upload")
    assert result.exit_code == 0, result.output
    kid = SigningKey.objects(state="active").first().kid
    assert f"ok: upload {kid} HTTP 201" in result.output
    assert world.gateway.calls == [("POST", "/signerCertificate", 201)]
    # the gateway now lists the DSC, with the upload certificate's detached CMS as its signature
    [listed] = world.gateway.dscs.values()
    ours = client.get(f"{V1}/passport/dcc/trustList").json[0]
    assert {key: listed[key] for key in ("kid", "country", "certificateType", "thumbprint", "rawData")} == \
        {key: ours[key] for key in ("kid", "country", "certificateType", "thumbprint", "rawData")}
    signer, _ = gateway.verify_cms(base64.b64decode(listed["signature"]), base64.b64decode(listed["rawData"]))
    assert signer == world.upload
    assert AuditEvent.objects(action="dcc_gateway.upload", outcome="success", target_id=kid).count() == 1
    # a second run has nothing to send
    again = gateway_cli(app, "upload")
    assert again.exit_code == 0 and "already on the gateway" in again.output
    assert len(world.gateway.calls) == 1


def test_a_wrongly_signed_upload_is_refused_and_reported(app, keys, world):
    _, stranger = party("Not Viet Nam's upload certificate", "VN")
    world.gateway.uploads["VN"] = [stranger]  # the gateway knows another upload certificate for VN
    result = gateway_cli(app, "upload")
    assert result.exit_code == 1
    assert "FAILED: upload" in result.output and "HTTP 400" in result.output
    assert "Invalid Upload Certificate" in result.output
    assert world.gateway.dscs == {} and GatewayUpload.objects.count() == 0
    assert AuditEvent.objects(action="dcc_gateway.upload", outcome="failure").count() == 1


def test_a_tampered_cms_is_refused_by_the_gateway(world):
    message = gateway.sign_cms(b"a DSC", world.upload, world.upload_key)
    tampered = message.replace(b"a DSC", b"b DSC")
    status, _, body = world.gateway.receive("POST", "/signerCertificate", {"Content-Type": "application/cms"},
                                            base64.b64encode(tampered))
    assert status == 400 and b"CMS signature is invalid" in body


def test_revoke_deletes_a_dsc_no_longer_published(app, keys, world):
    assert gateway_cli(app, "upload").exit_code == 0
    old = SigningKey.objects(state="active").first().kid
    # the old DSC signed nothing: no longer published
    rotate_keys(system_context(), runtime().settings, verify_cache=runtime().verify_cache)
    result = gateway_cli(app, "revoke")
    assert result.exit_code == 0, result.output
    assert f"ok: revoke {old} HTTP 204: deleted" in result.output
    assert ("DELETE", "/signerCertificate", 204) in world.gateway.calls
    assert world.gateway.dscs == {}
    assert GatewayUpload.objects(kid=old).first().state == "deleted"
    assert AuditEvent.objects(action="dcc_gateway.revoke", outcome="success", target_id=old).count() == 1
    uploaded = gateway_cli(app, "upload")
    new = SigningKey.objects(state="active").first().kid
    assert uploaded.exit_code == 0 and f"ok: upload {new} HTTP 201" in uploaded.output
    assert [entry["kid"] for entry in world.gateway.dscs.values()] == [new]


def test_revocations_go_up_in_signed_batches_per_kid_and_hash_type(app, client, keys, world):
    from app.services import passports
    from tests.helpers import CitizenActions, facility_token
    from tests.records_data import immunization_body

    account = CitizenActions(client).enrol()
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    assert client.put(f"{V1}/facility/immunizations/IM1", json=immunization_body(), headers=hanoi).status_code == 201
    issued = client.post(f"{V1}/me/passports", headers=account.headers).json
    certificate = passports.revoke(system_context(), issued["uvci"], "Issued in error",
                                   verify_cache=runtime().verify_cache)
    result = gateway_cli(app, "revocations")
    assert result.exit_code == 0, result.output
    batches = list(world.gateway.batches.values())
    assert sorted(batch["hashType"] for batch in batches) == ["COUNTRYCODEUCI", "SIGNATURE", "UCI"]
    expected = {"UCI": certificate.hash_uci, "COUNTRYCODEUCI": certificate.hash_countrycode_uci,
                "SIGNATURE": certificate.hash_signature}
    for batch in batches:
        assert batch["country"] == "VN" and batch["kid"] == issued["kid"]
        assert batch["entries"] == [{"hash": expected[batch["hashType"]]}]
        expires = datetime.fromisoformat(batch["expires"].replace("Z", "+00:00"))
        assert expires.replace(tzinfo=None) == certificate.expires_at.replace(tzinfo=None)
    assert AuditEvent.objects(action="dcc_gateway.revocations", outcome="success").count() == 3
    again = gateway_cli(app, "revocations")
    assert again.exit_code == 0 and again.output == "nothing to do\n" and len(world.gateway.batches) == 3


def test_gateway_settings_are_typed_and_checked(tmp_path, world):
    from app.settings import Settings, SettingsError

    env = {"HOSO_VAR_DIR": str(tmp_path / "v"), "HOSO_DCC_GATEWAY_URL": world.server.url,
           "HOSO_DCC_GATEWAY_UPLOAD_CERT_FILE": str(world.cert_file),
           "HOSO_DCC_GATEWAY_UPLOAD_KEY_FILE": str(world.key_file),
           "HOSO_DCC_GATEWAY_TRUST_ANCHOR_FILE": str(world.anchor_file)}
    settings = Settings.from_env(env)
    assert settings.dcc_gateway_upload_cert_file == world.cert_file
    assert settings.dcc_gateway_trust_anchor_file == world.anchor_file
    with pytest.raises(SettingsError, match="HOSO_DCC_GATEWAY_TLS_CERT_FILE is not a readable file"):
        Settings.from_env({**env, "HOSO_DCC_GATEWAY_TLS_CERT_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(SettingsError, match="go together"):
        Settings.from_env({key: value for key, value in env.items() if key != "HOSO_DCC_GATEWAY_UPLOAD_KEY_FILE"})
    with pytest.raises(SettingsError, match="HOSO_DCC_GATEWAY_URL"):
        Settings.from_env({**env, "HOSO_DCC_GATEWAY_URL": "ftp://gateway.example"})


def test_commands_name_the_missing_setting(app, keys, world, settings):
    runtime_settings = runtime().settings
    object.__setattr__(runtime(), "settings", runtime_settings.replace(dcc_gateway_upload_cert_file=None,
                                                                      dcc_gateway_upload_key_file=None))
    try:
        result = gateway_cli(app, "upload")
    finally:
        object.__setattr__(runtime(), "settings", runtime_settings)
    assert result.exit_code != 0 and "HOSO_DCC_GATEWAY_UPLOAD_CERT_FILE" in result.output
    assert world.gateway.calls == []


# --- inbound: other countries' DSCs ------------------------------------------------------------------

def _clock(moment: str):
    value = datetime.fromisoformat(moment)
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return lambda: value


def test_every_eu_test_vector_verifies_with_keys_from_the_gateway(app, client, keys, world):
    from app.models.dcc_gateway import ForeignSigningKey
    from tests.app.dcc_gateway_world import publish_vector_dscs, vector_dscs, verifying_vectors

    publish_vector_dscs(world.gateway)
    result = gateway_cli(app, "download")
    assert result.exit_code == 0, result.output
    total = sum(len(ders) for ders in vector_dscs().values())
    assert f"{total} added, 0 kept, 0 removed, 0 refused" in result.output
    assert ForeignSigningKey.objects(state="active").count() == total
    assert AuditEvent.objects(action="dcc_gateway.download", outcome="success").count() == 1
    # they are published too: the national-backend API and both trust lists
    kids = set(client.get(f"{V1}/passport/dcc/signercertificateStatus").json)
    assert len(kids) >= total - 1  # two vector DSCs may share a kid; none here do, but kids are a set
    listed = client.get(f"{V1}/passport/trust-list").json
    assert len(listed["dsc"]) == total + 1
    assert len(client.get(f"{V1}/passport/dcc/trustList").json) == total + 1
    vectors = verifying_vectors()
    assert len(vectors) > 500
    failures = {}
    for relative in vectors:
        vector = json.loads((VECTORS / relative).read_text())
        runtime().clock = _clock(vector["TESTCTX"]["VALIDATIONCLOCK"])
        body = client.post(f"{V1}/passport/verify", json={"hc1": vector["PREFIX"]}).json
        signature = next(check for check in body["checks"] if check["name"] == "signature")
        if signature["status"] != "ok":
            failures[relative] = signature["reason"]
    assert failures == {}


def test_a_forged_or_unsigned_entry_is_refused_and_changes_nothing(app, client, keys, world):
    from app.models.dcc_gateway import ForeignSigningKey
    from tests.app.dcc_gateway_world import party as make_party

    # Germany is onboarded with an upload certificate and a CSCA; one honest DSC
    de_upload_key, de_upload = make_party("DE upload", "DE")
    de_csca_key, de_csca = make_party("DE", "DE")
    world.gateway.onboard("DE", de_upload, de_csca)
    _, honest = passport.create_dsc(de_csca_key, de_csca, "DE DSC", NOW - timedelta(hours=1), NOW + timedelta(days=30))
    entry = gateway.dsc_entry(honest, "DE", NOW, (de_upload, de_upload_key))
    world.gateway.dscs[entry.thumbprint] = entry.to_json()
    assert gateway_cli(app, "download").exit_code == 0
    before = [(key.thumbprint, key.state, key.signature) for key in ForeignSigningKey.objects.order_by("thumbprint")]
    assert len(before) == 1
    # now the list also carries: a DSC signed by an unknown key, an unsigned one, the honest entry's
    # thumbprint over another certificate, a DSC no DE CSCA issued, and an upload certificate the
    # trust anchor never signed, with a DSC it signed
    intruder_key, intruder = make_party("intruder", "DE")
    _, forged = passport.create_dsc(de_csca_key, de_csca, "forged", NOW - timedelta(hours=1), NOW + timedelta(days=30))
    wrong_signer = gateway.dsc_entry(forged, "DE", NOW, (intruder, intruder_key)).to_json()
    unsigned = gateway.dsc_entry(forged, "DE", NOW, None).to_json()
    swapped = {**entry.to_json(), "rawData": base64.b64encode(passport.certificate_der(forged)).decode()}
    rogue_csca_key, rogue_csca = make_party("DE rogue", "DE")
    _, outsider = passport.create_dsc(rogue_csca_key, rogue_csca, "outsider", NOW - timedelta(hours=1),
                                      NOW + timedelta(days=30))
    not_issued = gateway.dsc_entry(outsider, "DE", NOW, (de_upload, de_upload_key)).to_json()
    fake_upload = gateway.trusted_party_entry(intruder, "DE", "UPLOAD", NOW, (intruder, intruder_key)).to_json()
    world.gateway.dscs.update({"a": wrong_signer, "b": unsigned, "c": swapped, "d": not_issued})
    world.gateway.extra = [fake_upload]
    result = gateway_cli(app, "download")
    assert result.exit_code == 0, result.output
    assert "0 added, 1 kept, 0 removed, 5 refused" in result.output
    for reason in ("not signed by an upload certificate of DE", "the entry is not signed",
                   "the thumbprint is not the SHA-256 of the certificate", "not issued by a CSCA of DE",
                   "not signed by the gateway's trust anchor"):
        assert reason in result.output
    after = [(key.thumbprint, key.state, key.signature) for key in ForeignSigningKey.objects.order_by("thumbprint")]
    assert after == before
    kids = client.get(f"{V1}/passport/dcc/signercertificateStatus").json
    assert base64.b64encode(passport.kid(forged)).decode() not in kids
    assert base64.b64encode(passport.kid(honest)).decode() in kids


def test_a_list_that_is_not_a_list_changes_nothing(app, keys, world, tmp_path):
    from app.models.dcc_gateway import ForeignSigningKey

    bad = tmp_path / "trust.json"
    bad.write_text(json.dumps({"dsc": []}))
    result = gateway_cli(app, "download", "--file", str(bad))
    assert result.exit_code != 0 and "a gateway trust list is a JSON array" in result.output
    assert ForeignSigningKey.objects.count() == 0
    assert AuditEvent.objects(action="dcc_gateway.download", outcome="failure").count() == 1


def test_download_from_a_file_and_removal_of_keys_no_longer_listed(app, client, keys, world, tmp_path):
    from app.models.dcc_gateway import ForeignSigningKey
    from tests.app.dcc_gateway_world import publish_vector_dscs

    publish_vector_dscs(world.gateway)
    saved = tmp_path / "trustList.json"
    saved.write_text(json.dumps(world.gateway.trust_list()))
    result = gateway_cli(app, "download", "--file", str(saved))
    assert result.exit_code == 0 and "file:trustList.json" in result.output
    assert world.gateway.calls == []  # the file, not the gateway
    count = ForeignSigningKey.objects(state="active").count()
    dropped = next(iter(world.gateway.dscs))
    del world.gateway.dscs[dropped]
    result = gateway_cli(app, "download")
    assert result.exit_code == 0 and "1 removed" in result.output
    assert ForeignSigningKey.objects(state="active").count() == count - 1
    assert ForeignSigningKey.objects(thumbprint=dropped).first().state == "removed"
    kids = client.get(f"{V1}/passport/dcc/signercertificateStatus").json
    assert ForeignSigningKey.objects(thumbprint=dropped).first().kid not in kids


def test_upload_over_mutual_tls_with_the_client_certificate(mongodb_server, tmp_path, world):
    from app import create_app
    from tests.app.dcc_gateway_world import server_tls, tls_material
    from tests.conftest import drop_database

    paths = tls_material(tmp_path)
    with GatewayServer(world.gateway, server_tls(paths)) as server:
        base = make_settings(mongodb_server, tmp_path / "var", dcc_gateway_url=server.url,
                             dcc_gateway_upload_cert_file=world.cert_file, dcc_gateway_upload_key_file=world.key_file,
                             dcc_gateway_ca_file=paths["ca"])
        for settings, works in ((base, False), (base.replace(dcc_gateway_tls_cert_file=paths["client_cert"],
                                                             dcc_gateway_tls_key_file=paths["client_key"]), True)):
            app = create_app(settings)
            try:
                with app.app_context():
                    init_keys(system_context(), runtime().settings)
                    csca = x509.load_der_x509_certificate(bytes(SigningKey.objects.first().csca_der))
                    world.gateway.uploads.clear()
                    world.gateway.onboard("VN", world.upload, csca)
                    result = gateway_cli(app, "upload")
                    if works:
                        assert result.exit_code == 0 and "HTTP 201" in result.output, result.output
                    else:  # the gateway refuses a client without its certificate
                        assert result.exit_code != 0 and "cannot be reached" in result.output, result.output
            finally:
                drop_database(settings)
    assert len(world.gateway.dscs) == 1


def test_a_refused_entry_with_unstorable_text_is_still_audited(app, keys, world, tmp_path):
    """Review: details taken from a foreign list cannot make the import's audit event unstorable."""
    from app.models.audit import AuditEvent
    from app.models.dcc_gateway import ForeignSigningKey
    from tests.app.dcc_gateway_world import publish_vector_dscs

    publish_vector_dscs(world.gateway)
    document = world.gateway.trust_list()
    document.append({"kid": "\ud800", "timestamp": "x", "country": "DE", "certificateType": "DSC",
                     "thumbprint": "00", "signature": "", "rawData": "AA=="})
    saved = tmp_path / "trustList.json"
    saved.write_text(json.dumps(document))
    gateway_cli(app, "download", "--file", str(saved))
    assert ForeignSigningKey.objects(state="active").count() > 0
    event = AuditEvent.objects(action="dcc_gateway.download").get()
    assert any("\\ud800" in refusal["kid"] for refusal in event.details["refused"])
