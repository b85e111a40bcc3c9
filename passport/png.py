"""A small PNG reader that turns a QR image into 8-bit greyscale pixels for zxing-cpp.

zxing-cpp decodes pixel buffers, not files, and the project carries no imaging library. PNG is
zlib plus per-row filters; the None, Up and Sub filters are undone with C-level bytes and
big-integer operations, Average and Paeth in Python (fine for generated QR images, slow for large
photographs). Interlaced images are refused.
"""

from __future__ import annotations

import struct
import zlib
from itertools import accumulate

from .errors import TransportError

__all__ = ["GreyImage", "decode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Generated QR images are small; these bounds keep a hostile file from taking the memory of a server.
MAX_PIXELS = 20_000_000
MAX_RAW_BYTES = 100 * 1024 * 1024
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_MOD = (255).__and__


class GreyImage:
    """Greyscale pixels, one byte each, row after row.

    :ivar width: pixels per row
    :ivar height: rows
    :ivar pixels: ``width * height`` bytes, 0 black to 255 white
    """

    __slots__ = ("height", "pixels", "width")

    def __init__(self, width: int, height: int, pixels: bytes) -> None:
        self.width = width
        self.height = height
        self.pixels = pixels


def _lanes(data: bytes | bytearray, width: int) -> int:
    """The bytes as one integer with each byte in its own ``width``-byte lane (room for carries)."""
    spread = bytearray(width * len(data))
    spread[width - 1 :: width] = data
    return int.from_bytes(spread, "big")


def _low_bytes(value: int, count: int, width: int) -> bytes:
    return value.to_bytes(width * count, "big")[width - 1 :: width]


def _add_rows(row: bytes | bytearray, previous: bytes) -> bytes:
    """Byte-wise (row + previous) mod 256 without a Python loop: 2-byte lanes absorb the carry."""
    return _low_bytes(_lanes(row, 2) + _lanes(previous, 2), len(row), 2)


def _unfilter(kind: int, row: bytearray, previous: bytes, bpp: int) -> bytearray:
    if kind == 0:
        return row
    if kind == 2:
        return bytearray(_add_rows(row, previous)) if any(previous) else row
    if kind == 1 or (kind == 4 and not any(previous)):
        # Sub (and Paeth above an empty row, which reduces to Sub): a running sum per channel.
        for channel in range(bpp):
            row[channel::bpp] = bytes(map(_MOD, accumulate(row[channel::bpp])))
        return row
    if kind == 3:
        for i in range(len(row)):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + ((left + previous[i]) >> 1)) & 255
        return row
    if kind == 4:
        for i in range(len(row)):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (row[i] + predictor) & 255
        return row
    raise TransportError(f"PNG: unknown row filter {kind}")


def _bit_table(depth: int, scale: bytes) -> list[bytes]:
    """For each byte of sub-byte samples (1, 2 or 4 bits), its samples as bytes mapped through ``scale``."""
    per_byte = 8 // depth
    return [
        bytes(scale[(byte >> (8 - depth * (k + 1))) & ((1 << depth) - 1)] for k in range(per_byte))
        for byte in range(256)
    ]


def _weighted_grey(red: bytes, green: bytes, blue: bytes) -> bytes:
    """(R + 2G + B) / 4 per pixel, computed on all pixels at once."""
    count = len(green)
    total = _lanes(red, 2) + 2 * _lanes(green, 2) + _lanes(blue, 2)
    mask = int.from_bytes(b"\x00\xff" * count, "big")
    return _low_bytes((total >> 2) & mask, count, 2)


def _flatten_alpha(grey: bytes, alpha: bytes) -> bytes:
    """Mostly transparent pixels become white (a QR drawn on a transparent background)."""
    white_where_clear = alpha.translate(bytes(255 if a < 128 else 0 for a in range(256)))
    combined = int.from_bytes(grey, "big") | int.from_bytes(white_where_clear, "big")
    return combined.to_bytes(len(grey), "big")


def decode_png(data: bytes) -> GreyImage:
    """Decode a PNG into greyscale pixels.

    :param data: the PNG file
    :returns: the greyscale image
    :raises TransportError: when the bytes are not a supported PNG (bad chunk, CRC, size, interlace)
    """
    if not data.startswith(_SIGNATURE):
        raise TransportError("not a PNG image")
    position = len(_SIGNATURE)
    header: tuple[int, ...] | None = None
    palette = b""
    transparency = b""
    compressed: list[bytes] = []
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if len(body) != length or position + 12 + length > len(data):
            raise TransportError("PNG: truncated chunk")
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise TransportError(f"PNG: bad CRC in chunk {kind!r}")
        position += 12 + length
        if kind == b"IHDR":
            if length != 13:
                raise TransportError("PNG: bad header")
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"tRNS":
            transparency = body
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            break
    if header is None or not compressed:
        raise TransportError("PNG: no header or no image data")
    width, height, depth, colour, _method, _filtering, interlace = header
    if colour not in _CHANNELS or depth not in _DEPTHS[colour]:
        raise TransportError(f"PNG: unsupported colour type {colour} with depth {depth}")
    if interlace:
        raise TransportError("PNG: interlaced images are not supported")
    if not 0 < width * height <= MAX_PIXELS:
        raise TransportError("PNG: image size out of range")
    channels = _CHANNELS[colour]
    stride = (width * channels * depth + 7) // 8
    bpp = max(1, channels * depth // 8)
    expected = height * (stride + 1)
    if expected > MAX_RAW_BYTES:
        raise TransportError("PNG: image size out of range")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(compressed), expected + 1)
    except zlib.error as error:
        raise TransportError(f"PNG: image data does not inflate ({error})") from None
    if len(raw) != expected:
        raise TransportError("PNG: image data has the wrong size")

    if colour == 3:
        if not palette or len(palette) % 3:
            raise TransportError("PNG: palette missing")
        entries = len(palette) // 3
        alpha = transparency + b"\xff" * (256 - len(transparency))
        greys = []
        for index in range(256):
            if index >= entries:
                greys.append(0)
                continue
            r, g, b = palette[3 * index : 3 * index + 3]
            greys.append((r + 2 * g + b) // 4 if alpha[index] >= 128 else 255)
        scale = bytes(greys)
    else:
        # 16-bit samples keep their high byte; 1, 2 and 4-bit samples stretch to 0..255.
        top = (1 << depth) - 1
        scale = bytes(range(256)) if depth >= 8 else bytes(255 * v // top if v <= top else 0 for v in range(256))

    bit_table = _bit_table(depth, scale) if depth < 8 else []
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, bpp)
        previous = bytes(row)
        if depth < 8:
            rows.append(b"".join(map(bit_table.__getitem__, previous))[:width])
            continue
        samples = previous[0::2] if depth == 16 else previous
        if colour in (0, 3):
            rows.append(samples.translate(scale) if colour == 3 else samples)
        elif colour == 4:
            rows.append(_flatten_alpha(samples[0::2], samples[1::2]))
        else:
            grey = _weighted_grey(samples[0::channels], samples[1::channels], samples[2::channels])
            rows.append(_flatten_alpha(grey, samples[3::4]) if colour == 6 else grey)
    return GreyImage(width, height, b"".join(rows))
