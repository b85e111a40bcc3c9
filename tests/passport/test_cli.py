"""``python -m passport verify``: one JSON object, exit 0 valid, 1 invalid, 2 usage error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from passport import RevocationList, qr_png
from passport.cli import main
from tests.passport.conftest import NOW, issue_checked, make_record

AT = (NOW + timedelta(hours=1)).isoformat()


@pytest.fixture
def passport_files(tmp_path, signer, trust_list):
    passport = issue_checked(make_record(), signer, NOW)
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(trust_list.to_json()))
    image = tmp_path / "qr.png"
    image.write_bytes(qr_png(passport.hc1))
    revoked = tmp_path / "revoked.json"
    revoked.write_text(json.dumps(RevocationList.of([passport.revocation]).to_json()))
    return passport, trust, image, revoked


def run(*argv: str, stdin: str = "") -> tuple[int, dict | None, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return status, json.loads(out.getvalue()) if out.getvalue() else None, err.getvalue()


def test_a_valid_passport_exits_0(passport_files):
    passport, trust, _image, _revoked = passport_files
    status, document, _err = run("verify", "--trust-list", str(trust), "--at", AT, passport.hc1)
    assert status == 0
    assert set(document) == {"valid", "authentic", "country", "rules", "reasons", "checks", "holder", "certificate"}
    assert document["valid"] is True and document["reasons"] == []
    assert document["holder"]["fn"] == "Đặng"
    assert document["certificate"]["uvci"] == passport.uvci


def test_an_image_is_read(passport_files):
    _passport, trust, image, _revoked = passport_files
    status, document, _err = run("verify", "--trust-list", str(trust), "--at", AT, "--image", str(image))
    assert status == 0 and document["checks"][0] == {"name": "qr", "status": "ok",
                                                      "reason": "QR code read from the image"}


def test_without_a_trust_list_the_result_is_invalid(passport_files):
    passport, *_ = passport_files
    status, document, _err = run("verify", "--at", AT, passport.hc1)
    assert status == 1
    assert document["valid"] is False
    assert any("no trust list" in reason for reason in document["reasons"])


def test_expired_and_revoked_passports_exit_1(passport_files):
    passport, trust, _image, revoked = passport_files
    later = (passport.expires_at + timedelta(seconds=1)).isoformat()
    assert run("verify", "--trust-list", str(trust), "--at", later, passport.hc1)[0] == 1
    status, document, _err = run("verify", "--trust-list", str(trust), "--revocations", str(revoked),
                                 "--at", AT, passport.hc1)
    assert status == 1 and document["reasons"] == ["revocation: revoked (matched by its UCI hash)"]


def test_text_from_standard_input(passport_files):
    passport, trust, _image, _revoked = passport_files
    assert run("verify", "--trust-list", str(trust), "--at", AT, "-", stdin=passport.hc1 + "\n")[0] == 0


def test_a_naive_time_means_utc(passport_files):
    passport, trust, _image, _revoked = passport_files
    naive = (NOW + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert run("verify", "--trust-list", str(trust), "--at", naive, passport.hc1)[0] == 0


def test_garbage_is_invalid_not_an_error(passport_files):
    _passport, trust, _image, _revoked = passport_files
    status, document, _err = run("verify", "--trust-list", str(trust), "HC1:garbage")
    assert status == 1 and document["valid"] is False


@pytest.mark.parametrize("arguments", [
    [],
    ["verify"],
    ["verify", "HC1:X", "--image", "qr.png"],
    ["verify", "--at", "yesterday", "HC1:X"],
    ["verify", "--trust-list", "/nonexistent/trust.json", "HC1:X"],
    ["verify", "--image", "/nonexistent/qr.png"],
    ["sign", "HC1:X"],
    ["verify", "--bogus", "HC1:X"],
])
def test_usage_errors_exit_2(arguments, capsys):
    assert run(*arguments)[0] == 2


def test_a_malformed_trust_list_is_a_usage_error(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    status, _document, err = run("verify", "--trust-list", str(bad_json), "HC1:X")
    assert status == 2 and "python -m passport verify" in err
    wrong_shape = tmp_path / "wrong.json"
    wrong_shape.write_text(json.dumps({"dsc": [{"certificate": "AAAA"}]}))
    assert run("verify", "--trust-list", str(wrong_shape), "HC1:X")[0] == 2


def test_the_module_entry_point(passport_files):
    passport, trust, _image, _revoked = passport_files
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, "-m", "passport", "verify", "--trust-list", str(trust), "--at", AT,
                           passport.hc1], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["valid"] is True
    usage = subprocess.run([sys.executable, "-m", "passport", "verify"], capture_output=True, text=True,
                           cwd=root, timeout=60)
    assert usage.returncode == 2
