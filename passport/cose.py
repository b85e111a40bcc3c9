"""COSE_Sign1 (RFC 9052) as the DCC uses it: encoding for the signer, strict decoding for the verifier."""

from __future__ import annotations

import io
import threading
from typing import Any, NamedTuple

import cbor2

__all__ = ["ES256", "PS256", "CoseFormatError", "Sign1", "decode_sign1", "encode_cbor", "sig_structure"]

ES256 = -7
PS256 = -37
ALGORITHM_NAMES = {ES256: "ES256", PS256: "PS256"}
HEADER_ALG = 1
HEADER_KID = 4
TAG_SIGN1 = 18
TAG_CWT = 61

_local = threading.local()


class CoseFormatError(Exception):
    """Internal: the bytes are not a well-formed COSE_Sign1 (the verifier turns it into a failed check)."""


def encode_cbor(value: object) -> bytes:
    """CBOR-encode a value with one encoder per thread.

    ``cbor2.dumps`` builds a new stream and encoder on every call, which is 40 % of the cost of
    encoding a set of claims; a thread keeps its own so that concurrent signers never share one.
    """
    stream: io.BytesIO
    try:
        stream, encoder = _local.encoder
    except AttributeError:
        stream = io.BytesIO()
        encoder = cbor2.CBOREncoder(stream)
        _local.encoder = (stream, encoder)
    stream.seek(0)
    stream.truncate()
    encoder.encode(value)
    return stream.getvalue()


def bstr_head(length: int) -> bytes:
    """The CBOR head of a byte string of ``length`` bytes."""
    if length < 24:
        return bytes((0x40 | length,))
    if length < 0x100:
        return bytes((0x58, length))
    if length < 0x10000:
        return b"\x59" + length.to_bytes(2, "big")
    return b"\x5a" + length.to_bytes(4, "big")


def bstr(data: bytes) -> bytes:
    """``data`` as a CBOR byte string."""
    return bstr_head(len(data)) + data


SIGNATURE1_CONTEXT = b"\x84\x6aSignature1"  # array(4), text(10) "Signature1"


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers: ``["Signature1", protected, h'', payload]``.

    :param protected: the serialised protected header (the bstr's content)
    :param payload: the payload (the bstr's content)
    """
    return SIGNATURE1_CONTEXT + bstr(protected) + b"\x40" + bstr(payload)


class Sign1(NamedTuple):
    """A decoded COSE_Sign1.

    :ivar protected_bytes: the protected header exactly as signed
    :ivar protected: the protected header map
    :ivar unprotected: the unprotected header map
    :ivar payload: the payload bytes (the CWT claims)
    :ivar signature: the signature bytes
    :ivar envelope: how it was wrapped: ``"tag 18"``, ``"untagged"`` or ``"tag 61 + tag 18"``
    """

    protected_bytes: bytes
    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes
    signature: bytes
    envelope: str


def loads_exact(data: bytes) -> Any:
    """Decode exactly one CBOR item; trailing bytes are an error (they would be unsigned data)."""
    stream = io.BytesIO(data)
    value = cbor2.CBORDecoder(stream).decode()
    if stream.tell() != len(data):
        raise CoseFormatError(f"{len(data) - stream.tell()} bytes after the CBOR item")
    return value


def decode_sign1(data: bytes) -> Sign1:
    """Decode a COSE_Sign1: tagged 18, untagged, or tag 18 inside the CWT tag 61.

    :param data: the message bytes
    :returns: the decoded structure (nothing is verified yet)
    :raises CoseFormatError: on any other structure, another COSE type, or malformed headers
    """
    try:
        item = loads_exact(data)
    except CoseFormatError:
        raise
    except Exception as error:  # cbor2 raises many types on hostile input; all mean "not CBOR"
        raise CoseFormatError(f"not CBOR ({type(error).__name__})") from None
    envelope = "untagged"
    if isinstance(item, cbor2.CBORTag) and item.tag == TAG_CWT:
        if not (isinstance(item.value, cbor2.CBORTag) and item.value.tag == TAG_SIGN1):
            raise CoseFormatError("CWT tag 61 does not wrap a COSE_Sign1 tag 18")
        item = item.value
        envelope = "tag 61 + tag 18"
    if isinstance(item, cbor2.CBORTag):
        if item.tag != TAG_SIGN1:
            raise CoseFormatError(f"CBOR tag {item.tag} is not COSE_Sign1 (18)")
        item = item.value
        envelope = "tag 18" if envelope == "untagged" else envelope
    if not isinstance(item, list) or len(item) != 4:
        raise CoseFormatError("COSE_Sign1 is not an array of 4 items")
    protected_bytes, unprotected, payload, signature = item
    if not isinstance(protected_bytes, bytes):
        raise CoseFormatError("the protected header is not a byte string")
    if not isinstance(unprotected, dict):
        raise CoseFormatError("the unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise CoseFormatError("the payload is not a byte string (detached payloads are not used)")
    if not isinstance(signature, bytes):
        raise CoseFormatError("the signature is not a byte string")
    if protected_bytes:
        try:
            # Whatever follows the map inside the protected bstr is signed too: no need to refuse it.
            protected = cbor2.loads(protected_bytes)
        except Exception:
            raise CoseFormatError("the protected header is not CBOR") from None
        if not isinstance(protected, dict):
            raise CoseFormatError("the protected header is not a map")
    else:
        protected = {}
    return Sign1(protected_bytes, protected, unprotected, payload, signature, envelope)
