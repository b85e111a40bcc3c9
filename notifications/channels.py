"""Delivery channels: e-mail over SMTP, SMS and push through an HTTP provider, and an in-memory fake.

A channel sends one message or raises ``PermanentFailure`` (retrying cannot help) or
``TemporaryFailure`` (try again later). Error texts never carry the message body, which may hold an
activation code, nor the recipient's address or the provider's token.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from http.client import HTTPMessage
from typing import IO, NoReturn, Protocol

CHANNEL_NAMES = frozenset({"email", "sms", "push"})

# Printable ASCII without spaces: the id goes into mail headers and an HTTP header unchanged.
_ID_CHARACTERS = frozenset(chr(c) for c in range(0x21, 0x7F))
_MAX_ID_LENGTH = 200
# A provider's answer is read only to free the connection; nothing in it is needed.
_MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one recipient on one channel.

    ``message_id`` identifies the stored message; it stays the same when a send is retried so
    receivers can drop duplicates. ``created_at``, when given, becomes the e-mail ``Date`` header.

    Raises:
        ValueError: on an unknown channel or a ``message_id`` that is empty, too long, or has
            characters other than printable ASCII.
    """

    message_id: str
    channel: str
    to: str
    subject: str
    body: str
    language: str
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {self.channel!r}")
        if not self.message_id or len(self.message_id) > _MAX_ID_LENGTH or not set(self.message_id) <= _ID_CHARACTERS:
            raise ValueError("message_id must be 1-200 printable ASCII characters without spaces")

    def __repr__(self) -> str:
        # The body may carry an activation code and ``to`` is personal data: keep both out of logs.
        return f"OutgoingMessage(message_id={self.message_id!r}, channel={self.channel!r}, language={self.language!r})"


class DeliveryError(Exception):
    """A message was not delivered.

    ``status`` is the SMTP reply code or HTTP status when the other side answered, else ``None``.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class PermanentFailure(DeliveryError):
    """Delivery failed for good (refused recipient, rejected request): do not retry."""


class TemporaryFailure(DeliveryError):
    """Delivery failed for now (busy server, network, timeout): retry later.

    ``retry_after`` is the wait in seconds a provider asked for (``Retry-After``), else ``None``.
    """

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason, status=status)
        self.retry_after = retry_after


class Channel(Protocol):
    """Something that delivers ``OutgoingMessage`` objects of one channel."""

    name: str

    def send(self, message: OutgoingMessage) -> None:
        """Deliver ``message``.

        Raises:
            PermanentFailure: when retrying cannot help.
            TemporaryFailure: when a later attempt may succeed.
        """
        ...


def _check_channel(channel_name: str, message: OutgoingMessage) -> None:
    if message.channel != channel_name:
        raise PermanentFailure(
            f"message {message.message_id}: a {message.channel} message cannot go through the {channel_name} channel"
        )


def _smtp_failure(message_id: str, stage: str, code: int) -> DeliveryError:
    # The server's reply text is left out: some servers echo addresses or parts of what they got.
    reason = f"message {message_id}: SMTP server answered {code} to {stage}"
    if 500 <= code <= 599:
        return PermanentFailure(reason, status=code)
    return TemporaryFailure(reason, status=code)


class SmtpChannel:
    """E-mail through an SMTP submission server (``smtplib``), UTF-8 subject and body.

    With ``starttls`` the connection is upgraded before anything else is said, and a server that
    cannot do it gets nothing (no fallback to clear text). ``ssl_context`` defaults to the system's
    trusted CAs with host name checking. Credentials, when given, are used after STARTTLS.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        """Configure the channel; nothing connects until ``send``.

        Raises:
            ValueError: when ``sender`` is not an address, or only one of username and password is
                given, or they are not ASCII (``smtplib`` cannot send other characters).
        """
        if "@" not in parseaddr(sender)[1]:
            raise ValueError("sender must be an e-mail address")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if not (username or "").isascii() or not (password or "").isascii():
            raise ValueError("smtplib can only send ASCII credentials")
        self.name = "email"
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout
        self._ssl_context = ssl_context if ssl_context is not None or not starttls else ssl.create_default_context()
        self._local_hostname = local_hostname
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or "hoso.invalid"

    def __repr__(self) -> str:
        return f"SmtpChannel(host={self._host!r}, port={self._port}, starttls={self._starttls})"

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The e-mail for ``message``: UTF-8 text, a stable ``Message-ID`` and an ``X-HoSo-Message`` header.

        Raises:
            PermanentFailure: when a header value has a line break or the recipient is not exactly
                one e-mail address.
        """
        email = EmailMessage()
        # The same id on every attempt lets mail clients collapse a duplicate after a retried send;
        # hashing keeps any id within Message-ID syntax.
        digest = hashlib.sha256(message.message_id.encode()).hexdigest()[:32]
        try:
            email["From"] = self._sender
            email["To"] = message.to
            email["Subject"] = message.subject
            email["Message-ID"] = f"<hoso.{digest}@{self._domain}>"
            email["X-HoSo-Message"] = message.message_id
            if message.created_at is not None:
                email["Date"] = format_datetime(message.created_at)
            email["Content-Language"] = message.language
            email["Auto-Submitted"] = "auto-generated"  # asks vacation responders not to answer
        except (ValueError, IndexError):  # a line break smuggled into a header, an unparsable address
            raise PermanentFailure(f"message {message.message_id}: invalid e-mail header") from None
        addresses = email["To"].addresses
        if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
            raise PermanentFailure(f"message {message.message_id}: the recipient must be one e-mail address")
        email.set_content(message.body, charset="utf-8")
        return email

    def send(self, message: OutgoingMessage) -> None:
        """Send ``message`` by e-mail.

        Raises:
            PermanentFailure: a 5xx reply (refused recipient, rejected data, failed login), or a
                message that cannot be an e-mail.
            TemporaryFailure: a 4xx reply, a refused or dropped connection, a timeout, a TLS failure.
        """
        _check_channel(self.name, message)
        email = self.build(message)
        recipient = email["To"].addresses[0].addr_spec
        try:
            smtp = smtplib.SMTP(self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout)
            try:
                if self._starttls:
                    smtp.starttls(context=self._ssl_context)
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(email, from_addr=parseaddr(self._sender)[1], to_addrs=[recipient])
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass  # the server already accepted the message; how it says goodbye does not matter
            finally:
                smtp.close()
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()] or [550]
            raise _smtp_failure(message.message_id, "RCPT", max(codes)) from None
        except smtplib.SMTPSenderRefused as error:
            raise _smtp_failure(message.message_id, "MAIL", error.smtp_code) from None
        except smtplib.SMTPDataError as error:
            raise _smtp_failure(message.message_id, "DATA", error.smtp_code) from None
        except smtplib.SMTPAuthenticationError as error:
            raise _smtp_failure(message.message_id, "AUTH", error.smtp_code) from None
        except smtplib.SMTPResponseException as error:  # greeting, HELO, STARTTLS
            raise _smtp_failure(message.message_id, "the session", error.smtp_code) from None
        except (smtplib.SMTPException, OSError) as error:
            # Refused or dropped connections, timeouts, TLS errors, a server missing STARTTLS or AUTH:
            # nothing about this message is wrong, so a later attempt may work.
            raise TemporaryFailure(
                f"message {message.message_id}: SMTP delivery failed ({type(error).__name__})"
            ) from None
        if refused:  # only reached with several recipients; kept for safety
            codes = [code for code, _ in refused.values()]
            raise _smtp_failure(message.message_id, "RCPT", max(codes))


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would replay the bearer token to wherever it points."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def _retry_after(headers: Message | None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delay or HTTP date), else ``None``."""
    if headers is None:
        return None
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    # An HTTP date is measured against the provider's own Date header, so no clock is read here
    # and the two clocks need not agree.
    try:
        until = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(headers.get("Date") or "")
    except (TypeError, ValueError, IndexError):
        return None
    if (until.tzinfo is None) != (sent.tzinfo is None):
        return None
    return max(0.0, (until - sent).total_seconds())


class HttpProviderChannel:
    """SMS or push through a provider's JSON API (``urllib.request``).

    Each message is one ``POST`` of ``{"id", "to", "title", "text", "language"}`` with
    ``Authorization: Bearer <token>`` and ``Idempotency-Key: <message id>``, so a provider that
    honours the key does not deliver a retried message twice. Redirects are not followed, and
    proxies are not taken from the environment.
    """

    def __init__(
        self,
        name: str,
        url: str,
        token: str,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Configure the channel; nothing connects until ``send``.

        Raises:
            ValueError: when ``name`` is not a channel, ``url`` is not http(s), or ``token`` is empty
                or not a single header-safe line.
        """
        if name not in CHANNEL_NAMES:
            raise ValueError(f"unknown channel {name!r}")
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError("the provider URL must be an http:// or https:// URL with a host")
        if not token or not set(token) <= _ID_CHARACTERS:
            raise ValueError("the provider token must be printable ASCII without spaces")
        self.name = name
        self._url = url
        self._token = token
        self._timeout = timeout
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl_context),
            _RefuseRedirects(),
        )

    def __repr__(self) -> str:
        return f"HttpProviderChannel(name={self.name!r}, url={self._url!r})"

    def request(self, message: OutgoingMessage) -> urllib.request.Request:
        """The HTTP request that delivers ``message``."""
        payload = {
            "id": message.message_id,
            "to": message.to,
            "title": message.subject,
            "text": message.body,
            "language": message.language,
        }
        return urllib.request.Request(
            self._url,
            data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Accept": "application/json",
                "Authorization": f"Bearer {self._token}",
                "Idempotency-Key": message.message_id,
                "User-Agent": "HoSo-notifications",
            },
        )

    def send(self, message: OutgoingMessage) -> None:
        """Send ``message`` through the provider.

        Raises:
            PermanentFailure: a 4xx answer other than 408 and 429, a redirect, or a message for
                another channel.
            TemporaryFailure: 408, 429 or 5xx (with ``retry_after`` from ``Retry-After``), a refused
                or dropped connection, a timeout.
        """
        _check_channel(self.name, message)
        try:
            with self._opener.open(self.request(message), timeout=self._timeout) as response:
                response.read(_MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as error:
            try:
                self._raise_for_status(message, error.code, error.headers)
            finally:
                if error.fp is not None:
                    error.close()
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            # Covers connection refused, DNS, TLS, timeouts and dropped connections. After a timeout
            # the provider may still have taken the message: the Idempotency-Key covers the retry.
            raise TemporaryFailure(
                f"message {message.message_id}: {self.name} provider unreachable ({type(error).__name__})"
            ) from None

    def _raise_for_status(self, message: OutgoingMessage, status: int, headers: Message | None) -> NoReturn:
        reason = f"message {message.message_id}: {self.name} provider answered HTTP {status}"
        if status in (408, 429) or 500 <= status <= 599:
            raise TemporaryFailure(reason, status=status, retry_after=_retry_after(headers)) from None
        # Other 4xx: the request itself is wrong. 3xx: the URL is wrong; neither heals by retrying.
        raise PermanentFailure(reason, status=status) from None


class InMemoryChannel:
    """A fake channel that records what it is given, for tests of code that sends messages.

    ``fail_next`` scripts failures, raised one per ``send`` before any message is recorded again.
    """

    def __init__(self, name: str) -> None:
        """A fake channel called ``name``."""
        self.name = name
        self.sent: list[OutgoingMessage] = []
        self._failures: deque[DeliveryError] = deque()

    def fail_next(self, *errors: DeliveryError) -> None:
        """Raise ``errors`` on the next sends, in order."""
        self._failures.extend(errors)

    def send(self, message: OutgoingMessage) -> None:
        """Record ``message``, or raise the next scripted failure.

        Raises:
            DeliveryError: a scripted failure, or ``PermanentFailure`` for a message of another channel.
        """
        _check_channel(self.name, message)
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(message)
