"""The signing service: the only process that holds the DSC private key.

``python -m passport.service --dsc-cert FILE --dsc-key FILE --passphrase-file FILE --secret-file FILE
[--host 127.0.0.1] [--port 0]`` prints its address (``http://HOST:PORT``) on the first line of
standard output, then serves:

- ``POST /sign``: body = CBOR CWT claims (``Content-Type: application/cbor``), HMAC-authenticated
  (see :mod:`passport.remote`); the claims are checked (:func:`passport.signing.check_claims`) before
  anything is signed; answers the COSE_Sign1 message (``application/cose``).
- ``GET /certificate``: the DSC in DER (``application/pkix-cert``), public.

Errors are RFC 9457 problem documents. Every answer to an authenticated request is itself
authenticated, and a request signature is accepted once.
"""

from __future__ import annotations

import argparse
import hmac
import json
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .cose import loads_exact
from .errors import KeyMaterialError, PassportError
from .keys import certificate_der, load_certificate, load_private_key
from .remote import (
    MIN_SECRET_BYTES,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signature,
    response_signature,
)
from .signing import ISSUER_COUNTRY, LocalSigner, check_claims

__all__ = ["SigningService", "main"]

MAX_BODY = 16_384
DEFAULT_WINDOW = 120


class SigningService:
    """The HTTP-independent core: authenticate, check, sign. One instance serves every thread."""

    def __init__(self, signer: LocalSigner, secret: bytes, window: int = DEFAULT_WINDOW,
                 issuer: str = ISSUER_COUNTRY, clock: Callable[[], float] = time.time) -> None:
        """:param signer: holds the DSC key
        :param secret: the shared HMAC secret (at least 32 bytes)
        :param window: seconds a request timestamp may differ from the clock
        :param issuer: the only ``iss`` signed
        :param clock: the wall clock (Unix seconds)
        :raises KeyMaterialError: on a short secret"""
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyMaterialError(f"the signing secret must have at least {MIN_SECRET_BYTES} bytes")
        self.signer = signer
        self._secret = secret
        self._window = window
        self._issuer = issuer
        self._clock = clock
        self._seen: set[str] = set()
        self._order: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def _authenticate(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        """The request's MAC when it is authentic, fresh and new; ``None`` otherwise."""
        stamp, mac = headers.get(TIMESTAMP_HEADER.lower(), ""), headers.get(SIGNATURE_HEADER.lower(), "")
        nonce = headers.get(NONCE_HEADER.lower(), "")
        if not stamp.isdigit() or len(stamp) > 12 or not mac or not 16 <= len(nonce) <= 64:
            return None
        expected = request_signature(self._secret, method, path, int(stamp), nonce, body)
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        now = self._clock()
        if abs(now - int(stamp)) > self._window:
            return None
        with self._lock:
            # A captured request replayed within the window is refused: each signature counts once.
            # Signatures older than the window cannot pass the timestamp check again, so they are forgotten.
            while self._order and self._order[0][0] < now - 2 * self._window:
                self._seen.discard(self._order.popleft()[1])
            if mac in self._seen:
                return None
            self._seen.add(mac)
            self._order.append((now, mac))
        return mac

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request.

        :param method: HTTP method
        :param path: request path
        :param headers: request headers, names in lower case
        :param body: request body
        :returns: status, response headers, response body
        """
        mac = self._authenticate(method, path, headers, body)
        status, response_headers, answer = self._route(method, path, headers, body, mac)
        if mac is not None:
            response_headers[SIGNATURE_HEADER] = response_signature(self._secret, mac, status, answer)
        return status, response_headers, answer

    def _route(self, method: str, path: str, headers: dict[str, str], body: bytes, mac: str | None
               ) -> tuple[int, dict[str, str], bytes]:
        if path == "/certificate":
            if method != "GET":
                return _problem(405, "use GET", {"Allow": "GET"})
            return 200, {"Content-Type": "application/pkix-cert"}, certificate_der(self.signer.certificate)
        if path != "/sign":
            return _problem(404, "unknown path")
        if method != "POST":
            return _problem(405, "use POST", {"Allow": "POST"})
        if mac is None:
            return _problem(401, "missing, wrong, stale or replayed request signature")
        if headers.get("content-type", "").split(";")[0].strip() != "application/cbor":
            return _problem(415, "the body must be application/cbor")
        try:
            claims = loads_exact(body)
        except Exception:  # cbor2 raises many types on malformed input
            return _problem(400, "the body is not CBOR")
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            check_claims(claims, self.signer.certificate, now, self._issuer)
        except PassportError as error:
            return _problem(422, str(error))
        return 200, {"Content-Type": "application/cose"}, self.signer.sign(claims)


def _problem(status: int, detail: str, extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
              413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content"}
    body = json.dumps({"type": "about:blank", "title": titles.get(status, "Error"), "status": status,
                       "detail": detail}).encode()
    return status, {"Content-Type": "application/problem+json", **(extra or {})}, body


def _handler(service: SigningService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "passport-signer"
        sys_version = ""
        timeout = 10  # a client that stalls mid-request does not hold a thread for long

        def _serve(self) -> None:
            length_header = self.headers.get("Content-Length", "0")
            if not length_header.isdigit():
                return self._send(*_problem(400, "bad Content-Length"))
            if int(length_header) > MAX_BODY:
                self.close_connection = True
                return self._send(*_problem(413, f"the body exceeds {MAX_BODY} bytes"))
            body = self.rfile.read(int(length_header))
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._send(*service.handle(self.command, self.path, headers, body))

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            # One line per request on stderr; never bodies or headers (they carry MACs and claims).
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def _read_secret_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes().strip()
    except OSError as error:
        raise KeyMaterialError(f"cannot read the {what} file: {error.strerror}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the signing service until SIGTERM or SIGINT.

    :param argv: command-line arguments (default: ``sys.argv[1:]``)
    :returns: the exit status (0 after a clean stop, 2 on bad arguments or key material)
    """
    parser = argparse.ArgumentParser(prog="python -m passport.service",
                                     description="The passport signing service (holds the DSC private key).")
    parser.add_argument("--dsc-cert", type=Path, required=True, help="the DSC (PEM or DER)")
    parser.add_argument("--dsc-key", type=Path, required=True, help="the DSC private key (encrypted PEM)")
    parser.add_argument("--passphrase-file", type=Path, required=True, help="the key's passphrase")
    parser.add_argument("--secret-file", type=Path, required=True, help="the shared HMAC secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW, help="request timestamp window, s")
    args = parser.parse_args(argv)
    try:
        certificate = load_certificate(_read_secret_file(args.dsc_cert, "certificate"))
        key = load_private_key(_read_secret_file(args.dsc_key, "key"),
                               _read_secret_file(args.passphrase_file, "passphrase"))
        service = SigningService(LocalSigner(key, certificate), _read_secret_file(args.secret_file, "secret"),
                                 window=args.window)
    except KeyMaterialError as error:
        print(f"passport.service: {error}", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((args.host, args.port), _handler(service))
    server.daemon_threads = True
    host, port = server.socket.getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
