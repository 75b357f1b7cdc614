"""TFRecord files of ``tf.train.Example`` protos, read and written without TensorFlow or protobuf.

Framing (TensorFlow ``core/lib/io/record_writer.cc``), little-endian, one record after the other::

    uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)

``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32)``; CRC-32C is the Castagnoli polynomial.
``GZIP`` files are one gzip stream around that framing (the gzip layer carries its own CRC-32).

``tf.train.Example`` (``core/example/example.proto``, ``feature.proto``) on the protobuf wire::

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }     # entries: { string key = 1; Feature value = 2; }
    Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
    Int64List { repeated int64 value = 1 [packed]; }

:func:`parse_example` returns ``{name: list of bytes | float | int}``.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

_MASK_DELTA = 0xA282EAD8


class TFRecordError(ValueError):
    """A TFRecord file or an Example proto that cannot be decoded; the message says where."""


# ---------------------------------------------------------------------------------------------- CRC-32C
def _crc_table() -> list[int]:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------- framing
def _open(path: Path, compression: str) -> BinaryIO:
    if compression == "GZIP":
        return gzip.open(path, "rb")
    if compression == "":
        return open(path, "rb")
    raise ValueError(f"compression must be 'GZIP' or '', got {compression!r}")


def read_records(path: str | Path, compression: str = "GZIP", verify_data_crc: bool = False) -> Iterator[bytes]:
    """Yield the payload of each record. The length CRC is always checked; the data CRC (a pure-Python
    CRC-32C, slow on large shards) only with ``verify_data_crc`` -- a GZIP stream's own CRC-32 already
    catches corruption of the compressed file. Raises TFRecordError naming the file and record index."""
    path = Path(path)
    with _open(path, compression) as f:
        index = 0
        while True:
            try:
                header = f.read(12)
            except (OSError, EOFError, zlib.error) as exc:  # gzip: bad stream / CRC / truncated
                raise TFRecordError(f"{path} [record {index}]: {exc}") from None
            if not header:
                return
            if len(header) < 12:
                raise TFRecordError(f"{path} [record {index}]: truncated header ({len(header)} of 12 bytes)")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != length_crc:
                raise TFRecordError(f"{path} [record {index}]: length CRC mismatch (not a TFRecord file?)")
            try:
                data = f.read(length)
                footer = f.read(4)
            except (OSError, EOFError, zlib.error) as exc:
                raise TFRecordError(f"{path} [record {index}]: {exc}") from None
            if len(data) < length or len(footer) < 4:
                raise TFRecordError(f"{path} [record {index}]: truncated record ({len(data)} of {length} bytes)")
            if verify_data_crc and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise TFRecordError(f"{path} [record {index}]: data CRC mismatch")
            yield data
            index += 1


def frame_record(data: bytes) -> bytes:
    """One record in TFRecord framing (length, masked CRCs)."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def write_records(path: str | Path, records, compression: str = "GZIP") -> None:
    """Write payloads as TensorFlow's ``TFRecordWriter`` does (GZIP: one gzip stream)."""
    blob = b"".join(frame_record(r) for r in records)
    if compression == "GZIP":
        blob = gzip.compress(blob)
    elif compression != "":
        raise ValueError(f"compression must be 'GZIP' or '', got {compression!r}")
    Path(path).write_bytes(blob)


# ---------------------------------------------------------------------------------------------- protobuf wire
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise TFRecordError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise TFRecordError("varint longer than 10 bytes")


def wire_fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes otherwise."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > n:
                raise TFRecordError(f"field {number}: length {size} runs past the message end")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise TFRecordError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


def submessages(buf: bytes, number: int) -> Iterator[bytes]:
    """The length-delimited values of field ``number`` of a message (its sub-messages)."""
    for n, _, value in wire_fields(buf):
        if n == number and isinstance(value, bytes):
            yield value


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _feature_values(buf: bytes) -> list:
    out: list = []
    for number, _, body in wire_fields(buf):
        if number not in (1, 2, 3) or not isinstance(body, bytes):
            raise TFRecordError(f"Feature: unexpected field {number}")
        for vnum, wire, v in wire_fields(body):
            if vnum != 1:
                continue
            if number == 1:
                out.append(v)
            elif number == 2:  # packed run of float32, or one fixed32
                out.extend(struct.unpack(f"<{len(v) // 4}f", v))
            elif wire == 2:  # packed int64 varints
                p = 0
                while p < len(v):
                    x, p = _varint(v, p)
                    out.append(signed64(x))
            else:
                out.append(signed64(v))
    return out


def parse_example(buf: bytes) -> dict[str, list]:
    """A serialized ``tf.train.Example`` -> ``{feature name: list of values}``."""
    features: dict[str, list] = {}
    for feats in submessages(buf, 1):
        for entry in submessages(feats, 1):
            key = next(submessages(entry, 1), None)
            if key is None:
                raise TFRecordError("feature map entry without a key")
            features[key.decode("utf-8")] = _feature_values(next(submessages(entry, 2), b""))
    return features


def _enc_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_bytes(number: int, data: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(data)) + data


def encode_example(features: dict[str, list]) -> bytes:
    """``{name: list of bytes | str | int | float}`` -> serialized ``tf.train.Example`` (packed numeric
    lists, as TensorFlow serializes them). A list's kind is taken from its first value (empty = bytes)."""
    entries = b""
    for name, values in features.items():
        values = list(values)
        if values and isinstance(values[0], bool):
            raise TypeError(f"feature {name!r}: booleans are not a tf.train.Feature kind")
        if values and isinstance(values[0], int):
            feature = _enc_bytes(3, _enc_bytes(1, b"".join(_enc_varint(int(v)) for v in values)))
        elif values and isinstance(values[0], float):
            feature = _enc_bytes(2, _enc_bytes(1, struct.pack(f"<{len(values)}f", *values)))
        else:
            raw = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
            feature = _enc_bytes(1, b"".join(_enc_bytes(1, r) for r in raw))
        entries += _enc_bytes(1, _enc_bytes(1, name.encode("utf-8")) + _enc_bytes(2, feature))
    return _enc_bytes(1, entries)


def encode_message(fields) -> bytes:
    """A protobuf message from ``[(field number, value), ...]``: int -> varint, bytes / str ->
    length-delimited, a nested list of pairs -> sub-message (enough for test fixtures of small protos)."""
    out = b""
    for number, value in fields:
        if isinstance(value, bool) or not isinstance(value, (int, bytes, str, list, tuple)):
            raise TypeError(f"field {number}: cannot encode {type(value).__name__}")
        if isinstance(value, int):
            out += _enc_varint(number << 3) + _enc_varint(value)
        elif isinstance(value, (list, tuple)):
            out += _enc_bytes(number, encode_message(value))
        else:
            out += _enc_bytes(number, value.encode("utf-8") if isinstance(value, str) else value)
    return out
