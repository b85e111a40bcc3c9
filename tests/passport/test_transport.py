"""Base45, zlib, HC1 text, QR codes and the PNG reader."""

from __future__ import annotations

import os
import struct
import zlib

import base45
import pytest
import segno
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st

from passport import TransportError, decode_hc1, encode_hc1, qr_png, qr_svg, read_qr, verify
from passport import b45 as fast_base45
from passport.png import decode_png
from passport.transport import compress, decompress
from tests.passport.conftest import NOW, issue_checked, make_record


def test_base45_matches_the_reference_on_every_pair_of_bytes():
    every_pair = b"".join(value.to_bytes(2, "big") for value in range(65536))
    encoded = fast_base45.encode(every_pair)
    assert encoded == base45.b45encode(every_pair).decode()
    assert fast_base45.decode(encoded) == every_pair


def test_base45_matches_the_reference_on_every_single_byte():
    for value in range(256):
        assert fast_base45.encode(bytes([value])) == base45.b45encode(bytes([value])).decode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_base45_round_trip(data):
    encoded = fast_base45.encode(data)
    assert encoded == base45.b45encode(data).decode()
    assert fast_base45.decode(encoded) == data


@pytest.mark.parametrize("text", ["ABCD", "a", "GGW ", ":::", "::", "ÄÄÄ", "AB\n"])
def test_base45_refuses_invalid_text(text):
    with pytest.raises(TransportError):
        fast_base45.decode(text)


def test_base45_rfc9285_examples():
    assert fast_base45.encode(b"AB") == "BB8"
    assert fast_base45.encode(b"Hello!!") == "%69 VD92EX0"
    assert fast_base45.encode(b"base-45") == "UJCLQE7W581"
    assert fast_base45.decode("QED8WEX0") == b"ietf!"


# The first two bytes of a zlib stream that the EU reference Android core inflates (its
# DefaultCompressorService); any other start is read as a bare COSE message, and fails.
EU_CORE_ZLIB_HEADERS = {b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda"}


@pytest.mark.parametrize("size", [1, 2, 100, 400, 511, 512, 999, 1000, 1001, 5000])
def test_compression_is_zlib_stored_for_passports_and_deflate_beyond(size):
    data = (os.urandom(size // 3) + b"Nguyen Van Nam " * (size // 10))[:size]
    compressed = compress(data)
    assert zlib.decompress(compressed) == data
    assert compressed[:2] in EU_CORE_ZLIB_HEADERS  # deflate, 32 KiB window
    if size <= 1000:
        # Stored blocks: the data itself plus framing (header, block header, Adler-32).
        assert compressed[:2] == b"\x78\x01"
        assert len(data) < len(compressed) <= len(data) + 16
    else:
        assert compressed == zlib.compress(data, 9)


def test_stored_stream_is_what_zlib_itself_writes_at_level_0():
    """Byte for byte zlib's own stored stream with the standard window, at every size a passport can have."""
    data = os.urandom(1000)
    for size in range(1001):
        zipper = zlib.compressobj(0, zlib.DEFLATED, 15)
        assert compress(data[:size]) == zipper.compress(data[:size]) + zipper.flush(), size


def test_issued_passports_start_with_a_header_every_eu_verifier_inflates(signer):
    for record in (make_record(), make_record(family_name="Nguyễn", given_name="")):
        zipped = fast_base45.decode(issue_checked(record, signer, NOW).hc1[4:])
        assert zipped[:2] == b"\x78\x01"
        assert zipped[:2] in EU_CORE_ZLIB_HEADERS


def test_decompression_limits():
    assert decompress(zlib.compress(b"x" * 1000)) == b"x" * 1000
    with pytest.raises(TransportError, match="beyond"):
        decompress(zlib.compress(bytes(100_000)))
    with pytest.raises(TransportError, match="truncated"):
        decompress(zlib.compress(os.urandom(500))[:-10])
    with pytest.raises(TransportError):
        decompress(b"garbage")


def test_hc1_round_trip():
    cose = os.urandom(300)
    text = encode_hc1(cose)
    assert text.startswith("HC1:")
    assert decode_hc1(text) == cose
    assert zlib.decompress(base45.b45decode(text[4:])) == cose
    with pytest.raises(TransportError):
        decode_hc1(text[4:])
    with pytest.raises(TransportError):
        decode_hc1("HC1:" + "A" * 9000)


def test_qr_code_round_trip_through_zxing(signer, trust_list):
    passport = issue_checked(make_record(), signer, NOW)
    png = qr_png(passport.hc1)
    assert png.startswith(b"\x89PNG")
    assert read_qr(png) == passport.hc1
    result = verify(png, trust_list, NOW)
    assert result.valid and result.check("qr").status == "ok" and result.hc1 == passport.hc1


def test_qr_code_is_alphanumeric_with_error_correction_q(signer):
    passport = issue_checked(make_record(), signer, NOW)
    code = segno.make_qr(passport.hc1, error="q", mode="alphanumeric", boost_error=False)
    assert code.error == "Q" and code.mode == "alphanumeric"
    # zxing reports the symbol's own error correction level.
    decoded = zxingcpp.read_barcodes(_pixels(qr_png(passport.hc1)), formats=zxingcpp.BarcodeFormat.QRCode)[0]
    assert decoded.ec_level == "Q"


def _pixels(png: bytes) -> memoryview:
    image = decode_png(png)
    return memoryview(image.pixels).cast("B", (image.height, image.width))


def test_qr_svg(signer):
    svg = qr_svg(issue_checked(make_record(), signer, NOW).hc1)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")


def test_text_outside_the_alphanumeric_alphabet_cannot_be_a_qr_code():
    with pytest.raises(TransportError):
        qr_png("hc1:lower case")
    with pytest.raises(TransportError):
        qr_png("A" * 5000)


# ---------------------------------------------------------------------------------------------- PNG reader

def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _filter(kind: int, row: bytes, previous: bytes, bpp: int) -> bytes:
    """Encode one row with a PNG filter (the reverse of what the reader undoes)."""
    out = bytearray()
    for i, value in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = previous[i]
        c = previous[i - bpp] if i >= bpp else 0
        if kind == 0:
            predictor = 0
        elif kind == 1:
            predictor = a
        elif kind == 2:
            predictor = b
        elif kind == 3:
            predictor = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out.append((value - predictor) & 255)
    return bytes(out)


def make_png(rows: list[bytes], width: int, colour: int, depth: int = 8, filters: tuple[int, ...] = (0,),
             palette: bytes = b"", transparency: bytes = b"", interlace: int = 0) -> bytes:
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    bpp = max(1, channels * depth // 8)
    previous = bytes(len(rows[0]))
    raw = bytearray()
    for index, row in enumerate(rows):
        kind = filters[index % len(filters)]
        raw += bytes([kind]) + _filter(kind, row, previous, bpp)
        previous = row
    header = struct.pack(">IIBBBBB", width, len(rows), depth, colour, 0, 0, interlace)
    body = _chunk(b"IHDR", header)
    if palette:
        body += _chunk(b"PLTE", palette)
    if transparency:
        body += _chunk(b"tRNS", transparency)
    compressed = zlib.compress(bytes(raw))
    return (b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IDAT", compressed[:10]) + _chunk(b"IDAT", compressed[10:])
            + _chunk(b"IEND", b""))


GREY = [bytes((x * 7 + y * 13) % 256 for x in range(40)) for y in range(12)]


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_png_filters_on_grey(filters):
    image = decode_png(make_png(GREY, 40, 0, filters=filters))
    assert image.pixels == b"".join(GREY)


@pytest.mark.parametrize("filters", [(1,), (3,), (4,), (2, 4, 3)])
def test_png_rgb_and_rgba_become_grey(filters):
    rgb = [bytes(v for x in range(10) for v in ((x * 20) % 256, (y * 30) % 256, 50)) for y in range(6)]
    expected = b"".join(bytes(((x * 20) % 256 + 2 * ((y * 30) % 256) + 50) // 4 for x in range(10)) for y in range(6))
    assert decode_png(make_png(rgb, 10, 2, filters=filters)).pixels == expected
    rgba = [bytes(v for x in range(10) for v in (0, 0, 0, 255 if x % 2 else 0)) for _ in range(6)]
    transparent_is_white = bytes(0 if x % 2 else 255 for x in range(10)) * 6
    assert decode_png(make_png(rgba, 10, 6, filters=filters)).pixels == transparent_is_white


def test_png_low_bit_depths_palette_and_16_bit():
    one_bit = [bytes([0b10100000]), bytes([0b01000000])]
    assert decode_png(make_png(one_bit, 3, 0, depth=1)).pixels == bytes([255, 0, 255, 0, 255, 0])
    two_bit = [bytes([0b00011011])]
    assert decode_png(make_png(two_bit, 4, 0, depth=2)).pixels == bytes([0, 85, 170, 255])
    palette = bytes([0, 0, 0, 255, 255, 255, 10, 10, 10])
    indexed = [bytes([0, 1, 2])]
    assert decode_png(make_png(indexed, 3, 3, palette=palette, transparency=b"\xff\xff\x00")).pixels == \
        bytes([0, 255, 255])
    sixteen = [b"\x12\x34\xab\xcd"]
    assert decode_png(make_png(sixteen, 2, 0, depth=16)).pixels == bytes([0x12, 0xAB])
    grey_alpha = [bytes([10, 255, 10, 0])]
    assert decode_png(make_png(grey_alpha, 2, 4)).pixels == bytes([10, 255])


@pytest.mark.parametrize("mutate, message", [
    (lambda png: b"GIF89a" + png[6:], "not a PNG"),
    (lambda png: png[:40], "truncated|no header"),
    (lambda png: png[:30] + bytes([png[30] ^ 1]) + png[31:], "CRC"),
])
def test_broken_pngs_are_refused(mutate, message):
    with pytest.raises(TransportError, match=message):
        decode_png(mutate(make_png(GREY, 40, 0)))


def test_interlaced_and_oversized_pngs_are_refused():
    with pytest.raises(TransportError, match="interlaced"):
        decode_png(make_png(GREY, 40, 0, interlace=1))
    huge = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)) + \
        _chunk(b"IDAT", zlib.compress(b"\x00")) + _chunk(b"IEND", b"")
    with pytest.raises(TransportError, match="size"):
        decode_png(huge)
    rows = b"".join(b"\x00" + row for row in GREY)
    taller = _chunk(b"IHDR", struct.pack(">IIBBBBB", 40, 13, 8, 0, 0, 0, 0))  # one row more than the data
    with pytest.raises(TransportError, match="wrong size"):
        decode_png(b"\x89PNG\r\n\x1a\n" + taller + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def test_an_image_without_a_qr_code_is_reported(trust_list):
    blank = make_png([bytes([255] * 40)] * 40, 40, 0)
    with pytest.raises(TransportError, match="no QR code"):
        read_qr(blank)
    result = verify(blank, trust_list, NOW)
    assert result.check("qr").status == "failed" and not result.valid
    assert verify(b"not an image", trust_list, NOW).check("qr").status == "failed"
