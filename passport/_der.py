"""Just enough DER to find the extended key usage of a certificate that strict parsers refuse.

Some document signer certificates in real trust lists (Finland's, and the EU test set's CO15)
carry DER that ``cryptography`` rejects when their extensions are read (an explicitly encoded
DEFAULT value, an empty SEQUENCE where one element is required). Their signatures and public keys
are fine, so a verifier reads the one extension it needs itself, tolerantly.
"""

from __future__ import annotations

_SEQUENCE = 0x30
_OID = 0x06
_BOOLEAN = 0x01
_OCTET_STRING = 0x04
_EXTENSIONS = 0xA3  # [3] EXPLICIT in TBSCertificate
_EKU = "2.5.29.37"


class DerError(ValueError):
    """The bytes are not the DER this module expects."""


def _read(data: bytes, position: int) -> tuple[int, int, int]:
    """One TLV at ``position``: (tag, start of value, end of value)."""
    if position + 2 > len(data):
        raise DerError("truncated")
    tag = data[position]
    length = data[position + 1]
    position += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or position + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    if position + length > len(data):
        raise DerError("truncated value")
    return tag, position, position + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, value_start, value_end = _read(data, start)
        out.append((tag, value_start, value_end))
        start = value_end
    return out


def _oid(value: bytes) -> str:
    if not value:
        raise DerError("empty OID")
    arcs: list[int] = []
    current = 0
    for byte in value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def extended_key_usage(der: bytes) -> list[str] | None:
    """The extended key usage OIDs of a certificate, read tolerantly.

    :param der: the certificate's DER
    :returns: the OIDs as dotted strings, or ``None`` when the certificate has no such extension
    :raises DerError: when the certificate structure cannot be walked
    """
    tag, start, end = _read(der, 0)
    if tag != _SEQUENCE:
        raise DerError("not a certificate")
    tag, tbs_start, tbs_end = _read(der, start)
    if tag != _SEQUENCE:
        raise DerError("no TBSCertificate")
    for tag, value_start, _value_end in _children(der, tbs_start, tbs_end):
        if tag != _EXTENSIONS:
            continue
        seq_tag, seq_start, seq_end = _read(der, value_start)
        if seq_tag != _SEQUENCE:
            raise DerError("extensions are not a SEQUENCE")
        for ext_tag, ext_start, ext_end in _children(der, seq_start, seq_end):
            if ext_tag != _SEQUENCE:
                raise DerError("an extension is not a SEQUENCE")
            parts = _children(der, ext_start, ext_end)
            if not parts or parts[0][0] != _OID:
                raise DerError("an extension has no OID")
            if _oid(der[parts[0][1] : parts[0][2]]) != _EKU:
                continue
            octets = [part for part in parts[1:] if part[0] == _OCTET_STRING]
            if not octets:
                raise DerError("the extended key usage has no value")
            inner = der[octets[0][1] : octets[0][2]]
            list_tag, list_start, list_end = _read(inner, 0)
            if list_tag != _SEQUENCE:
                raise DerError("the extended key usage is not a SEQUENCE")
            return [_oid(inner[s:e]) for t, s, e in _children(inner, list_start, list_end) if t == _OID]
        return None
    return None
