"""Bulk writes of a view's rows into Feast's Redis online store, never replacing a newer row.

Feast's writer reads every key's `_ts:<view>` in one round trip, then writes the rows that are
newer, so a stream write landing in between is overwritten by an older row. Here one Lua script
call per batch of keys does the read, the comparison and the HSET inside Redis, so the rule holds
even while the stream writes (streaming/online_writer.py): a row is written only when the key holds
no timestamp for the view, or an older one (Feast: "skip only if older or the exact same instant").
With Feast's `skip_dedup` option the rows are written with plain HSETs instead, as Feast does.

A call of `keys_per_call` keys keeps Redis' per-command cost off every key but blocks other clients
while it runs (Redis spends about 4.5 µs per written key here, against 2.8 µs for a plain HSET, so
a call of 200 keys pauses other clients for about 1 ms): the batch size bounds that pause. Calls are packed
in RESP by batch/online_layout.py, a window at a time, and sent over redis-py's connection (host,
port, db, password and TLS from tessera's settings), one round trip per window.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import redis

from batch.online_layout import (ColumnEncoder, EntityKeyLayout, LayoutError, bulk, field_encoder, field_name,
                                 render_rows, resp_bulk, timestamps)
from tessera.config import Settings
from tessera.services.redis_server import redis_client

if TYPE_CHECKING:
    from feast import FeatureView
    from feast.repo_config import RepoConfig

# KEYS: entity hashes. ARGV[1]: the `_ts:<view>` field; ARGV[2]: key TTL in seconds (0: none);
# ARGV[3]: arguments per key (w); then per key: its Timestamp bytes, then field, value pairs (w - 1).
WRITE_IF_NEWER = b"""
local function decode(ts)
  local seconds, nanos, i, n = 0, 0, 1, #ts
  while i <= n do
    local tag = string.byte(ts, i)
    i = i + 1
    local v, scale = 0, 1
    while true do
      local b = string.byte(ts, i)
      i = i + 1
      v = v + (b % 128) * scale
      scale = scale * 128
      if b < 128 then break end
    end
    if v >= 9223372036854775808 then v = v - 18446744073709551616 end
    if tag == 8 then seconds = v elseif tag == 16 then nanos = v end
  end
  return seconds, nanos
end
local ts_field, ttl, width = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local written = 0
for k = 1, #KEYS do
  local at = 4 + (k - 1) * width
  local old = redis.call('HGET', KEYS[k], ts_field)
  local write = true
  if old then
    local old_s, old_n = decode(old)
    if old_s ~= 0 or old_n ~= 0 then  -- Feast treats a zero timestamp as none
      local new_s, new_n = decode(ARGV[at])
      write = new_s > old_s or (new_s == old_s and new_n > old_n)
    end
  end
  if write then
    redis.call('HSET', KEYS[k], ts_field, ARGV[at], unpack(ARGV, at + 1, at + width - 1))
    if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
    written = written + 1
  end
end
return written
"""
SCRIPT_SHA = hashlib.sha1(WRITE_IF_NEWER).hexdigest().encode()
KEYS_PER_CALL = 200  # alone, one call blocks other clients for about 1 ms (the stream's writer: [sink] keys_per_call)


class OnlineWriteError(RuntimeError):
    pass


@dataclass(frozen=True)
class ViewEncoding:
    """What is the same for every row of a view: how keys are made, the `_ts:<view>` field, the
    feature fields (mmh3 of view:feature) with their value encoders, and the key TTL."""

    keys: EntityKeyLayout
    ts_field: bytes
    fields: list[tuple[str, ColumnEncoder]]  # offline column, its encoder to `field value` in RESP
    ttl_seconds: int

    @property
    def args_per_key(self) -> int:
        return 1 + 2 * len(self.fields)


def view_encoding(feature_view: "FeatureView", config: "RepoConfig") -> ViewEncoding:
    """A registered view's layout, as Feast's RedisOnlineStore writes it under this repo config."""
    from feast.infra.online_stores.helpers import compute_versioned_name

    if len(feature_view.entity_columns) != 1 or feature_view.entity_columns[0].dtype.to_value_type().name != "INT64":
        raise LayoutError("only one INT64 join key is supported; use Feast's own writer")
    join_key = feature_view.entity_columns[0].name
    versioning = bool(getattr(config.registry, "enable_online_feature_view_versioning", False))
    name = compute_versioned_name(feature_view, versioning)  # what Feast names the fields after
    fields = [(f.name, field_encoder(f.dtype.to_value_type().name, field_name(name, f.name)))
              for f in feature_view.features]
    keys = EntityKeyLayout.for_join_key(join_key, config.project, config.entity_key_serialization_version)
    ttl = int(getattr(config.online_store, "key_ttl_seconds", None) or 0)
    return ViewEncoding(keys, f"_ts:{name}".encode(), fields, ttl)


@dataclass(frozen=True)
class EncodedRows:
    keys: bytes           # each key as a RESP bulk string
    key_offsets: np.ndarray
    args: bytes           # each row's Timestamp, then field, value pairs, as RESP bulk strings
    arg_offsets: np.ndarray


def encode(encoding: ViewEncoding, ids: np.ndarray, ts_micros: np.ndarray, table: pa.Table) -> EncodedRows:
    keys, key_offsets = render_rows([bulk(encoding.keys.keys(ids))])
    pieces = [bulk(timestamps(ts_micros))]
    for column, encoder in encoding.fields:
        pieces.append(encoder(table.column(column)))
    args, arg_offsets = render_rows(pieces)
    return EncodedRows(keys, key_offsets, args, arg_offsets)


def guarded_calls(encoding: ViewEncoding, rows: EncodedRows, keys_per_call: int) -> list[bytes]:
    """EVALSHA WRITE_IF_NEWER calls, `keys_per_call` keys each."""
    width = encoding.args_per_key
    argv_head = resp_bulk(encoding.ts_field) + resp_bulk(b"%d" % encoding.ttl_seconds) + resp_bulk(b"%d" % width)
    keys, args = memoryview(rows.keys), memoryview(rows.args)
    calls: list[bytes] = []
    total = len(rows.key_offsets) - 1
    for first in range(0, total, keys_per_call):
        last = min(total, first + keys_per_call)
        n = last - first
        head = (b"*%d\r\n" % (3 + n + 3 + n * width) + resp_bulk(b"EVALSHA") + resp_bulk(SCRIPT_SHA)
                + resp_bulk(b"%d" % n))
        calls.append(b"".join((head, keys[rows.key_offsets[first]:rows.key_offsets[last]], argv_head,
                               args[rows.arg_offsets[first]:rows.arg_offsets[last]])))
    return calls


def plain_hsets(encoding: ViewEncoding, rows: EncodedRows) -> tuple[bytes, int]:
    """One HSET (and EXPIRE, with a TTL) per row, as Feast writes with skip_dedup; and how many
    replies to read."""
    head = b"*%d\r\n" % (2 + encoding.args_per_key + 1) + resp_bulk(b"HSET")
    ts = resp_bulk(encoding.ts_field)
    out = []
    total = len(rows.key_offsets) - 1
    for i in range(total):
        key = rows.keys[rows.key_offsets[i]:rows.key_offsets[i + 1]]
        out += [head, key, ts, rows.args[rows.arg_offsets[i]:rows.arg_offsets[i + 1]]]
        if encoding.ttl_seconds:
            out += [b"*3\r\n" + resp_bulk(b"EXPIRE"), key, resp_bulk(b"%d" % encoding.ttl_seconds)]
    return b"".join(out), total * (2 if encoding.ttl_seconds else 1)


class BulkConnection:
    """One connection with the script loaded, sending packed calls and reading their replies."""

    def __init__(self, settings: Settings, timeout_s: float = 60.0) -> None:
        self._client = redis_client(settings, timeout_s=timeout_s)
        self.address = f"{settings.redis.host}:{settings.redis.port}/db{settings.redis.db}"
        try:
            loaded = self._client.script_load(WRITE_IF_NEWER)  # the script cache is server-wide
            self._conn = self._client.connection_pool.get_connection()
        except (redis.RedisError, OSError) as err:
            raise OnlineWriteError(f"cannot reach Redis at {self.address}: {err}") from None
        if (loaded.decode() if isinstance(loaded, bytes) else loaded) != SCRIPT_SHA.decode():
            raise OnlineWriteError(f"Redis at {self.address} loaded the write script as {loaded!r}")
        self._pending = 0

    def send(self, packed: list[bytes], replies: int) -> None:
        """Queue commands without waiting for their replies (read them with `written`)."""
        try:
            self._conn.send_packed_command(packed, check_health=False)
        except (redis.RedisError, OSError) as err:
            self._conn.disconnect()
            raise OnlineWriteError(f"writing to Redis at {self.address} failed: {err}") from None
        self._pending += replies

    def written(self) -> int:
        """Read every queued reply; the sum of the integer replies (keys written by the script)."""
        total, pending, self._pending = 0, self._pending, 0
        try:
            for _ in range(pending):
                total += int(self._conn.read_response())
        except (redis.RedisError, OSError) as err:
            self._conn.disconnect()  # replies may be left unread: never reuse this connection
            what = "refused a write" if isinstance(err, redis.ResponseError) else "did not answer"
            raise OnlineWriteError(f"Redis at {self.address} {what}: {err}") from None
        return total

    def close(self) -> None:
        self._client.connection_pool.release(self._conn)
        self._client.close()
