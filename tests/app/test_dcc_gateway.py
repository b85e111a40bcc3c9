"""The EU DCC Gateway: its trust list format, the national-backend API, uploads to and downloads from
a loopback gateway that implements the gateway's documented contract."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from datetime import datetime
from types import SimpleNamespace

import pytest
from cryptography import x509

import passport
from app.models.passports import SigningKey
from app.runtime import runtime
from app.services.signing_keys import init_keys, rotate_keys
from passport import gateway
from tests.app.dcc_gateway_world import GatewayServer, new_gateway, party, write_pem
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
                         dcc_gateway_upload_cert_file=world.cert_file, dcc_gateway_upload_key_file=world.key_file,
                         dcc_gateway_trust_anchor_file=world.anchor_file)


@pytest.fixture
def keys(app, world):
    """Viet Nam's CSCA and DSC, the CSCA onboarded at the gateway with the upload certificate."""
    init_keys(system_context(), runtime().settings)
    csca = x509.load_der_x509_certificate(bytes(SigningKey.objects.first().csca_der))
    world.gateway.onboard("VN", world.upload, csca)
    return csca


def test_trust_list_in_the_gateway_format_field_by_field(client, keys, world, tmp_path):
    ours = client.get(f"{V1}/passport/trust-list").json["dsc"]
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
    rotate_keys(system_context(), runtime().settings)
    later = client.get(f"{V1}/passport/dcc/signercertificateUpdate", headers={"X-RESUME-TOKEN": str(token)})
    assert later.status_code == 200 and later.headers["X-KID"] != first.headers["X-KID"]
    assert int(later.headers["X-RESUME-TOKEN"]) > token
    assert client.get(f"{V1}/passport/dcc/signercertificateStatus").json == [later.headers["X-KID"]]


@pytest.mark.parametrize("token", ["abc", "-1", "1.5", str(2**63)])
def test_bad_resume_token_is_a_422(client, keys, token):
    response = client.get(f"{V1}/passport/dcc/signercertificateUpdate", headers={"X-RESUME-TOKEN": token})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
