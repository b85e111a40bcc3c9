"""The signing service over real loopback HTTP, and its client ``RemoteSigner``."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest

from passport import (
    RemoteSigner,
    SigningError,
    TrustList,
    build_claims,
    build_payload,
    certificate_der,
    certificate_pem,
    new_uvci,
    save_private_key,
    verify,
)
from passport.remote import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signature,
    response_signature,
)
from tests.passport.conftest import issue_checked, make_record, pycose_verifies

SECRET = b"s3rvice-shared-secret-0123456789-abcdef"
PASSPHRASE = b"dsc key passphrase"


@dataclass(frozen=True)
class Service:
    url: str
    files: dict[str, Path]


def write_key_material(directory: Path, pki, secret: bytes = SECRET, passphrase: bytes = PASSPHRASE
                       ) -> dict[str, Path]:
    files = {name: directory / name for name in ("dsc.pem", "dsc.key.pem", "passphrase", "secret")}
    files["dsc.pem"].write_bytes(certificate_pem(pki.dsc))
    save_private_key(files["dsc.key.pem"], pki.dsc_key, PASSPHRASE)
    files["passphrase"].write_bytes(passphrase + b"\n")
    files["secret"].write_bytes(secret + b"\n")
    return files


def start(files: dict[str, Path]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "passport.service", "--dsc-cert", str(files["dsc.pem"]),
         "--dsc-key", str(files["dsc.key.pem"]), "--passphrase-file", str(files["passphrase"]),
         "--secret-file", str(files["secret"]), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory, pki) -> Iterator[Service]:
    files = write_key_material(tmp_path_factory.mktemp("signer"), pki)
    process = start(files)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        pytest.fail(f"the signing service did not start: {process.communicate()[1]}")
    yield Service(url, files)
    process.terminate()
    assert process.wait(timeout=10) == 0


def now_utc() -> datetime:
    """The signing service checks iat against its own clock, so these tests use the real time."""
    return datetime.now(UTC).replace(microsecond=0)


def good_claims(moment: datetime | None = None, changes: dict | None = None) -> dict:
    moment = moment or now_utc()
    claims = build_claims(build_payload(make_record(), new_uvci()), moment, moment + timedelta(days=30))
    claims.update(changes or {})
    return claims


def post(url: str, path: str, body: bytes, secret: bytes = SECRET, timestamp: int | None = None,
         content_type: str = "application/cbor", method: str = "POST", signature: str | None = None,
         nonce: str | None = None) -> tuple[int, dict[str, str], bytes]:
    stamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    mac = signature or request_signature(secret, method, path, stamp, nonce, body)
    request = urllib.request.Request(url + path, data=body if method == "POST" else None, method=method,
                                     headers={TIMESTAMP_HEADER: str(stamp), NONCE_HEADER: nonce,
                                              SIGNATURE_HEADER: mac, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_remote_signer_issues_passports_that_verify(service, pki):
    signer = RemoteSigner(service.url, SECRET)
    assert certificate_der(signer.certificate) == certificate_der(pki.dsc)
    moment = now_utc()
    passport = issue_checked(make_record(), signer, moment)
    assert verify(passport.hc1, TrustList.of([signer.certificate], [pki.csca]), moment).valid
    pycose_verifies(passport.hc1, pki.dsc)


def test_the_certificate_is_public(service, pki):
    with urllib.request.urlopen(service.url + "/certificate", timeout=10) as response:
        assert response.headers["Content-Type"] == "application/pkix-cert"
        assert response.read() == certificate_der(pki.dsc)
        assert SIGNATURE_HEADER not in response.headers  # nothing to bind an anonymous request to


def test_answers_to_authenticated_requests_are_authenticated(service):
    body = cbor2.dumps(good_claims())
    stamp, nonce = int(time.time()), secrets.token_hex(16)
    mac = request_signature(SECRET, "POST", "/sign", stamp, nonce, body)
    status, headers, answer = post(service.url, "/sign", body, timestamp=stamp, signature=mac, nonce=nonce)
    assert status == 200 and headers["Content-Type"] == "application/cose"
    assert headers[SIGNATURE_HEADER] == response_signature(SECRET, mac, 200, answer)


def test_a_wrong_secret_is_refused(service):
    status, headers, answer = post(service.url, "/sign", cbor2.dumps(good_claims()), secret=b"x" * 40)
    assert status == 401
    assert json.loads(answer)["status"] == 401
    with pytest.raises(SigningError, match="not authenticated"):
        RemoteSigner(service.url, b"another secret of at least 32 bytes!!").sign(good_claims())


@pytest.mark.parametrize("offset", [-600, 600])
def test_a_stale_or_future_timestamp_is_refused(service, offset):
    status, _headers, _answer = post(service.url, "/sign", cbor2.dumps(good_claims()),
                                     timestamp=int(time.time()) + offset)
    assert status == 401
    signer = RemoteSigner(service.url, SECRET, clock=lambda: time.time() + offset)
    with pytest.raises(SigningError):
        signer.refresh()


def test_a_replayed_request_is_refused(service):
    body = cbor2.dumps(good_claims())
    stamp, nonce = int(time.time()), secrets.token_hex(16)
    assert post(service.url, "/sign", body, timestamp=stamp, nonce=nonce)[0] == 200
    assert post(service.url, "/sign", body, timestamp=stamp, nonce=nonce)[0] == 401


def test_a_tampered_body_is_refused(service):
    body = cbor2.dumps(good_claims())
    stamp, nonce = int(time.time()), secrets.token_hex(16)
    mac = request_signature(SECRET, "POST", "/sign", stamp, nonce, body)
    tampered = cbor2.dumps(good_claims())
    assert post(service.url, "/sign", tampered, timestamp=stamp, signature=mac, nonce=nonce)[0] == 401


def _over_a_year():
    moment = now_utc()
    return good_claims(moment, {4: int((moment + timedelta(days=366)).timestamp())})


def _past_the_dsc(pki):
    moment = now_utc()
    claims = good_claims(moment)
    claims[6] = int((pki.dsc.not_valid_after_utc - timedelta(days=10)).timestamp())
    claims[4] = int((pki.dsc.not_valid_after_utc + timedelta(days=1)).timestamp())
    return claims


@pytest.mark.parametrize("make, detail", [
    (lambda pki: good_claims(changes={1: "FR"}), "issuer"),
    (lambda pki: _over_a_year(), "365"),
    (_past_the_dsc, "DSC"),
    (lambda pki: good_claims(changes={6: float(int(time.time()))}), "integers"),
    (lambda pki: good_claims(changes={6: int(time.time()) - 3 * 86400}), "clock"),
    (lambda pki: good_claims(changes={6: int(time.time()) + 3600}), "clock"),
    (lambda pki: {**good_claims(), 7: b"cti"}, "exactly"),
    (lambda pki: good_claims(changes={-260: {1: {"ver": "1.3.0"}}}), "schema"),
    (lambda pki: good_claims(changes={-260: {1: {**build_payload(make_record(), new_uvci()), "v": [], "t": [{}]}}}),
     "schema"),
    (lambda pki: good_claims(changes={-260: {1: _with_uvci("URN:UVCI:01:VN:ABC#A")}}), "UVCI"),
    (lambda pki: good_claims(changes={-260: {1: _with_uvci(new_uvci("FR"))}}), "UVCI"),
    (lambda pki: [1, 2, 3], "exactly"),
])
def test_invalid_claims_are_refused(service, pki, make, detail):
    status, _headers, answer = post(service.url, "/sign", cbor2.dumps(make(pki)))
    assert status == 422
    assert detail in json.loads(answer)["detail"]


def _with_uvci(uvci: str) -> dict:
    payload = build_payload(make_record(), new_uvci())
    payload["v"][0]["ci"] = uvci
    return payload


def test_a_test_certificate_is_refused_by_a_vaccination_dsc(service):
    payload = build_payload(make_record(), new_uvci())
    entry = payload.pop("v")[0]
    payload["t"] = [{"tg": entry["tg"], "tt": "LP6464-4", "sc": "2026-05-30T10:00:00Z", "tr": "260415000",
                     "co": "VN", "is": entry["is"], "ci": entry["ci"]}]
    status, _headers, answer = post(service.url, "/sign", cbor2.dumps(good_claims(changes={-260: {1: payload}})))
    assert status == 422 and "may not sign test" in json.loads(answer)["detail"]


def test_remote_signer_reports_refusals(service):
    with pytest.raises(SigningError, match="422"):
        RemoteSigner(service.url, SECRET).sign(good_claims(changes={1: "FR"}))


@pytest.mark.parametrize("path, method, body, content_type, status", [
    ("/sign", "POST", b"\xff\xff", "application/cbor", 400),
    ("/sign", "POST", cbor2.dumps({}), "application/json", 415),
    ("/sign", "POST", b"x" * 20_000, "application/cbor", 413),
    ("/nowhere", "POST", b"", "application/cbor", 404),
    ("/sign", "GET", b"", "application/cbor", 405),
    ("/certificate", "POST", b"", "application/cbor", 405),
])
def test_http_errors(service, path, method, body, content_type, status):
    answer = post(service.url, path, body, method=method, content_type=content_type)
    assert answer[0] == status
    assert answer[1]["Content-Type"] == "application/problem+json"


def test_the_caller_of_remote_signer_never_loads_a_private_key(service, pki):
    """A fresh process where every way to load or make a private key raises, and every open() is audited."""
    script = textwrap.dedent(f"""
        import json, sys
        from datetime import UTC, datetime
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        opened = []
        sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
        calls = []

        def refuse(name):
            def refused(*args, **kwargs):
                calls.append(name)
                raise AssertionError(name + " called")
            return refused

        for module, names in ((serialization, ["load_pem_private_key", "load_der_private_key",
                                               "load_ssh_private_key"]),
                              (ec, ["generate_private_key", "derive_private_key"]),
                              (rsa, ["generate_private_key"]), (ed25519.Ed25519PrivateKey, ["generate"])):
            for name in names:
                setattr(module, name, refuse(name))

        import passport
        from tests.passport.conftest import make_record

        signer = passport.RemoteSigner({service.url!r}, {SECRET!r})
        moment = datetime.now(UTC)
        issued = passport.issue(make_record(), signer, moment)
        result = passport.verify(issued.hc1, passport.TrustList.of([signer.certificate]), moment)
        print(json.dumps({{"valid": result.valid, "calls": calls, "hc1": issued.hc1,
                           "key_file_opened": any({str(service.files["dsc.key.pem"])!r} in path
                                                  for path in opened)}}))
    """)
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    pycose_verifies(outcome.pop("hc1"), pki.dsc)
    assert outcome == {"valid": True, "calls": [], "key_file_opened": False}


@pytest.mark.parametrize("changes, message", [({"passphrase": b"not the passphrase"}, "passphrase"),
                                              ({"secret": b"too short"}, "32 bytes")])
def test_the_service_refuses_bad_key_material(tmp_path, pki, changes, message):
    process = start(write_key_material(tmp_path, pki, **changes))
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert message in err


def test_remote_signer_configuration_errors():
    with pytest.raises(Exception, match="32 bytes"):
        RemoteSigner("http://127.0.0.1:1", b"short")
    with pytest.raises(SigningError, match="http"):
        RemoteSigner("file:///etc/passwd", SECRET)
    with pytest.raises(SigningError, match="unreachable"):
        RemoteSigner("http://127.0.0.1:9", SECRET, timeout=2).refresh()
