"""The verifier page (GET /verify) end to end, in headless Chromium against the app on a loopback server.

A fresh HoSo passport verifies green; a tampered, an expired and a revoked one red with the right reason;
then, with the server gone, the page opens and verifies again from its service worker's cache. The page's
verdict is compared with the CLI's code path (``passport.cli.verify_document``) every time, and over every
EU DCC conformance vector that carries EXPECTEDVERIFY. Screenshots go to ``test-artifacts/verifier/``.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cbor2
import pytest
import segno
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.clock import VIETNAM
from app.runtime import runtime
from app.services.signing_keys import init_keys
from passport import b45, certificate_der, create_csca, create_dsc, kid
from passport.cli import verify_document
from passport.cose import bstr, encode_cbor, sig_structure
from tests.helpers import system_context
from tests.web.conftest import LiveServer, launch
from tests.web.helpers import PHONE, issue_passport, open_page, recent_dose, verify_on_page, wait_until

V1 = "/api/v1"
DATA = Path(__file__).parents[1] / "data" / "dcc"
VECTORS = DATA / "vectors"
KNOWN_DIFFERENCES = Path(__file__).parent / "verifier-known-differences.json"
LAPTOP = {"width": 1280, "height": 800}
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------------------ helpers


class RequestLog:
    """WSGI middleware that records what reaches the server (to prove nothing of a passport is sent)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.entries: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self.entries.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                 environ.get("QUERY_STRING", "")))
        return self.app(environ, start_response)


def tamper(hc1: str) -> str:
    """Change one Base45 character in the middle of the text."""
    middle = len("HC1:") + (len(hc1) - len("HC1:")) // 2
    replacement = BASE45[(BASE45.index(hc1[middle]) + 7) % 45]
    return hc1[:middle] + replacement + hc1[middle + 1:]


def cli_verdict(hc1: str, trust: Any, revocations: Any, at: datetime) -> tuple[bool, list[str]]:
    """The verdict of ``python -m passport verify`` (its code path): validity and failed checks."""
    result = verify_document(hc1, trust, at, revocations)
    return result.valid, [check.name for check in result.checks if check.status == "failed"]


def lists_of(client: Any) -> tuple[Any, Any]:
    return client.get(f"{V1}/passport/trust-list").json, client.get(f"{V1}/passport/revocations").json


# ------------------------------------------------------------------------------------------ tests


def test_page_verifies_hoso_passports_online_and_offline(app, client, staff, browser, artifacts):
    init_keys(system_context(), runtime().settings)
    fresh = issue_passport(client, 123456, **recent_dose())
    revoked = issue_passport(client, 222222)
    response = client.post(f"{V1}/admin/passports/{quote(revoked['uvci'], safe='')}/revoke",
                           json={"reason": "dose recorded for the wrong person"}, headers=staff.headers())
    assert response.status_code == 200
    trust, revocations = lists_of(client)
    log = RequestLog(app.wsgi_app)
    app.wsgi_app = log  # type: ignore[method-assign]
    server = LiveServer(app)
    context = browser.new_context(viewport=PHONE, locale="en-GB", service_workers="allow")
    page = context.new_page()
    errors: list[str] = []
    console_errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    try:
        open_page(page, f"{server.url}/verify?lang=en")
        lists_text = page.inner_text("#lists-text")
        for expected in ("Trust list updated", "signing keys: 1", "revoked: 1", "rules: 1 countries"):
            assert expected in lists_text, lists_text
        wait_until(page, "navigator.serviceWorker.controller !== null")

        # A fresh passport: green, with what staff compare against an ID document.
        now = datetime.now(UTC)
        valid, failed, _ = verify_on_page(page, fresh["hc1"])
        assert (valid, failed) == cli_verdict(fresh["hc1"], trust, revocations, now) == (True, [])
        holder = page.inner_text("#holder")
        dose_day = datetime.fromisoformat(recent_dose()["administered_at"]).astimezone(VIETNAM).date().isoformat()
        for expected in ("Nguyễn Văn Nam", "NGUYEN<<VAN<NAM", "1985-03-14", "Comirnaty", "2/2", dose_day, "VN"):
            assert expected in holder, (expected, holder)
        assert page.is_visible("#compare-id")
        page.screenshot(path=artifacts / "green.png", full_page=True)

        # Tampered: one Base45 character changed.
        tampered = tamper(fresh["hc1"])
        valid, failed, reasons = verify_on_page(page, tampered)
        assert not valid and failed and reasons.strip()
        assert (valid, failed) == cli_verdict(tampered, trust, revocations, now)
        assert not page.is_visible("#compare-id") and page.inner_text("#holder") == ""
        page.screenshot(path=artifacts / "red-tampered.png", full_page=True)

        # Revoked by an administrator: on the revocation list the page fetched.
        valid, failed, reasons = verify_on_page(page, revoked["hc1"])
        assert (valid, failed) == (False, ["revocation"]) == cli_verdict(revoked["hc1"], trust, revocations, now)
        assert "Revoked" in reasons and "revoked (matched by its UCI hash)" in reasons
        page.screenshot(path=artifacts / "red-revoked.png", full_page=True)

        # Expired: the verification clock a day after the passport's end.
        later = datetime.fromisoformat(fresh["expires_at"]).astimezone(UTC) + timedelta(days=1)
        open_page(page, f"{server.url}/verify?lang=en&at={quote(later.isoformat())}")
        assert "Test mode" in page.inner_text("#clock")
        valid, failed, reasons = verify_on_page(page, fresh["hc1"])
        assert not valid and "expiry" in failed and "Expired" in reasons
        assert (valid, failed) == cli_verdict(fresh["hc1"], trust, revocations, later)
        page.screenshot(path=artifacts / "red-expired.png", full_page=True)

        # Vietnamese.
        open_page(page, f"{server.url}/verify?lang=vi")
        valid, _, _ = verify_on_page(page, fresh["hc1"])
        assert valid and "HỢP LỆ" in page.inner_text("#verdict") and "Ngày sinh" in page.inner_text("#holder")
        page.screenshot(path=artifacts / "green-vi.png", full_page=True)

        # No Content-Security-Policy violation, no failed request, no script error so far.
        assert console_errors == []

        # Offline: the server is gone; the page, its code and both lists come from the cache.
        served_before = len(log.entries)
        server.stop()
        context.set_offline(True)
        open_page(page, f"{server.url}/verify?lang=en")
        assert "Offline" in page.inner_text("#network")
        assert "Trust list updated" in page.inner_text("#lists-text")
        valid, failed, _ = verify_on_page(page, fresh["hc1"])
        assert (valid, failed) == (True, [])
        valid, failed, reasons = verify_on_page(page, revoked["hc1"])
        assert (valid, failed) == (False, ["revocation"]) and "Revoked" in reasons
        verify_on_page(page, fresh["hc1"])
        page.screenshot(path=artifacts / "green-offline.png", full_page=True)
        assert len(log.entries) == served_before
    finally:
        context.close()
        server.stop()
        app.wsgi_app = log.app  # type: ignore[method-assign]

    assert errors == []
    # Nothing of a passport ever reached the server: only GETs of the page, its files and the two lists.
    paths = {path for _, path, _ in log.entries}
    assert {method for method, _, _ in log.entries} == {"GET"}
    assert paths <= {"/verify", "/verify/app.js", "/verify/sw.js", "/verify/style.css", "/verify/icon.svg",
                     "/verify/manifest.webmanifest", f"{V1}/passport/trust-list", f"{V1}/passport/revocations",
                     f"{V1}/passport/rules"}
    for _, path, query in log.entries:
        assert fresh["hc1"][4:40] not in path + query and "HC1" not in path + query


def qr_video(text: str, path: Path, width: int = 640, height: int = 480) -> Path:
    """A Y4M video (Chromium's fake camera) showing the QR code of ``text`` on a light background."""
    matrix = [list(row) for row in segno.make_qr(text, error="q", mode="alphanumeric").matrix]
    scale = max(1, min(width, height) // (len(matrix) + 8))
    size = len(matrix) * scale
    top, left = (height - size) // 2, (width - size) // 2
    luma = bytearray(b"\xeb" * (width * height))
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                for dy in range(scale):
                    start = (top + y * scale + dy) * width + left + x * scale
                    luma[start:start + scale] = b"\x10" * scale
    chroma = b"\x80" * (width * height // 4)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(3):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)
    return path


def test_page_reads_qr_codes_from_a_photo_and_the_camera(app, client, playwright_driver, artifacts, tmp_path,
                                                         live_server: LiveServer):
    init_keys(system_context(), runtime().settings)
    passport = issue_passport(client, 333333, **recent_dose())
    png = client.get(f"{V1}/me/passports/{quote(passport['uvci'], safe='')}/qr.png", headers=passport["headers"])
    assert png.status_code == 200
    video = qr_video(passport["hc1"], tmp_path / "qr.y4m")
    camera = launch(playwright_driver, ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                                        f"--use-file-for-fake-video-capture={video}"))
    try:
        context = camera.new_context(viewport=LAPTOP, locale="en-GB")
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        open_page(page, f"{live_server.url}/verify?lang=en")

        page.set_input_files("#photo", files=[{"name": "qr.png", "mimeType": "image/png", "buffer": png.data}])
        page.wait_for_selector('html[data-verified="1"]', state="attached")
        assert page.get_attribute("#verdict", "data-valid") == "true"
        assert page.input_value("#hc1") == passport["hc1"]

        page.click("#again")
        page.click("#scan")
        page.wait_for_selector('html[data-verified="2"]', state="attached", timeout=20_000)
        assert page.get_attribute("#verdict", "data-valid") == "true"
        assert page.input_value("#hc1") == passport["hc1"]
        assert page.is_hidden("#camera")  # the camera stops once a code is read
        page.screenshot(path=artifacts / "green-laptop-camera.png", full_page=True)
        context.close()
    finally:
        camera.close()


# ------------------------------------------------------------------------------------------ conformance


def _vectors() -> list[dict[str, Any]]:
    """Every conformance vector that carries EXPECTEDVERIFY, as the page and the CLI get it."""
    out = []
    for path in sorted(VECTORS.rglob("*.json")):
        vector = json.loads(path.read_text())
        if "EXPECTEDVERIFY" not in vector.get("EXPECTEDRESULTS", {}):
            continue
        context = vector["TESTCTX"]
        trust = {"dsc": [{"certificate": context["CERTIFICATE"]}]} if context.get("CERTIFICATE") else None
        out.append({"name": path.relative_to(VECTORS).as_posix(), "hc1": vector["PREFIX"], "trust": trust,
                    "clock": context["VALIDATIONCLOCK"]})
    return out


def _clock(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_page_agrees_with_the_cli_on_every_conformance_vector(browser, live_server: LiveServer):
    vectors = _vectors()
    assert len(vectors) == 548
    context = browser.new_context()
    page = context.new_page()
    try:
        open_page(page, f"{live_server.url}/verify?lang=en")
        computed = page.evaluate(
            """async (vectors) => {
                const out = {}
                for (const v of vectors) {
                    try {
                        const r = await window.hosoVerifier.verify(v.hc1, {trustList: v.trust, revocations: null,
                                                                           at: v.clock})
                        out[v.name] = {valid: r.valid, checks: r.checks.map(c => [c.name, c.status])}
                    } catch (error) {
                        out[v.name] = {error: String(error)}
                    }
                }
                return out
            }""",
            vectors,
        )
    finally:
        context.close()
    known = {entry["vector"]: entry for entry in json.loads(KNOWN_DIFFERENCES.read_text())["differences"]}
    differences = {}
    valid_count = 0
    for vector in vectors:
        result = verify_document(vector["hc1"], vector["trust"], _clock(vector["clock"]))
        cli = {"valid": result.valid, "checks": [[check.name, check.status] for check in result.checks]}
        valid_count += result.valid
        if computed[vector["name"]] != cli:
            differences[vector["name"]] = {"page": computed[vector["name"]], "cli": cli}
    assert valid_count > 250  # the comparison covers valid and invalid certificates alike
    assert set(differences) == set(known), {name: differences.get(name) for name in set(differences) ^ set(known)}


def _signed_mutants(count: int, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """CWT claims of a DCC changed byte by byte and then signed with a test DSC: some stay valid, most
    fail somewhere after the signature (claims, times, key usage, schema), which the vectors cover less."""
    rng = random.Random(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    csca_key, csca = create_csca("Test", start - timedelta(days=400), start + timedelta(days=400))
    dsc_key, dsc = create_dsc(csca_key, csca, "Test DSC", start - timedelta(days=300), start + timedelta(days=300),
                              ("vaccination", "test"))
    der = certificate_der(dsc)
    trust = {"dsc": [{"certificate": base64.b64encode(der).decode(), "kid": base64.b64encode(kid(der)).decode(),
                      "country": "VN"}],
             "csca": [{"certificate": base64.b64encode(certificate_der(csca)).decode()}]}
    payload = {"ver": "1.3.0", "nam": {"fn": "Đặng", "fnt": "DANG", "gn": "Thị Ngọc Ánh", "gnt": "THI<NGOC<ANH"},
               "dob": "1990-01-02",
               "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215", "dn": 2,
                      "sd": 2, "dt": "2021-09-15", "co": "VN", "is": "Bộ Y tế", "ci": "URN:UVCI:01:VN:ABCDEFGH#K"}]}
    claims = encode_cbor({1: "VN", 6: int((start - timedelta(days=10)).timestamp()),
                          4: int((start + timedelta(days=100)).timestamp()), -260: {1: payload}})
    protected = cbor2.dumps({1: -7, 4: kid(der)})
    mutants = []
    for index in range(count):
        data = bytearray(claims)
        for _ in range(rng.choice((1, 1, 2))):
            operation, position = rng.random(), rng.randrange(len(data))
            if operation < 0.7:
                data[position] = rng.randrange(256)
            elif operation < 0.85:
                del data[position]
            else:
                data.insert(position, rng.randrange(256))
        r, s = decode_dss_signature(dsc_key.sign(sig_structure(protected, bytes(data)), ec.ECDSA(hashes.SHA256())))
        cose = b"\xd2\x84" + bstr(protected) + b"\xa0" + bstr(bytes(data)) + bstr(r.to_bytes(32, "big") +
                                                                              s.to_bytes(32, "big"))
        at = start + timedelta(days=rng.choice((0, 0, 200, -20)))
        mutants.append({"name": str(index), "hc1": "HC1:" + b45.encode(zlib.compress(cose)), "clock": at.isoformat()})
    return trust, mutants


def test_page_agrees_with_the_cli_on_signed_mutants(browser, live_server: LiveServer):
    trust, mutants = _signed_mutants(600, seed=2026)
    context = browser.new_context()
    page = context.new_page()
    try:
        open_page(page, f"{live_server.url}/verify?lang=en")
        computed = page.evaluate(
            """async ([trust, mutants]) => {
                const out = {}
                for (const m of mutants) {
                    const options = {trustList: trust, revocations: null, at: m.clock}
                    out[m.name] = (await window.hosoVerifier.verify(m.hc1, options)).valid
                }
                return out
            }""",
            [trust, mutants],
        )
    finally:
        context.close()
    verdicts = {m["name"]: verify_document(m["hc1"], trust, datetime.fromisoformat(m["clock"])).valid for m in mutants}
    assert 10 < sum(verdicts.values()) < len(mutants)
    assert {name for name in verdicts if verdicts[name] != computed[name]} == set()
