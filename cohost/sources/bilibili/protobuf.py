"""A minimal protobuf wire-format reader, enough for the few Bilibili payloads sent as protobuf
(``INTERACT_WORD_V2``, ``SEND_GIFT_V2``: base64 in ``data.pb``).

No schema and no dependency: ``parse`` turns one message into {field number: [values]}, where a value
is an int (varint, fixed32, fixed64) or bytes (length-delimited: a string, bytes or a nested message;
only the reader knows which, so the helpers below decide). Every malformed input raises ProtobufError,
never anything else, and the work is linear in the input: a length is checked against what is left
before anything is sliced, and groups (wire types 3/4, deprecated) are refused rather than recursed into.
"""

from __future__ import annotations

Fields = dict[int, list[int | bytes]]

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
MAX_VARINT_BYTES = 10  # a 64-bit varint takes at most 10 bytes; longer is malformed, not a big number


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at pos and the position after it."""
    result = shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos + i + 1
        shift += 7
    raise ProtobufError("varint longer than 10 bytes")


def parse(buf: bytes | memoryview) -> Fields:
    """One message's fields, in order of appearance within each field number."""
    fields: Fields = {}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        value: int | bytes
        if wire == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise ProtobufError("truncated fixed64")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise ProtobufError("truncated fixed32")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        elif wire == LENGTH:
            size, pos = read_varint(buf, pos)
            if size > end - pos:
                raise ProtobufError(f"length {size} past the end of the message")
            value, pos = bytes(buf[pos:pos + size]), pos + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def signed(value: int) -> int:
    """An int64 field read as a varint: negative numbers arrive as their 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


# -- typed access: the last value wins for a scalar field, as in protobuf itself ------------------------


def get_int(fields: Fields, number: int, default: int = 0) -> int:
    values = fields.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, int):
        raise ProtobufError(f"field {number} is length-delimited, expected a number")
    return signed(value)


def get_str(fields: Fields, number: int, default: str = "") -> str:
    values = fields.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, bytes):
        raise ProtobufError(f"field {number} is a number, expected a string")
    return value.decode("utf-8", errors="replace")


def get_message(fields: Fields, number: int) -> Fields:
    """A nested message (an absent one reads as empty, like protobuf's defaults)."""
    values = fields.get(number)
    if not values:
        return {}
    value = values[-1]
    if not isinstance(value, bytes):
        raise ProtobufError(f"field {number} is a number, expected a message")
    return parse(value)


def get_messages(fields: Fields, number: int) -> list[Fields]:
    """A repeated nested message."""
    out = []
    for value in fields.get(number, []):
        if not isinstance(value, bytes):
            raise ProtobufError(f"field {number} is a number, expected a message")
        out.append(parse(value))
    return out


# -- writing, for tests and the fake server ------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= 0xFFFF_FFFF_FFFF_FFFF
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, value: int | str | bytes) -> bytes:
    """One field: an int as a varint, a str (UTF-8) or bytes length-delimited."""
    if isinstance(value, int):
        return varint(number << 3 | VARINT) + varint(value)
    data = value.encode("utf-8") if isinstance(value, str) else value
    return varint(number << 3 | LENGTH) + varint(len(data)) + data


def message(*pairs: tuple[int, int | str | bytes]) -> bytes:
    return b"".join(field(n, v) for n, v in pairs)


__all__ = ["Fields", "ProtobufError", "field", "get_int", "get_message", "get_messages", "get_str", "message",
           "parse", "read_varint", "signed", "varint"]
