"""Feast's Redis online-store layout, encoded a whole column at a time with numpy.

Feast builds one protobuf per value in Python, which caps `feast materialize` at tens of thousands
of rows per second. The encodings involved are tiny and fixed (STACK.md, "Feast 0.67"), so here they
are produced for a batch of rows at once and checked byte for byte against Feast's own functions
in tests/batch/test_online_layout.py:

- hash key: serialize_entity_key(entity key, version 3) + project, for one INT64 join key a constant
  prefix followed by the id as 8 little-endian bytes;
- field names: the 4-byte murmur3 of "view:feature", and "_ts:view";
- values: a feast.types.Value (int64_val: tag 0x20 + varint; double_val: tag 0x29 + 8 bytes; null:
  the empty message), the timestamp a google.protobuf.Timestamp (seconds, nanos; zeros omitted).

A column of encoded values is a `Piece`: a matrix with one left-aligned row of bytes per table row
and each row's length. `render` lays out the rows one after another, each row its pieces in order;
it is the one place that moves bytes, so pieces are kept few and wide (one per field, its name and
RESP framing included).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

INT64_TAG = 0x20    # Value.int64_val, field 4, varint
DOUBLE_TAG = 0x29   # Value.double_val, field 5, 64-bit
SECONDS_TAG = 0x08  # Timestamp.seconds, field 1, varint
NANOS_TAG = 0x10    # Timestamp.nanos, field 2, varint
MAX_VARINT = 10
MAX_BULK = 99       # longest payload `bulk` frames; Values and Timestamps here are at most 22 bytes


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class Piece:
    """Per row, its first lengths[i] bytes of data[i] (data is (1, width) for a constant)."""

    data: np.ndarray
    lengths: np.ndarray

    @property
    def width(self) -> int:
        return int(self.data.shape[1])


def constant(raw: bytes, rows: int) -> Piece:
    return Piece(np.frombuffer(raw, dtype=np.uint8).reshape(1, -1), np.full(rows, len(raw), dtype=np.int64))


def fixed(data: np.ndarray) -> Piece:
    return Piece(data, np.full(data.shape[0], data.shape[1], dtype=np.int64))


def _layout(pieces: list[Piece]) -> tuple[np.ndarray, np.ndarray]:
    """All pieces side by side, and which of those bytes each row uses."""
    rows = len(pieces[0].lengths)
    buffer = np.concatenate([np.broadcast_to(p.data, (rows, p.width)) for p in pieces], axis=1)
    # Per column: its piece and its position in the piece; a byte is used when its position is
    # below the row's length of that piece.
    position = np.concatenate([np.arange(p.width, dtype=np.int16) for p in pieces])
    piece_of = np.repeat(np.arange(len(pieces)), [p.width for p in pieces])
    lengths = np.stack([p.lengths.astype(np.int16) for p in pieces], axis=1)
    return buffer, position < lengths[:, piece_of]


def _total_lengths(pieces: list[Piece]) -> np.ndarray:
    return np.sum([p.lengths for p in pieces], axis=0)


def render_rows(pieces: list[Piece]) -> tuple[bytes, np.ndarray]:
    """Every row's pieces in order, rows one after another, and where each row starts (rows + 1
    offsets), to cut the bytes into calls."""
    buffer, used = _layout(pieces)
    offsets = np.zeros(len(used) + 1, dtype=np.int64)
    np.cumsum(_total_lengths(pieces), out=offsets[1:])
    return buffer[used].tobytes(), offsets


def join(pieces: list[Piece]) -> Piece:
    """Several pieces as one (e.g. a protobuf made of optional fields, or a framed value)."""
    buffer, used = _layout(pieces)
    lengths = _total_lengths(pieces)
    out = np.zeros(buffer.shape, dtype=np.uint8)
    out[np.arange(buffer.shape[1]) < lengths[:, None]] = buffer[used]  # row-major: each row left-aligned
    return Piece(out, lengths)


def varint(values: np.ndarray) -> Piece:
    """Protobuf base-128 varints of int64s (negatives as their 64-bit two's complement, 10 bytes)."""
    u = values.astype(np.int64).view(np.uint64)
    shifts = np.arange(0, 7 * MAX_VARINT, 7, dtype=np.uint64)
    groups = ((u[:, None] >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    # Bytes needed: up to the highest non-zero group of 7 bits, at least one.
    nonzero = groups != 0
    lengths = np.where(nonzero.any(axis=1), MAX_VARINT - np.argmax(nonzero[:, ::-1], axis=1), 1)
    more = np.arange(MAX_VARINT) < (lengths[:, None] - 1)
    return Piece(groups | (more.astype(np.uint8) << 7), lengths.astype(np.int64))


def _bulk_headers() -> Piece:
    """`$<n>\\r\\n` for every n up to MAX_BULK, to look up instead of formatting numbers."""
    heads = [b"$%d\r\n" % n for n in range(MAX_BULK + 1)]
    data = np.zeros((len(heads), max(map(len, heads))), dtype=np.uint8)
    for n, head in enumerate(heads):
        data[n, :len(head)] = np.frombuffer(head, dtype=np.uint8)
    return Piece(data, np.array([len(h) for h in heads], dtype=np.int64))


_HEADERS = _bulk_headers()


def bulk(payload: Piece, prefix: bytes = b"") -> Piece:
    """Per row `prefix` then a RESP bulk string of the payload: $<length>\\r\\n<payload>\\r\\n."""
    if payload.lengths.max(initial=0) > MAX_BULK:
        raise LayoutError(f"a payload longer than {MAX_BULK} bytes")
    rows = len(payload.lengths)
    head = Piece(_HEADERS.data[payload.lengths], _HEADERS.lengths[payload.lengths])
    pieces = [constant(prefix, rows)] if prefix else []
    return join([*pieces, head, payload, constant(b"\r\n", rows)])


def resp_bulk(raw: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


# --- Feast's encodings ---------------------------------------------------------------------------

ColumnEncoder = Callable[[pa.ChunkedArray | pa.Array], Piece]


def int64_values(column: pa.ChunkedArray | pa.Array) -> Piece:
    """Serialized Value(int64_val=v) per row; null -> the empty message, as Feast writes it."""
    valid = _valid(column)
    values = pc.fill_null(column, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    v = varint(values)
    data = np.concatenate([np.full((len(values), 1), INT64_TAG, dtype=np.uint8), v.data], axis=1)
    return Piece(data, np.where(valid, v.lengths + 1, 0))


def double_values(column: pa.ChunkedArray | pa.Array) -> Piece:
    """Serialized Value(double_val=v) per row; null and NaN -> the empty message (Feast's pd.isnull)."""
    values = pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    data = np.empty((len(values), 9), dtype=np.uint8)
    data[:, 0] = DOUBLE_TAG
    data[:, 1:] = values.astype("<f8").view(np.uint8).reshape(-1, 8)
    return Piece(data, np.where(np.isnan(values), 0, 9))


def _valid(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    return pc.is_valid(column).to_numpy(zero_copy_only=False)


def timestamps(micros: np.ndarray) -> Piece:
    """Serialized google.protobuf.Timestamp of epoch microseconds, as Timestamp.FromDatetime makes it."""
    seconds, rest = np.divmod(micros.astype(np.int64), 1_000_000)
    nanos = rest * 1000
    rows = len(micros)
    s, n = varint(seconds), varint(nanos)
    has_s, has_n = seconds != 0, nanos != 0  # proto3 leaves zero scalars out
    return join([Piece(np.full((rows, 1), SECONDS_TAG, dtype=np.uint8), has_s.astype(np.int64)),
                 Piece(s.data, np.where(has_s, s.lengths, 0)),
                 Piece(np.full((rows, 1), NANOS_TAG, dtype=np.uint8), has_n.astype(np.int64)),
                 Piece(n.data, np.where(has_n, n.lengths, 0))])


class Int64Field:
    """A feature's field name and its Values as RESP bulk strings. Counts are small, so every value
    below SMALL_INTS (and null) is looked up in a table made once; a column with a larger value is
    encoded in full."""

    SMALL_INTS = 1 << 14  # varints of at most 2 bytes

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        small = np.arange(self.SMALL_INTS + 1)
        table = bulk(int64_values(pa.array(small, mask=small == self.SMALL_INTS)), prefix)  # last row: null
        self.table = table

    def __call__(self, column: pa.ChunkedArray | pa.Array) -> Piece:
        valid = _valid(column)
        values = pc.fill_null(column, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        if not ((values >= 0) & (values < self.SMALL_INTS)).all():
            return bulk(int64_values(column), self.prefix)
        at = np.where(valid, values, self.SMALL_INTS)
        return Piece(self.table.data[at], self.table.lengths[at])


class DoubleField:
    """A feature's field name and its Values as RESP bulk strings: a fixed 9-byte payload, or the
    empty message for null and NaN."""

    def __init__(self, prefix: bytes) -> None:
        self.head = np.frombuffer(prefix + b"$9\r\n" + bytes([DOUBLE_TAG]), dtype=np.uint8)
        self.null = np.frombuffer(prefix + b"$0\r\n\r\n", dtype=np.uint8)

    def __call__(self, column: pa.ChunkedArray | pa.Array) -> Piece:
        values = pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        h = len(self.head)
        data = np.empty((len(values), h + 10), dtype=np.uint8)
        data[:, :h] = self.head
        data[:, h:h + 8] = values.astype("<f8").view(np.uint8).reshape(-1, 8)
        data[:, h + 8:] = np.frombuffer(b"\r\n", dtype=np.uint8)
        null = np.isnan(values)
        data[null, :len(self.null)] = self.null
        return Piece(data, np.where(null, len(self.null), h + 10))


def field_encoder(value_type_name: str, field: bytes) -> ColumnEncoder:
    """Encodes a column as, per row, `$4 field` and `$n Value` in RESP; only the types tessera's
    views declare."""
    encoders: dict[str, type[Int64Field] | type[DoubleField]] = {"INT64": Int64Field, "DOUBLE": DoubleField}
    if value_type_name not in encoders:
        raise LayoutError(f"feature type {value_type_name} has no bulk encoder (supported: "
                          f"{', '.join(encoders)}); use `feast materialize` for this view")
    return encoders[value_type_name](resp_bulk(field))


def field_name(view: str, feature: str) -> bytes:
    return _mmh3(f"{view}:{feature}")


@dataclass(frozen=True)
class EntityKeyLayout:
    """serialize_entity_key(...) + project for one INT64 join key: prefix, 8 bytes of id, suffix."""

    prefix: bytes
    suffix: bytes

    @classmethod
    def for_join_key(cls, join_key: str, project: str, version: int) -> "EntityKeyLayout":
        def key(v: int) -> bytes:
            proto = EntityKeyProto(join_keys=[join_key], entity_values=[ValueProto(int64_val=v)])
            return serialize_entity_key(proto, entity_key_serialization_version=version)

        probe = 0x0102030405060708
        zero, probed = key(0), key(probe)
        at = len(zero) - 8
        # Derived from Feast's own function, then checked: the id must be the last 8 bytes, LE.
        if len(probed) != len(zero) or probed[:at] != zero[:at] or probed[at:] != probe.to_bytes(8, "little"):
            raise LayoutError(f"entity key serialization version {version} does not end in the 8-byte id; "
                              "bulk materialization cannot encode it")
        return cls(zero[:at], project.encode("utf-8"))

    @property
    def width(self) -> int:
        return len(self.prefix) + 8 + len(self.suffix)

    def keys(self, ids: np.ndarray) -> Piece:
        data = np.empty((len(ids), self.width), dtype=np.uint8)
        data[:, :len(self.prefix)] = np.frombuffer(self.prefix, dtype=np.uint8)
        data[:, len(self.prefix):len(self.prefix) + 8] = ids.astype("<i8").view(np.uint8).reshape(-1, 8)
        data[:, len(self.prefix) + 8:] = np.frombuffer(self.suffix, dtype=np.uint8)
        return fixed(data)

    def key(self, entity_id: int) -> bytes:
        return self.prefix + int(entity_id).to_bytes(8, "little", signed=True) + self.suffix
