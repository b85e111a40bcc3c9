"""Access tokens: JWTs signed with ES256 only, with required claims and exclusive token types."""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

ALGORITHM = "ES256"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti", "token_type"]
# Header parameters that would let a token name its own key or extend processing (RFC 8725 3.10).
FORBIDDEN_HEADERS = {"jwk", "jku", "x5u", "x5c", "crit", "kid"}


class TokenType:
    """The token kinds; each route accepts only its own kinds."""

    STAFF = "staff"
    FACILITY = "facility"
    CITIZEN = "citizen"
    ENROLLMENT = "enrollment"

    ALL = (STAFF, FACILITY, CITIZEN, ENROLLMENT)


class InvalidToken(Exception):
    """The bearer token is malformed, expired, of the wrong kind, or not ours."""


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and its lifetime in seconds."""

    token: str
    expires_in: int
    jti: str


class TokenService:
    """Issues and verifies HoSo access tokens."""

    def __init__(self, private_key_pem: str, issuer: str, audience: str, lifetime_seconds: int):
        self._private_key = serialization.load_pem_private_key(
            private_key_pem.encode(), password=None
        )
        self._public_key = self._private_key.public_key()  # type: ignore[union-attr]
        self._issuer = issuer
        self._audience = audience
        self.lifetime_seconds = lifetime_seconds
        # A phone sends the same access token with every request for its lifetime: its signature
        # is checked once, and later uses only check the expiry again (see verify).
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._verified_lock = threading.Lock()
        self.verified_cache_size = 10_000

    def issue(
        self,
        subject: str,
        token_type: str,
        now: datetime,
        lifetime_seconds: int | None = None,
        **claims: Any,
    ) -> IssuedToken:
        """Sign a token of ``token_type`` for ``subject``.

        ``iat`` keeps milliseconds (RFC 7519 allows non-integer NumericDate) so that a revocation
        at time T (``tokens_valid_after``) does not also kill a token issued later in the same second.
        """
        if token_type not in TokenType.ALL:
            raise ValueError(f"unknown token type {token_type!r}")
        lifetime = min(lifetime_seconds or self.lifetime_seconds, self.lifetime_seconds)
        issued_at = round(now.timestamp(), 3)
        jti = uuid.uuid4().hex
        payload = {
            **claims,
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": issued_at,
            "exp": int(issued_at) + lifetime,
            "jti": jti,
            "token_type": token_type,
        }
        token = jwt.encode(payload, self._private_key, algorithm=ALGORITHM, headers={"typ": "JWT"})
        return IssuedToken(token=token, expires_in=lifetime, jti=jti)

    def verify(self, token: str, allowed_types: tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
        """Return the claims of a valid token whose type is one of ``allowed_types``.

        A token verified before (the exact same text, signature included) is not verified again
        while it has not expired; its claims are copied so callers cannot change the cached ones.
        """
        with self._verified_lock:
            cached = self._verified.get(token)
            if cached is not None:
                self._verified.move_to_end(token)
        if cached is not None and cached["exp"] > time.time():
            if cached["token_type"] not in allowed_types:
                raise InvalidToken("token type not accepted here")
            return dict(cached)
        claims = self._verify_signed(token, allowed_types)
        with self._verified_lock:
            self._verified[token] = dict(claims)
            while len(self._verified) > self.verified_cache_size:
                self._verified.popitem(last=False)
        return claims

    def _verify_signed(self, token: str, allowed_types: tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("malformed token") from error
        if header.get("alg") != ALGORITHM or FORBIDDEN_HEADERS & set(header):
            raise InvalidToken("token header not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
        if claims["token_type"] not in allowed_types:
            raise InvalidToken("token type not accepted here")
        if not isinstance(claims["sub"], str) or not isinstance(claims["iat"], int | float):
            raise InvalidToken("malformed claims")
        if claims["exp"] - claims["iat"] > self.lifetime_seconds + 1:
            raise InvalidToken("token lifetime too long")
        return claims
