"""Base45 (RFC 9285) without a Python loop per character.

The ``base45`` package walks the data in Python, which costs about as much as the ECDSA signature
of a passport. Here every step is a C-level bytes or big-integer operation: the data is spread
into fixed-width lanes of one big integer, and the divisions by 45 are done on all lanes at once
with multiply-and-shift (exact for the value ranges involved, checked by the tests against the
``base45`` package on every 2-byte value).
"""

from __future__ import annotations

from functools import lru_cache

from .errors import TransportError

ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_TO_CHAR_SHIFTED = bytes.maketrans(bytes(range(1, 46)), ALPHABET)
_TO_VALUE = bytes(ALPHABET.index(c) if c in ALPHABET else 0xFF for c in range(256))

# floor(v / 45) == (v * _M1) >> _S1 for every v < 65536, and (q * _M2) >> _S2 for every q < 1457.
_M1, _S1 = 11651, 19
_M2, _S2 = 1457, 16
# A 5-byte lane holds v * _M1 < 2**33; after the shift the quotient sits in the low 11 bits of its lane,
# the bits that slid down from the next lane sit above them and are masked off.
_LANE = 5
_LANE_MASK = b"\x00\x00\x00\x07\xff"


@lru_cache(maxsize=128)
def _lane_mask(lane: bytes, count: int) -> int:
    """``lane`` repeated ``count`` times, as an integer (cached: passports come in a few sizes)."""
    return int.from_bytes(lane * count, "big")


def encode(data: bytes) -> str:
    """Base45-encode bytes.

    :param data: the bytes to encode
    :returns: the Base45 text (upper case letters, digits and `` $%*+-./:``)
    """
    pairs, odd = divmod(len(data), 2)
    out = b""
    if pairs:
        size = _LANE * pairs
        lanes = bytearray(size)
        lanes[3::_LANE] = data[0 : 2 * pairs : 2]
        lanes[4::_LANE] = data[1 : 2 * pairs : 2]
        value = int.from_bytes(lanes, "big")
        mask = _lane_mask(_LANE_MASK, pairs)
        quotient = ((value * _M1) >> _S1) & mask  # v // 45 in every lane
        high = ((quotient * _M2) >> _S2) & mask  # v // 2025
        # Each lane becomes the bytes 0, 0, c+1, d+1, e+1: the digits shifted by one so that the padding
        # zeros can be deleted by the same translate that maps digits to characters.
        digits = ((value - 45 * quotient) << 16) + ((quotient - 45 * high) << 8) + high \
            + _lane_mask(b"\x00\x00\x01\x01\x01", pairs)
        out = digits.to_bytes(size, "big").translate(_TO_CHAR_SHIFTED, b"\x00")
    if odd:
        last = data[-1]
        out += bytes((last % 45 + 1, last // 45 + 1)).translate(_TO_CHAR_SHIFTED)
    return out.decode("ascii")


def decode(text: str) -> bytes:
    """Decode Base45 text.

    :param text: Base45 text
    :returns: the decoded bytes
    :raises TransportError: on a character outside the alphabet, a dangling character, or a group
        whose value does not fit its bytes
    """
    if not text.isascii():
        raise TransportError("Base45: character outside the alphabet")
    values = text.encode("ascii").translate(_TO_VALUE)
    if b"\xff" in values:
        raise TransportError("Base45: character outside the alphabet")
    groups, rest = divmod(len(values), 3)
    if rest == 1:
        raise TransportError("Base45: dangling character at the end")
    out = bytearray(2 * groups)
    if groups:
        # Read the digits c, d, e of every group as one big-endian integer (3-byte lanes c:d:e), pick
        # each digit out of all lanes at once, and combine: c + 45 d + 2025 e < 2**17 fits its lane.
        size = 3 * groups
        digits = int.from_bytes(values[:size], "big")
        mask = _lane_mask(b"\x00\x00\xff", groups)
        total = ((digits >> 16) & mask) + 45 * ((digits >> 8) & mask) + 2025 * (digits & mask)
        combined = total.to_bytes(size, "big")
        if combined[0::3].count(0) != groups:
            raise TransportError("Base45: a group of three characters exceeds 65535")
        out[0::2] = combined[1::3]
        out[1::2] = combined[2::3]
    if rest == 2:
        last = values[-2] + 45 * values[-1]
        if last > 255:
            raise TransportError("Base45: a final pair of characters exceeds 255")
        out.append(last)
    return bytes(out)
