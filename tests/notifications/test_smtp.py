"""SmtpChannel against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from notifications import OutgoingMessage, PermanentFailure, SmtpChannel, TemporaryFailure, render
from tests.notifications.helpers import LoopbackController

SENDER = "HoSo <no-reply@hoso.example.vn>"
CODE = "ABCDE-FGHJK"


class Recorder:
    """An aiosmtpd handler that keeps what it receives, or answers ``rcpt_reply``/``data_reply``."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.received: list[tuple[Envelope, EmailMessage]] = []
        self.tls_used: list[bool] = []

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.data_reply:
            return self.data_reply
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append((envelope, parsed))
        self.tls_used.append(session.ssl is not None)
        return "250 Message accepted"


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start an SMTP server with a handler; stopped after the test."""
    started: list[LoopbackController] = []

    def start(handler: Recorder, **smtp_kwargs: Any) -> int:
        controller = LoopbackController(handler, **smtp_kwargs)
        controller.start()
        started.append(controller)
        return controller.port

    yield start
    for controller in started:
        controller.stop()


def channel(port: int, **kwargs: Any) -> SmtpChannel:
    return SmtpChannel("127.0.0.1", port, SENDER, timeout=2.0, local_hostname="client.test", **kwargs)


def vietnamese_message(message_id: str = "65a1f0c2e4b0a1b2c3d4e5f6") -> OutgoingMessage:
    rendered = render("activation_code_delivery", "vi", hours="72")
    return OutgoingMessage(
        message_id=message_id,
        channel="email",
        to="Nguyễn Văn Nam <nam.nguyen@example.vn>",
        subject=rendered.subject,
        body=rendered.body.replace("{secret}", CODE),
        language="vi",
        created_at=datetime(2025, 3, 4, 1, 2, 3, tzinfo=UTC),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_vietnamese_email_arrives_intact(serve):
    handler = Recorder()
    message = vietnamese_message()
    channel(serve(handler)).send(message)

    [(envelope, received)] = handler.received
    assert envelope.mail_from == "no-reply@hoso.example.vn"
    assert envelope.rcpt_tos == ["nam.nguyen@example.vn"]
    assert received["Subject"] == "Mã kích hoạt HoSo"
    assert received["To"].addresses[0].display_name == "Nguyễn Văn Nam"
    assert received["X-HoSo-Message"] == message.message_id
    assert received["Message-ID"].endswith("@hoso.example.vn>")
    assert received["Date"].datetime == message.created_at
    assert received.get_content_charset() == "utf-8"
    assert received.get_content().rstrip("\n") == message.body
    assert CODE in received.get_content() and "Không chia sẻ mã này" in received.get_content()
    # Headers travel as ASCII (RFC 2047), so any server in between can carry them.
    assert envelope.original_content is not None
    header_block = envelope.original_content.split(b"\r\n\r\n", 1)[0]
    assert header_block.isascii()


def test_retried_send_keeps_the_same_message_id(serve):
    handler = Recorder()
    smtp = channel(serve(handler))
    smtp.send(vietnamese_message("m-1"))
    smtp.send(vietnamese_message("m-1"))
    smtp.send(vietnamese_message("m-2"))
    ids = [received["Message-ID"] for _, received in handler.received]
    assert ids[0] == ids[1] != ids[2]


def test_recipient_refused_with_550_is_permanent(serve):
    port = serve(Recorder(rcpt_reply="550 5.1.1 No such user"))
    with pytest.raises(PermanentFailure) as raised:
        channel(port).send(vietnamese_message())
    assert raised.value.status == 550
    assert CODE not in str(raised.value) and "nam.nguyen" not in str(raised.value)


def test_data_rejected_with_550_is_permanent(serve):
    port = serve(Recorder(data_reply="550 5.7.1 Rejected"))
    with pytest.raises(PermanentFailure) as raised:
        channel(port).send(vietnamese_message())
    assert raised.value.status == 550 and CODE not in str(raised.value)


def test_data_answered_451_is_temporary(serve):
    port = serve(Recorder(data_reply="451 4.3.0 Try again later"))
    with pytest.raises(TemporaryFailure) as raised:
        channel(port).send(vietnamese_message())
    assert raised.value.status == 451 and CODE not in str(raised.value)


def test_greylisted_recipient_is_temporary(serve):
    port = serve(Recorder(rcpt_reply="450 4.2.0 Greylisted, come back later"))
    with pytest.raises(TemporaryFailure) as raised:
        channel(port).send(vietnamese_message())
    assert raised.value.status == 450


def test_nothing_listening_is_temporary():
    with pytest.raises(TemporaryFailure) as raised:
        channel(free_port()).send(vietnamese_message())
    assert raised.value.status is None and CODE not in str(raised.value)


def test_silent_server_times_out_as_temporary():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        smtp = SmtpChannel("127.0.0.1", listener.getsockname()[1], SENDER, timeout=0.3)
        with pytest.raises(TemporaryFailure):
            smtp.send(vietnamese_message())  # accepted by the kernel, never greeted


def test_starttls_delivers_over_tls(serve, certificate):
    handler = Recorder()
    port = serve(handler, tls_context=certificate.server_context(), require_starttls=True)
    channel(port, starttls=True, ssl_context=certificate.client_context()).send(vietnamese_message())
    assert handler.tls_used == [True]
    assert handler.received[0][1]["Subject"] == "Mã kích hoạt HoSo"


def test_server_requiring_starttls_rejects_clear_text(serve, certificate):
    handler = Recorder()
    port = serve(handler, tls_context=certificate.server_context(), require_starttls=True)
    with pytest.raises(PermanentFailure) as raised:
        channel(port).send(vietnamese_message())  # 530 "Must issue a STARTTLS command first"
    assert raised.value.status == 530 and handler.received == []


def test_untrusted_certificate_is_temporary_and_sends_nothing(serve, certificate):
    handler = Recorder()
    port = serve(handler, tls_context=certificate.server_context(), require_starttls=True)
    with pytest.raises(TemporaryFailure):
        channel(port, starttls=True).send(vietnamese_message())  # system CAs do not know the test cert
    assert handler.received == []


def test_starttls_missing_on_server_never_falls_back_to_clear_text(serve):
    handler = Recorder()
    port = serve(handler)
    with pytest.raises(TemporaryFailure):
        channel(port, starttls=True, ssl_context=ssl.create_default_context()).send(vietnamese_message())
    assert handler.received == []


class Authenticator:
    """Accepts one login and password; records the mechanisms tried."""

    def __init__(self) -> None:
        self.logins: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        with self.lock:
            self.logins.append(auth_data.login)
        # handled=False makes aiosmtpd answer 535 itself on a failure.
        return AuthResult(success=auth_data.login == b"hoso" and auth_data.password == b"correct horse", handled=False)


def test_login_after_starttls(serve, certificate):
    handler, authenticator = Recorder(), Authenticator()
    port = serve(handler, tls_context=certificate.server_context(), require_starttls=True,
                 authenticator=authenticator, auth_required=True)
    channel(port, starttls=True, ssl_context=certificate.client_context(),
            username="hoso", password="correct horse").send(vietnamese_message())
    assert authenticator.logins == [b"hoso"] and len(handler.received) == 1


def test_wrong_password_is_permanent(serve, certificate):
    handler = Recorder()
    port = serve(handler, tls_context=certificate.server_context(), require_starttls=True,
                 authenticator=Authenticator(), auth_required=True)
    smtp = channel(port, starttls=True, ssl_context=certificate.client_context(), username="hoso", password="sai")
    with pytest.raises(PermanentFailure) as raised:
        smtp.send(vietnamese_message())
    assert raised.value.status == 535 and "sai" not in str(raised.value) and handler.received == []


@pytest.mark.parametrize("to", ["", "not an address", "a@example.vn, b@example.vn", "a@example.vn\r\nBcc: x@evil.test"])
def test_bad_recipient_is_permanent_without_connecting(to):
    message = OutgoingMessage("m-1", "email", to, "Chủ đề", "Nội dung", "vi")
    with pytest.raises(PermanentFailure):
        channel(free_port()).send(message)  # would be Temporary if it had tried to connect


def test_message_for_another_channel_is_refused():
    message = OutgoingMessage("m-1", "sms", "+84901234567", "s", "b", "vi")
    with pytest.raises(PermanentFailure):
        channel(free_port()).send(message)


def test_channel_repr_hides_the_password():
    smtp = SmtpChannel("127.0.0.1", 25, SENDER, username="hoso", password="secret-pw")
    assert "secret-pw" not in repr(smtp) and smtp.name == "email"


def test_sender_and_credentials_are_checked():
    with pytest.raises(ValueError):
        SmtpChannel("127.0.0.1", 25, "no address")
    with pytest.raises(ValueError):
        SmtpChannel("127.0.0.1", 25, SENDER, username="hoso")
    with pytest.raises(ValueError):
        SmtpChannel("127.0.0.1", 25, SENDER, username="hoso", password="mật khẩu")  # smtplib sends ASCII only
