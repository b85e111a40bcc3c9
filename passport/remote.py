"""The client of the signing service, and the HMAC request signing both sides share.

A request carries ``X-Passport-Timestamp`` (Unix seconds), ``X-Passport-Nonce`` (random hex) and
``X-Passport-Signature``: hex HMAC-SHA256 with the shared secret over
``METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))``. The service accepts each signature once
within its timestamp window.
The service answers an authenticated request with ``X-Passport-Signature`` over
``"response" \\n <request signature> \\n STATUS \\n hex(SHA-256(body))``, so the client knows the
answer (the DSC above all) came from the holder of the secret and belongs to its request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .cose import ES256, HEADER_ALG, HEADER_KID, CoseFormatError, decode_sign1, sig_structure
from .errors import KeyMaterialError, SigningError
from .keys import kid as kid_of
from .keys import load_certificate

__all__ = ["MIN_SECRET_BYTES", "RemoteSigner", "request_signature", "response_signature"]

TIMESTAMP_HEADER = "X-Passport-Timestamp"
NONCE_HEADER = "X-Passport-Nonce"
SIGNATURE_HEADER = "X-Passport-Signature"
MIN_SECRET_BYTES = 32


def request_signature(secret: bytes, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    """The HMAC-SHA256 of a request (hex).

    :param secret: the shared secret
    :param method: HTTP method
    :param path: request path (with query, if any)
    :param timestamp: Unix seconds sent in ``X-Passport-Timestamp``
    :param nonce: the random value sent in ``X-Passport-Nonce`` (two requests never share a signature)
    :param body: the request body
    """
    message = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def response_signature(secret: bytes, request_mac: str, status: int, body: bytes) -> str:
    """The HMAC-SHA256 (hex) that binds a response to the authenticated request it answers."""
    message = f"response\n{request_mac}\n{status}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class RemoteSigner:
    """A :class:`~passport.signing.Signer` that asks the signing service (``python -m passport.service``).

    It never holds a private key: it learns the DSC from ``GET /certificate`` (on first use, again
    when the service starts signing with another kid) and checks every signature it gets back
    against that DSC.
    """

    def __init__(self, url: str, secret: bytes, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        """:param url: the service's address, e.g. ``http://127.0.0.1:8765``
        :param secret: the shared secret (at least 32 bytes)
        :param timeout: seconds to wait for the service
        :param clock: the wall clock for request timestamps (Unix seconds)
        :raises KeyMaterialError: on a short secret
        :raises SigningError: on a URL that is not http(s)"""
        if len(secret) < MIN_SECRET_BYTES:
            raise KeyMaterialError(f"the signing secret must have at least {MIN_SECRET_BYTES} bytes")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise SigningError("the signing service URL must be http(s)://HOST:PORT, without a path")
        self._base = url.rstrip("/")
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._certificate: x509.Certificate | None = None
        self._kid = b""

    def _request(self, method: str, path: str, body: bytes = b"", content_type: str | None = None
                 ) -> tuple[int, bytes]:
        timestamp = int(self._clock())
        nonce = secrets.token_hex(16)
        mac = request_signature(self._secret, method, path, timestamp, nonce, body)
        headers = {TIMESTAMP_HEADER: str(timestamp), NONCE_HEADER: nonce, SIGNATURE_HEADER: mac}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self._base + path, data=body if method == "POST" else None,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status, answer, answer_mac = response.status, response.read(), response.headers.get(SIGNATURE_HEADER)
        except urllib.error.HTTPError as error:
            status, answer, answer_mac = error.code, error.read(), error.headers.get(SIGNATURE_HEADER)
        except (urllib.error.URLError, OSError) as error:
            raise SigningError(f"the signing service is unreachable: {error}") from None
        expected = response_signature(self._secret, mac, status, answer)
        if answer_mac is None or not hmac.compare_digest(answer_mac, expected):
            raise SigningError(f"the signing service's answer (HTTP {status}) is not authenticated")
        if status != 200:
            raise SigningError(f"the signing service refused (HTTP {status}): {answer[:300]!r}")
        return status, answer

    def refresh(self) -> x509.Certificate:
        """Fetch the DSC from the service again (after a key rotation).

        :returns: the DSC
        :raises SigningError: when the service cannot be reached or answers unauthenticated
        """
        _status, der = self._request("GET", "/certificate")
        try:
            certificate = load_certificate(der)
        except KeyMaterialError as error:
            raise SigningError(f"the signing service sent no certificate: {error}") from None
        key = certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise SigningError("the signing service's DSC is not a P-256 certificate")
        with self._lock:
            self._certificate, self._kid = certificate, kid_of(der)
        return certificate

    @property
    def certificate(self) -> x509.Certificate:
        """The DSC the service signs with (fetched on first use)."""
        return self._certificate or self.refresh()

    @property
    def kid(self) -> bytes:
        """The DSC's kid."""
        if self._certificate is None:
            self.refresh()
        return self._kid

    def sign(self, claims: Mapping[int, Any]) -> bytes:
        """Have the service sign CWT claims, and check its signature against the DSC.

        :param claims: the claims map
        :returns: the COSE_Sign1 message
        :raises SigningError: when the service refuses, is unreachable, or returns a bad signature
        """
        certificate = self.certificate
        body = cbor2.dumps(dict(claims))
        _status, message = self._request("POST", "/sign", body, "application/cbor")
        try:
            sign1 = decode_sign1(message)
        except CoseFormatError as error:
            raise SigningError(f"the signing service returned no COSE_Sign1: {error}") from None
        if sign1.protected.get(HEADER_ALG) != ES256:
            raise SigningError("the signing service did not sign with ES256")
        if sign1.protected.get(HEADER_KID) != self._kid:
            certificate = self.refresh()  # the service was restarted with a new DSC
            if sign1.protected.get(HEADER_KID) != self._kid:
                raise SigningError("the signing service signed with a kid it does not publish")
        signature = sign1.signature
        public_key = certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)  # checked in refresh()
        try:
            if len(signature) != 64:
                raise InvalidSignature
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public_key.verify(der, sig_structure(sign1.protected_bytes, sign1.payload), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SigningError("the signing service's signature does not verify with its DSC") from None
        return message
