"""HC1 transport: zlib, Base45, the ``HC1:`` prefix, and the QR code that carries the text."""

from __future__ import annotations

import io
import zlib

import segno
import zxingcpp

from . import b45
from .errors import TransportError
from .png import decode_png

__all__ = [
    "PREFIX",
    "compress",
    "decode_hc1",
    "decompress",
    "encode_hc1",
    "qr_png",
    "qr_svg",
    "read_qr",
]

PREFIX = "HC1:"
# A QR code holds at most 4,296 alphanumeric characters; anything much larger is not a passport.
MAX_TEXT = 8_192
MAX_INFLATED = 65_536
_SMALL = 1_000  # inputs up to this size (every passport) are one stored block; larger ones are deflated
# CMF 0x78: deflate with a 32 KiB window; FLG 0x01: fastest level, no dictionary, (CMF*256+FLG) % 31 == 0.
_ZLIB_HEADER = b"\x78\x01"
_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def compress(data: bytes) -> bytes:
    """zlib (RFC 1950) with a 32 KiB window header and one stored (uncompressed) deflate block.

    The header is ``78 01`` (deflate, 32 KiB window, fastest level): EU verifiers built on the reference
    Android core inflate only streams that start with ``78`` and one of ``01 5E 9C DA``, and read any
    other first bytes as a bare COSE message, which fails. A smaller window (``18 19``) is valid RFC 1950
    but refused there, so HoSo never writes one.

    Measured on HoSo's certificates (about 360 bytes of CBOR: signature, keys, codes, names), deflate
    saves at most a handful of bytes (level 9 gave 364 bytes where stored blocks give about 370, under 2% of
    the QR text) while costing more than the signature. The stored stream is written directly (header,
    block header with its length and complement, the data, Adler-32): the bytes are exactly what
    ``zlib.compressobj(0, zlib.DEFLATED, 15)`` writes (a test checks it on every size up to the limit), in
    about 1 µs. zlib itself allocates about 256 KiB of state for a 32 KiB window: measured here at 3-5 µs
    when malloc reuses heap memory and 30-45 µs when every stream gets fresh pages (as in a new process).
    Larger inputs (never a passport) are deflated at level 9 (header ``78 DA``).

    :param data: the bytes to compress (the COSE message)
    :returns: the zlib stream
    """
    if len(data) > _SMALL:
        return zlib.compress(data, 9)
    size = len(data).to_bytes(2, "little")
    complement = (len(data) ^ 0xFFFF).to_bytes(2, "little")
    # 01: the final block, stored (BFINAL 1, BTYPE 00); then LEN and NLEN, little-endian (RFC 1951 3.2.4).
    return _ZLIB_HEADER + b"\x01" + size + complement + data + zlib.adler32(data).to_bytes(4, "big")


def decompress(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    """Inflate a zlib stream, refusing anything that inflates beyond ``limit`` bytes.

    :param data: the zlib stream
    :param limit: the largest inflated size accepted
    :returns: the inflated bytes
    :raises TransportError: when the data is not a complete zlib stream or inflates too far
    """
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise TransportError(f"zlib: {error}") from None
    if len(out) > limit:
        raise TransportError(f"zlib: inflates beyond {limit} bytes")
    if not inflater.eof:
        raise TransportError("zlib: the stream is truncated")
    return out


def encode_hc1(cose: bytes) -> str:
    """The QR text of a signed COSE message: ``HC1:`` + Base45(zlib(cose)).

    :param cose: the COSE_Sign1 message
    :returns: the HC1 text
    """
    return PREFIX + b45.encode(compress(cose))


def decode_hc1(text: str) -> bytes:
    """The COSE message inside HC1 text (the reverse of :func:`encode_hc1`, without any verification).

    :param text: ``HC1:...``
    :returns: the COSE message bytes
    :raises TransportError: on a missing prefix, bad Base45 or a bad zlib stream
    """
    if len(text) > MAX_TEXT:
        raise TransportError("the text is too long for a QR code")
    if not text.startswith(PREFIX):
        raise TransportError("the text does not start with HC1:")
    return decompress(b45.decode(text[len(PREFIX) :]))


def _qr(text: str) -> segno.QRCode:
    try:
        # Base45 and the prefix use exactly the QR alphanumeric alphabet: 5.5 bits per character.
        return segno.make_qr(text, error="q", mode="alphanumeric", boost_error=False)
    except (ValueError, segno.DataOverflowError) as error:
        raise TransportError(f"cannot make a QR code: {error}") from None


def qr_png(text: str, scale: int = 4, border: int = 4) -> bytes:
    """A QR code (alphanumeric mode, error correction Q) as PNG.

    :param text: the HC1 text
    :param scale: pixels per module
    :param border: quiet zone in modules (4 is the standard's minimum)
    :returns: the PNG file
    :raises TransportError: when the text cannot be put in a QR code
    """
    out = io.BytesIO()
    _qr(text).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def qr_svg(text: str, scale: int = 4, border: int = 4) -> str:
    """A QR code (alphanumeric mode, error correction Q) as an SVG document.

    :param text: the HC1 text
    :param scale: user units per module
    :param border: quiet zone in modules
    :returns: the SVG text
    :raises TransportError: when the text cannot be put in a QR code
    """
    out = io.BytesIO()
    _qr(text).save(out, kind="svg", scale=scale, border=border, xmldecl=False)
    return out.getvalue().decode("utf-8")


def read_qr(png: bytes) -> str:
    """The text of the QR code in a PNG image.

    :param png: the PNG file
    :returns: the text of the first QR code found
    :raises TransportError: when the image is not a readable PNG or holds no QR code
    """
    image = decode_png(png)
    pixels = memoryview(image.pixels).cast("B", (image.height, image.width))
    found = zxingcpp.read_barcodes(pixels, formats=_QR_ONLY)
    if not found:
        raise TransportError("no QR code found in the image")
    return str(found[0].text)
