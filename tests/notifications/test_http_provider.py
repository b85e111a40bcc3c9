"""HttpProviderChannel against a real HTTP server on loopback."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from notifications import HttpProviderChannel, OutgoingMessage, PermanentFailure, TemporaryFailure, render

TOKEN = "provider-token-7f3a"
CODE = "ABCDE-FGHJK"


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"accepted": true}'
    delay: float = 0.0  # seconds to stall before answering


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Provider:
    """A scripted provider: answers ``replies`` in turn (the last one repeats) and records requests."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.replies: list[Reply] = [Reply()]
        self.requests: list[Recorded] = []
        self.release = threading.Event()  # ends a stalled answer early when the test is over
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.handle_any()

            def do_GET(self) -> None:  # noqa: N802
                self.handle_any()

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                provider.requests.append(Recorded(self.command, self.path, dict(self.headers.items()),
                                                  self.rfile.read(length)))
                reply = provider.replies.pop(0) if len(provider.replies) > 1 else provider.replies[0]
                if reply.delay:
                    provider.release.wait(reply.delay)
                try:
                    self.send_response_only(reply.status)
                    if "Date" not in reply.headers:
                        self.send_header("Date", self.date_time_string())
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/v1/messages"
        # A short poll interval keeps shutdown (and so each test) quick.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def answer(self, *replies: Reply) -> None:
        self.replies = list(replies)


@pytest.fixture
def provider() -> Iterator[Provider]:
    serving = Provider()
    serving.thread.start()
    yield serving
    serving.release.set()
    serving.server.shutdown()
    serving.server.server_close()
    serving.thread.join(5)


def sms(message_id: str = "65a1f0c2e4b0a1b2c3d4e5f6") -> OutgoingMessage:
    rendered = render("activation_code_delivery", "vi", hours="72")
    return OutgoingMessage(message_id, "sms", "+84901234567", rendered.subject,
                           rendered.body.replace("{secret}", CODE), "vi")


def channel(url: str, timeout: float = 2.0) -> HttpProviderChannel:
    return HttpProviderChannel("sms", url, TOKEN, timeout=timeout)


def test_accepted_message_posts_json_with_token_and_idempotency_key(provider):
    message = sms()
    channel(provider.url).send(message)

    [request] = provider.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Idempotency-Key"] == message.message_id
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.body.decode("utf-8")) == {
        "id": message.message_id,
        "to": "+84901234567",
        "title": "Mã kích hoạt HoSo",
        "text": message.body,
        "language": "vi",
    }
    assert "Không chia sẻ mã này" in request.body.decode("utf-8")


def test_retry_sends_the_same_idempotency_key(provider):
    provider.answer(Reply(503), Reply(202))
    sender = channel(provider.url)
    with pytest.raises(TemporaryFailure):
        sender.send(sms("m-1"))
    sender.send(sms("m-1"))
    assert [r.headers["Idempotency-Key"] for r in provider.requests] == ["m-1", "m-1"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_are_permanent(provider, status):
    provider.answer(Reply(status, body=b'{"error": "echo: ' + CODE.encode() + b'"}'))
    with pytest.raises(PermanentFailure) as raised:
        channel(provider.url).send(sms())
    assert raised.value.status == status
    assert CODE not in str(raised.value) and TOKEN not in str(raised.value) and "+8490" not in str(raised.value)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_busy_or_broken_provider_is_temporary(provider, status):
    provider.answer(Reply(status))
    with pytest.raises(TemporaryFailure) as raised:
        channel(provider.url).send(sms())
    assert raised.value.status == status and raised.value.retry_after is None


def test_429_with_retry_after_seconds(provider):
    provider.answer(Reply(429, {"Retry-After": "120"}))
    with pytest.raises(TemporaryFailure) as raised:
        channel(provider.url).send(sms())
    assert raised.value.retry_after == 120.0


def test_503_with_retry_after_date_is_measured_against_the_provider_clock(provider):
    # The answer carries a fixed Date so the expected wait is exact.
    provider.answer(Reply(503, {"Date": "Tue, 04 Mar 2025 08:00:00 GMT",
                                "Retry-After": "Tue, 04 Mar 2025 08:05:00 GMT"}))
    with pytest.raises(TemporaryFailure) as raised:
        channel(provider.url).send(sms())
    assert raised.value.retry_after == 300.0


def test_unreadable_retry_after_is_ignored(provider):
    provider.answer(Reply(429, {"Retry-After": "soon"}))
    with pytest.raises(TemporaryFailure) as raised:
        channel(provider.url).send(sms())
    assert raised.value.retry_after is None


def test_slow_provider_times_out_as_temporary(provider):
    provider.answer(Reply(200, delay=5.0))
    with pytest.raises(TemporaryFailure) as raised:
        channel(provider.url, timeout=0.3).send(sms())
    assert raised.value.status is None


def test_nothing_listening_is_temporary(provider):
    url = provider.url
    provider.server.shutdown()
    provider.server.server_close()
    with pytest.raises(TemporaryFailure):
        channel(url).send(sms())


def test_redirect_is_not_followed_and_the_token_stays_home(provider):
    target = Provider()
    target.thread.start()
    try:
        provider.answer(Reply(302, {"Location": target.url}))
        with pytest.raises(PermanentFailure) as raised:
            channel(provider.url).send(sms())
        assert raised.value.status == 302
        assert target.requests == []
    finally:
        target.server.shutdown()
        target.server.server_close()


@pytest.fixture
def https_provider(certificate) -> Iterator[Provider]:
    serving = Provider(tls=certificate.server_context())
    serving.thread.start()
    yield serving
    serving.server.shutdown()
    serving.server.server_close()
    serving.thread.join(5)


def test_https_provider_with_a_trusted_certificate(https_provider, certificate):
    HttpProviderChannel("sms", https_provider.url, TOKEN, timeout=2.0,
                        ssl_context=certificate.client_context()).send(sms())
    assert [r.headers["Authorization"] for r in https_provider.requests] == [f"Bearer {TOKEN}"]


def test_https_provider_with_an_untrusted_certificate_gets_nothing(https_provider):
    with pytest.raises(TemporaryFailure):
        channel(https_provider.url).send(sms())  # the system CAs do not know the test certificate
    assert https_provider.requests == []


def test_message_for_another_channel_is_refused(provider):
    push = OutgoingMessage("m-1", "push", "device-token", "s", "b", "en")
    with pytest.raises(PermanentFailure):
        channel(provider.url).send(push)
    assert provider.requests == []


@pytest.mark.parametrize("url", ["ftp://provider.example/", "file:///etc/passwd", "provider.example/send", "http:///x"])
def test_only_http_urls(url):
    with pytest.raises(ValueError):
        HttpProviderChannel("sms", url, TOKEN)


def test_token_and_name_are_checked():
    with pytest.raises(ValueError):
        HttpProviderChannel("sms", "https://provider.example/", "")
    with pytest.raises(ValueError):
        HttpProviderChannel("sms", "https://provider.example/", "tok\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        HttpProviderChannel("fax", "https://provider.example/", TOKEN)


def test_repr_hides_the_token():
    assert TOKEN not in repr(HttpProviderChannel("push", "https://provider.example/", TOKEN))
