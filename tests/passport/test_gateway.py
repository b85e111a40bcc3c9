"""passport.gateway: CMS messages, trust list entries checked from the trust anchor down, batches,
and ``python -m passport verify`` reading the gateway's trust list."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms

import passport
from passport import gateway
from passport.cli import main

NOW = datetime.now(UTC)
VECTORS = Path(__file__).parents[1] / "data" / "dcc" / "vectors"


def party(name, country="VN"):
    return passport.create_csca(name, NOW - timedelta(days=1), NOW + timedelta(days=30), country)


@pytest.fixture(scope="module")
def chain():
    anchor = party("Trust Anchor", "EU")
    upload = party("Upload")
    csca = party("CSCA")
    dsc_key, dsc = passport.create_dsc(csca[0], csca[1], "DSC", NOW - timedelta(hours=1), NOW + timedelta(days=7))
    return {"anchor": anchor, "upload": upload, "csca": csca, "dsc": dsc, "dsc_key": dsc_key}


def honest_list(chain):
    anchor = (chain["anchor"][1], chain["anchor"][0])
    return [
        gateway.trusted_party_entry(chain["upload"][1], "VN", "UPLOAD", NOW, anchor).to_json(),
        gateway.trusted_party_entry(chain["csca"][1], "VN", "CSCA", NOW, anchor).to_json(),
        gateway.dsc_entry(chain["dsc"], "VN", NOW, (chain["upload"][1], chain["upload"][0])).to_json(),
    ]


def test_cms_round_trip_embedded_and_detached(chain, tmp_path):
    key, certificate = chain["upload"]
    message = gateway.sign_cms(b"payload", certificate, key)
    assert gateway.verify_cms(message) == (certificate, b"payload")
    detached = gateway.sign_cms(b"payload", certificate, key, detached=True)
    assert gateway.verify_cms(detached, b"payload") == (certificate, b"payload")
    # OpenSSL, an independent implementation, agrees
    (tmp_path / "m.der").write_bytes(message)
    out = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "m.der",
                          "-noverify"], capture_output=True)
    assert out.returncode == 0 and out.stdout == b"payload", out.stderr


def test_cms_refuses_what_is_not_exactly_one_valid_signature(chain):
    key, certificate = chain["upload"]
    message = gateway.sign_cms(b"payload", certificate, key)
    with pytest.raises(passport.GatewayError, match="does not verify|digest"):
        gateway.verify_cms(message.replace(b"payload", b"paylaod"))
    detached = gateway.sign_cms(b"payload", certificate, key, detached=True)
    with pytest.raises(passport.GatewayError, match="digest"):
        gateway.verify_cms(detached, b"other")
    with pytest.raises(passport.GatewayError, match="embedded or given"):
        gateway.verify_cms(detached)
    with pytest.raises(passport.GatewayError, match="embedded or given"):
        gateway.verify_cms(message, b"payload")
    with pytest.raises(passport.GatewayError, match="not a CMS"):
        gateway.verify_cms(b"\x30\x03\x02\x01\x01")
    # a second certificate
    info = cms.ContentInfo.load(message)
    info["content"]["certificates"] = cms.CertificateSet(
        [info["content"]["certificates"][0], cms.CertificateChoices.load(
            cms.CertificateChoices({"certificate": info["content"]["certificates"][0].chosen}).dump())])
    with pytest.raises(passport.GatewayError, match="exactly one X.509 certificate"):
        gateway.verify_cms(info.dump(force=True))
    # a digest algorithm other than the signature's
    mixed = cms.ContentInfo.load(message)
    mixed["content"]["signer_infos"][0]["digest_algorithm"] = cms.DigestAlgorithm({"algorithm": "sha384"})
    with pytest.raises(passport.GatewayError, match="disagree"):
        gateway.verify_cms(mixed.dump(force=True))
    # signed by someone else, with the upload certificate put in its place
    other_key, other = party("Other")
    swapped = cms.ContentInfo.load(gateway.sign_cms(b"payload", other, other_key))
    upload_certificate = cms.Certificate.load(passport.certificate_der(certificate))
    choice = cms.CertificateChoices({"certificate": upload_certificate})
    swapped["content"]["certificates"] = cms.CertificateSet([choice])
    with pytest.raises(passport.GatewayError, match="not the embedded certificate"):
        gateway.verify_cms(swapped.dump(force=True))


def test_an_honest_list_is_accepted_with_its_csca_checked(chain):
    checked = gateway.read_trust_list(honest_list(chain), [chain["anchor"][1]])
    assert checked.refused == []
    [accepted] = checked.dscs
    assert accepted.certificate.kid == passport.kid(chain["dsc"]) and accepted.csca_checked
    assert accepted.entry.country == "VN"


@pytest.mark.parametrize("forgery", ["anchor", "upload", "csca", "thumbprint", "kid", "unsigned", "country"])
def test_each_forgery_is_refused_alone(chain, forgery):
    entries = honest_list(chain)
    stranger = party("Stranger")
    if forgery == "anchor":  # the upload certificate signed by someone other than the trust anchor
        entries[0] = gateway.trusted_party_entry(chain["upload"][1], "VN", "UPLOAD", NOW,
                                                 (stranger[1], stranger[0])).to_json()
    elif forgery == "upload":  # the DSC signed by a key that is not VN's upload certificate
        entries[2] = gateway.dsc_entry(chain["dsc"], "VN", NOW, (stranger[1], stranger[0])).to_json()
    elif forgery == "csca":  # a DSC no VN CSCA issued
        _, outsider = passport.create_dsc(stranger[0], stranger[1], "x", NOW - timedelta(hours=1), NOW + timedelta(1))
        entries[2] = gateway.dsc_entry(outsider, "VN", NOW, (chain["upload"][1], chain["upload"][0])).to_json()
    elif forgery == "thumbprint":
        entries[2] = {**entries[2], "thumbprint": "00" * 32}
    elif forgery == "kid":
        entries[2] = {**entries[2], "kid": base64.b64encode(b"12345678").decode()}
    elif forgery == "unsigned":
        entries[2] = {**entries[2], "signature": ""}
    elif forgery == "country":  # VN's DSC presented as Germany's: no DE upload certificate signed it
        entries[2] = {**entries[2], "country": "DE"}
    checked = gateway.read_trust_list(entries, [chain["anchor"][1]])
    # a forged upload certificate takes the DSCs it signed with it
    assert checked.dscs == [] and len(checked.refused) == (2 if forgery == "anchor" else 1)


def test_a_list_needs_a_trust_anchor_and_an_array(chain):
    with pytest.raises(passport.GatewayError, match="trust anchor"):
        gateway.read_trust_list(honest_list(chain), [])
    with pytest.raises(passport.GatewayError, match="JSON array"):
        gateway.read_trust_list({"dsc": []}, [chain["anchor"][1]])
    checked = gateway.read_trust_list([1, {"kid": 2}], [chain["anchor"][1]])
    assert len(checked.refused) == 2 and checked.dscs == []


def test_revocation_batch_in_the_gateway_format():
    text = gateway.revocation_batch("VN", b"\x01" * 8, "UCI", [b"\x02" * 16, b"\x03" * 16],
                                    datetime(2027, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    assert json.loads(text) == {"country": "VN", "expires": "2027-01-02T03:04:05.678Z", "kid": "AQEBAQEBAQE=",
                                "hashType": "UCI", "entries": [{"hash": "AgICAgICAgICAgICAgICAg=="},
                                                               {"hash": "AwMDAwMDAwMDAwMDAwMDAw=="}]}
    with pytest.raises(passport.GatewayError):
        gateway.revocation_batch("VN", None, "UCI", [], NOW)
    with pytest.raises(passport.GatewayError):
        gateway.revocation_batch("VN", None, "HASH", [b"\x02" * 16], NOW)
    assert json.loads(gateway.revocation_batch("VN", None, "SIGNATURE", [b"\x02" * 16], NOW))["kid"] == "UNKNOWN_KID"


def test_the_cli_reads_the_gateway_trust_list(tmp_path, capsys):
    vector = json.loads((VECTORS / "DE" / "2DCode" / "raw" / "1.json").read_text())
    der = base64.b64decode(vector["TESTCTX"]["CERTIFICATE"])
    key, upload = party("DE upload", "DE")
    trust = tmp_path / "trustList.json"
    trust.write_text(json.dumps([gateway.dsc_entry(der, "DE", NOW, (upload, key)).to_json()]))
    code = main(["verify", "--trust-list", str(trust), "--at", vector["TESTCTX"]["VALIDATIONCLOCK"],
                 vector["PREFIX"]])
    result = json.loads(capsys.readouterr().out)
    signature = next(check for check in result["checks"] if check["name"] == "signature")
    assert signature["status"] == "ok" and "DE" in signature["reason"], result
    assert code in (0, 1)
    trust.write_text(json.dumps([{**json.loads(trust.read_text())[0], "thumbprint": "00"}]))
    assert main(["verify", "--trust-list", str(trust), vector["PREFIX"]]) == 2


def test_a_cms_whose_certificate_key_cannot_be_loaded_is_refused_not_raised():
    """Review: an unknown curve in the embedded certificate refuses that entry (GatewayError), it
    does not stop the whole import with cryptography's UnsupportedAlgorithm."""
    from asn1crypto import keys as asn1_keys

    now = datetime.now(UTC)
    key, cert = passport.create_csca("Upload", now - timedelta(days=1), now + timedelta(days=30), "DE")
    info = cms.ContentInfo.load(gateway.sign_cms(b"payload", cert, key, detached=True))
    spki = info["content"]["certificates"][0].chosen["tbs_certificate"]["subject_public_key_info"]
    spki["algorithm"]["parameters"] = asn1_keys.ECDomainParameters(name="named", value="1.3.132.0.6")
    with pytest.raises(passport.GatewayError):
        gateway.verify_cms(cms.ContentInfo.load(info.dump(force=True)).dump(), b"payload")
