"""Logs are JSON lines with the request id and never contain credentials."""

from __future__ import annotations

import io
import json
import logging

from app.web.logs import JsonFormatter, configure, scrub


def test_scrub_removes_tokens_passwords_and_codes():
    text = ('Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln password=hunter2 '
            '"totp_code": "123456" client_secret=abc national id 001085123456')
    cleaned = scrub(text)
    for secret in ("eyJhbGciOiJFUzI1NiJ9", "hunter2", "123456", "abc", "001085123456"):
        assert secret not in cleaned


def test_request_logs_are_json_with_request_id_and_no_secrets(app, client, staff):
    stream = io.StringIO()
    handler = configure("INFO", stream)
    try:
        account = staff.create("logan", "admin")
        response = staff.login(account)
        token = response.json["access_token"]
        client.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {token}",
                                                "X-Request-ID": "req-12345678"})
    finally:
        for name in ("hoso", "app"):
            logging.getLogger(name).removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any(line.get("request_id") == "req-12345678" and line["path"] == "/api/v1/staff/me"
               for line in lines)
    text = stream.getvalue()
    for secret in (token, account.password, account.totp_secret):
        assert secret not in text


def test_formatter_scrubs_exception_text():
    record = logging.LogRecord("hoso", logging.ERROR, __file__, 1, "failed for %s", ("x",), None)
    try:
        raise ValueError("password=supersecret")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "supersecret" not in line["exception"]
