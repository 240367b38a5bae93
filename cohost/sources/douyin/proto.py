"""A minimal protobuf wire-format reader and writer, with bounds.

Only what the Douyin webcast framing needs: varints, 64- and 32-bit fixed fields, length-delimited fields
(strings, bytes, sub-messages, packed repeated varints). Groups (wire types 3 and 4) were removed from
protobuf long ago and never appear in webcast payloads: they are refused, like any unknown wire type.

Everything here works on ``bytes``/``memoryview`` without copying and raises ``WireError`` (never
anything else) for input that is not well-formed: a truncated field, a varint longer than ten bytes, a
length past the end, field number 0, too many fields. The codec turns a WireError into a counted error.

The schema (which field number means what) lives in messages.py; this module knows nothing of Douyin.
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
MAX_FIELD_NUMBER = (1 << 29) - 1
# A message with more fields than this is garbage (the largest real Response carries a few hundred); the cap
# keeps a megabyte of two-byte fields from becoming half a million Python objects.
MAX_FIELDS = 50_000
_U64 = 1 << 64

Buffer = bytes | bytearray | memoryview


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: Buffer, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it. At most ten bytes (a 64-bit value)."""
    result = shift = 0
    end = len(buf)
    for _ in range(10):
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (_U64 - 1), pos
        shift += 7
    raise WireError("varint longer than 10 bytes")


def iter_fields(buf: Buffer, *, max_fields: int = MAX_FIELDS) -> Iterator[tuple[int, int, int | memoryview]]:
    """Yield (field number, wire type, value) for each field of one message: an int for varint and fixed
    fields, a memoryview (no copy) for length-delimited ones."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    pos, end, count = 0, len(view), 0
    while pos < end:
        count += 1
        if count > max_fields:
            raise WireError(f"more than {max_fields} fields")
        key, pos = read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0 or number > MAX_FIELD_NUMBER:
            raise WireError(f"invalid field number {number}")
        if wire == VARINT:
            value, pos = read_varint(view, pos)
            yield number, wire, value
        elif wire == LEN:
            size, pos = read_varint(view, pos)
            if size > end - pos:
                raise WireError(f"field {number}: length {size} past the end ({end - pos} bytes left)")
            yield number, wire, view[pos:pos + size]
            pos += size
        elif wire == FIXED64 or wire == FIXED32:
            width = 8 if wire == FIXED64 else 4
            if width > end - pos:
                raise WireError(f"field {number}: truncated fixed{width * 8}")
            yield number, wire, int.from_bytes(view[pos:pos + width], "little")
            pos += width
        else:
            raise WireError(f"field {number}: unsupported wire type {wire}")


def iter_packed_varints(buf: Buffer, *, max_items: int = MAX_FIELDS) -> Iterator[int]:
    """The values of a packed repeated varint field (proto3 packs repeated scalars by default)."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    pos, end, count = 0, len(view), 0
    while pos < end:
        count += 1
        if count > max_items:
            raise WireError(f"more than {max_items} packed values")
        value, pos = read_varint(view, pos)
        yield value


def signed64(value: int) -> int:
    """An int64 field's value: negative numbers travel as their 64-bit two's complement."""
    return value - _U64 if value >= 1 << 63 else value


# -- writer ---------------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """Encode a varint; a negative value is written as its 64-bit two's complement (int64 semantics)."""
    if value < 0:
        value += _U64
    if not 0 <= value < _U64:
        raise ValueError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire: int) -> bytes:
    if not 0 < number <= MAX_FIELD_NUMBER:
        raise ValueError(f"invalid field number {number}")
    return varint(number << 3 | wire)


def field_varint(number: int, value: int) -> bytes:
    return tag(number, VARINT) + varint(value)


def field_bytes(number: int, value: Buffer) -> bytes:
    return tag(number, LEN) + varint(len(value)) + bytes(value)


def field_str(number: int, value: str) -> bytes:
    return field_bytes(number, value.encode("utf-8"))


def field_fixed64(number: int, value: int) -> bytes:
    return tag(number, FIXED64) + (value % _U64).to_bytes(8, "little")


def field_fixed32(number: int, value: int) -> bytes:
    return tag(number, FIXED32) + (value % (1 << 32)).to_bytes(4, "little")


def field_packed(number: int, values: list[int]) -> bytes:
    return field_bytes(number, b"".join(varint(v) for v in values))


__all__ = ["FIXED32", "FIXED64", "LEN", "MAX_FIELDS", "VARINT", "WireError", "field_bytes", "field_fixed32",
           "field_fixed64", "field_packed", "field_str", "field_varint", "iter_fields", "iter_packed_varints",
           "read_varint", "signed64", "tag", "varint"]
