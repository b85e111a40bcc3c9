"""JWT negatives (RFC 8725): one pinned algorithm, required claims, exclusive types, revocation."""

from __future__ import annotations

import base64
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.clock import utcnow
from app.models.staff import StaffUser
from app.runtime import runtime
from app.security.tokens import InvalidToken, TokenService, TokenType
from tests.conftest import JWT_KEY_PEM
from tests.helpers import assert_problem

ME = "/api/v1/staff/me"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(username: str, **changes) -> dict:
    now = time.time()
    claims = {"iss": "hoso", "aud": "hoso-api", "sub": username, "iat": now, "exp": int(now) + 600,
              "jti": "x" * 32, "token_type": "staff", "role": "admin"}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def sign(claims: dict, key_pem: str = JWT_KEY_PEM, headers: dict | None = None) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


@pytest.fixture
def admin(staff):
    return staff.create("root", "admin")


def get_me(client, token):
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


def test_a_well_formed_token_is_accepted(client, admin):
    assert get_me(client, sign(claims_for("root"))).status_code == 200


def test_alg_none_is_refused(client, admin):
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_for("root")).encode())
    assert_problem(get_me(client, f"{header}.{payload}."), 401)


def test_hs256_with_the_public_key_as_secret_is_refused(client, admin):
    public_pem = serialization.load_pem_private_key(JWT_KEY_PEM.encode(), None).public_key() \
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_for("root")).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), "sha256").digest()
    assert_problem(get_me(client, f"{header}.{payload}.{b64(signature)}"), 401)


def test_token_signed_by_another_key_is_refused(client, admin):
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    assert_problem(get_me(client, sign(claims_for("root"), other)), 401)


def test_embedded_jwk_header_is_refused(client, admin):
    token = sign(claims_for("root"), headers={"jwk": {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}})
    assert_problem(get_me(client, token), 401)
    assert_problem(get_me(client, sign(claims_for("root"), headers={"jku": "http://x/"})), 401)


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "iat", "exp", "jti", "token_type"])
def test_each_required_claim_is_required(client, admin, claim):
    assert_problem(get_me(client, sign(claims_for("root", **{claim: None}))), 401)


@pytest.mark.parametrize(
    "changes",
    # times are made when the test runs, not when it is collected (a long suite would age them)
    [lambda: {"aud": "someone-else"}, lambda: {"iss": "evil"}, lambda: {"exp": int(time.time()) - 10},
     lambda: {"exp": int(time.time()) + 3600}, lambda: {"iat": time.time() + 600}],
    ids=["wrong-aud", "wrong-iss", "expired", "lifetime-too-long", "issued-in-future"],
)
def test_bad_claim_values_are_refused(client, admin, changes):
    assert_problem(get_me(client, sign(claims_for("root", **changes()))), 401)


@pytest.mark.parametrize("token_type", [TokenType.FACILITY, TokenType.CITIZEN, TokenType.ENROLLMENT])
def test_other_token_types_do_not_work_on_staff_routes(client, admin, token_type):
    response = get_me(client, sign(claims_for("root", token_type=token_type)))
    assert response.status_code in (401, 403)


def test_unknown_token_type_is_refused(client, admin):
    assert_problem(get_me(client, sign(claims_for("root", token_type="refresh"))), 401)


def test_tokens_issued_before_tokens_valid_after_are_revoked(client, admin):
    token = runtime().tokens.issue("root", TokenType.STAFF, utcnow()).token
    assert get_me(client, token).status_code == 200
    StaffUser.objects(username="root").update_one(set__tokens_valid_after=utcnow())
    assert_problem(get_me(client, token), 401)
    later = runtime().tokens.issue("root", TokenType.STAFF, utcnow() + timedelta(milliseconds=5))
    assert get_me(client, later.token).status_code == 200


def test_service_refuses_types_not_allowed():
    service = TokenService(JWT_KEY_PEM, "hoso", "hoso-api", 900)
    issued = service.issue("x", TokenType.FACILITY, utcnow())
    assert service.verify(issued.token, (TokenType.FACILITY,))["sub"] == "x"
    with pytest.raises(InvalidToken):
        service.verify(issued.token, (TokenType.STAFF,))


def test_lifetime_is_capped_at_fifteen_minutes():
    service = TokenService(JWT_KEY_PEM, "hoso", "hoso-api", 900)
    issued = service.issue("x", TokenType.STAFF, utcnow(), lifetime_seconds=86400)
    assert issued.expires_in == 900


def test_a_token_verified_before_is_refused_once_it_expires():
    tokens = TokenService(JWT_KEY_PEM, "hoso", "hoso-api", 600)
    token = sign(claims_for("someone", exp=int(time.time()) + 2))
    assert tokens.verify(token, TokenType.ALL)["sub"] == "someone"  # verified, then remembered
    assert tokens.verify(token, TokenType.ALL)["sub"] == "someone"
    with pytest.raises(InvalidToken, match="type"):
        tokens.verify(token, (TokenType.CITIZEN,))  # the remembered token keeps its type rules
    time.sleep(max(0.0, int(time.time()) + 2 - time.time()) + 1.05)
    with pytest.raises(InvalidToken):
        tokens.verify(token, TokenType.ALL)


def test_remembered_claims_cannot_be_changed_by_a_caller():
    tokens = TokenService(JWT_KEY_PEM, "hoso", "hoso-api", 600)
    token = sign(claims_for("someone"))
    tokens.verify(token, TokenType.ALL)["sub"] = "someone-else"
    assert tokens.verify(token, TokenType.ALL)["sub"] == "someone"


def test_a_tampered_copy_of_a_remembered_token_is_still_refused():
    tokens = TokenService(JWT_KEY_PEM, "hoso", "hoso-api", 600)
    token = sign(claims_for("someone"))
    tokens.verify(token, TokenType.ALL)
    head, body, signature = token.split(".")
    forged = b64(json.dumps(claims_for("someone", role="admin", sub="root")).encode())
    with pytest.raises(InvalidToken):
        tokens.verify(f"{head}.{forged}.{signature}", TokenType.ALL)
