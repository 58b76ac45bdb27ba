"""The JVM engine's validator (jars/aggregator Validate: EventSchema, PyJsonReader, StreamValidator,
PartitionClock, DeadLetter) against the Python one (tessera/events.py, streaming/dead_letters.py,
streaming/stream_clock.py), message for message.

Both see the same corpus in the same order, with the same partitions and processing times: generated
events with the generator's own invalid shapes, every field replaced by every awkward JSON value,
missing fields, truncations, random bytes, malformed UTF-8, JSON that only Python's reader accepts
(NaN, Infinity, 4,300-digit integers, repeated keys) or refuses (a BOM, trailing data, raw control
characters), deep nesting, future events before and after the stream has a clock, tombstones and
messages too big to keep whole. Each side's answer (the event with its stream clock as the job
emits it, or the dead-letter envelope) must be the same string; for not_json the reason is the
reader's own error message and only its prefix is compared. No cluster: a JVM and the jar.
"""
from __future__ import annotations

import base64
import json
import random
from typing import Any, Iterator

from streaming.dead_letters import StreamValidator, envelope
from streaming.stream_clock import PartitionClock
from tessera.events import FIELDS, INT64_MAX, MAX_EVENT_TIME_MS, NOT_JSON, AdEvent
from tessera.generator import EventGenerator, GeneratorConfig
from tests.streaming.jvm import run_main

START = 1_772_323_200_000  # 2026-03-01T00:00Z
PARTITIONS = 2
IDLE_MS = 10_000
HOUR_MS = 3_600_000

AWKWARD: list[Any] = [
    None, True, False, "", "12", "x" * 600, "é" * 300, "😀" * 128, "😀" * 129, "a\"b\\c\n\x00\x7f",
    0, -0, -1, 1, INT64_MAX, INT64_MAX + 1, -(2**63), -(2**63) - 1, 2**64, 10**30, -(10**30), 10**15, 10**15 + 1,
    MAX_EVENT_TIME_MS - 1, MAX_EVENT_TIME_MS, 1.5, -0.0, 0.1 + 0.2, 1e15, 1e15 + 0.5, 1e16, 1e-7, -1e-7, 5e-324,
    1e308, -2.5, 123456789.125, float("nan"), float("inf"), float("-inf"), [], [1, "a"], {}, {"a": {"b": [None]}},
    "impression", "Impression", "click ", "ünknown", "\u200b", "\ud800", "\udc00x", "x" * 100,
]

# Spellings that json.dumps never writes; spliced in as raw text in place of a field's value.
RAW_VALUES = [
    "01", "1.", ".5", "+1", "1e5", "1E+2", "1e", "1e+", "-", "--1", "0x10", "1_000", "NaN", "-Infinity", "Infinity",
    "nan", "inf", "true", "null", "1" * 4300, "1" * 4301, "-" + "9" * 4300, "1" + "0" * 400 + ".5", "1e400", "-1e400",
    '"\\ud83d\\ude00"', '"\\ude00\\ud83d"', '"\\ud83d"', '"\\uZZZZ"', '"\\u12"', '"\\x41"', '"\\/\\b\\f"', '"tab\there"',
    '"\\u0000"', '"\\uD83D\\uDE00"', '"\\u00e9"', "[" * 50 + "]" * 50, "[" * 2000 + "]" * 2000, '{"a":' * 60 + "1" + "}" * 60,
    '"click"', '"conversion"',
]

BAD_UTF8 = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\xe0\x80\x80", b"\x80",
            b"\xc3", b"\xe2\x82", b"\xff", b"\xf0\x9f\x98\x80", b"\xc3\xa9"]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=True)


def _with_raw(event: dict[str, Any], field: str, raw_value: str) -> bytes:
    marker = "\u0001MARK\u0001"
    return _dumps({**event, field: marker}).replace(_dumps(marker), raw_value).encode()


def _corpus(rng: random.Random) -> Iterator[bytes | None]:
    config = GeneratorConfig(seed=5, users=50, campaigns=5, duplicates=0.05, out_of_order=0.1, late=0.05, invalid=0.1)
    messages = EventGenerator(config, START, rate_per_s=20.0).take(3_000)
    events = [m.event.as_dict() for m in messages if m.event is not None]
    for m in messages:
        yield m.value
    for i, event in enumerate(events[:600]):
        field = FIELDS[i % len(FIELDS)]
        yield _dumps({**event, field: AWKWARD[i % len(AWKWARD)]}).encode()
        yield _with_raw(event, field, RAW_VALUES[i % len(RAW_VALUES)])
        yield _dumps({k: v for k, v in event.items() if k != field}).encode()  # a missing field
        text = _dumps(event)
        yield text[: rng.randrange(len(text))].encode()  # truncated
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(60)))  # random bytes
        cut = text.index(event["event_id"]) + 2
        yield text[:cut].encode() + BAD_UTF8[i % len(BAD_UTF8)] + text[cut:].encode()
    for event in events[600:700]:
        text = _dumps(event)
        yield from (
            None, b"", b"   ", b"[]", b'"x"', b"1", b"null", b"NaN",
            b"\xef\xbb\xbf" + text.encode(),  # a BOM
            text.encode() + b" x",  # trailing data
            (" \t\r\n" + text + "\n ").encode(),  # JSON's whitespace
            ("\f" + text).encode(),  # not JSON's whitespace
            text.replace("}", ",}").encode(),  # a trailing comma
            text.replace('"click"', '"cli\tck"').replace('"impression"', '"impr\nession"').encode(),
            json.dumps(event, indent=2, ensure_ascii=False).encode(),
            (text[:-1] + ',"user_id":"repeated"}').encode(),  # a repeated key: the last one counts
            ('{"user_id":"first",' + text[1:]).encode(),
            text.replace(":", " : ").encode(),
            text.replace('"event_id":', '"event_id" :').replace("{", "{ ").encode(),
            ("[" * 900 + "]" * 900).encode(),  # deep enough to mean nothing, but not near either limit
            b"x" * 20_000,  # too long to keep as text
        )
        # Future events: the first few come before the stream has a clock, so the wall clock bounds them.
        for ahead in (HOUR_MS, 23 * HOUR_MS, 24 * HOUR_MS, 24 * HOUR_MS + 1, 25 * HOUR_MS, 10_000 * HOUR_MS):
            yield _dumps({**event, "event_time": event["event_time"] + ahead}).encode()
    yield b"[" + b"1," * 800_000 + b"1]"  # 1.6 MB: the dead letter keeps a prefix and a SHA-256


def _python_answers(messages: list[tuple[int, int, int, bytes | None]]) -> list[str]:
    now = {"ms": 0}
    validator = StreamValidator(now_ms=lambda: now["ms"])
    clock = PartitionClock(PARTITIONS, IDLE_MS)
    out = []
    for partition, now_ms, written_ms, raw in messages:
        now["ms"] = now_ms
        result = validator.check(raw)
        if isinstance(result, AdEvent):
            c = clock.observe(partition, result.event_time, now_ms, written_ms)
            out.append("event " + json.dumps({**result.as_dict(), "clock": c}, separators=(",", ":")))
        else:
            clock.observe(partition, None, now_ms, written_ms)
            out.append("dlq " + envelope(raw, result, validator.clock_ms))
    return out


def _same(jvm: str, python: str) -> bool:
    if jvm == python:
        return True
    if not (jvm.startswith("dlq ") and python.startswith("dlq ")):
        return False
    j, p = json.loads(jvm[4:]), json.loads(python[4:])
    if p["code"] != NOT_JSON or j["code"] != NOT_JSON:
        return False
    # The reader's own error message (Python's json or PyJsonReader) is free text after the prefix.
    prefix = "not JSON: " if p["reason"].startswith("not JSON: ") else p["reason"]
    return j["reason"].startswith(prefix) and {**j, "reason": ""} == {**p, "reason": ""}


def test_jvm_validation_equals_python_validation() -> None:
    rng = random.Random(11)
    corpus = list(_corpus(rng))
    messages: list[tuple[int, int, int, bytes | None]] = []
    now = START + 500  # wall clock: the generated events are from the last half-second on
    written = START  # the records' Kafka timestamps
    for i, raw in enumerate(corpus):
        # Mostly both partitions; a stretch where partition 1 is silent long enough to go idle (with a
        # stall in it, which counts a quarter of the idle period, so the time written goes idle first),
        # after one where only processing time passes (partition 1 is not idle in it).
        partition = 0 if 3_000 <= i < 3_300 or 4_000 <= i < 4_600 else rng.randrange(PARTITIONS)
        now += 100 if 3_000 <= i < 3_300 or 4_000 <= i < 4_600 else rng.randrange(3)
        now += 12_000 if i == 4_020 else 0
        written += 12_000 if i == 4_020 else 0  # and the job read on into later writes of partition 0
        written += 100 if 4_000 <= i < 4_600 else rng.randrange(3)
        messages.append((partition, now, written, raw))
    lines = "".join(f"{p} {t} {w} {'-' if raw is None else base64.b64encode(raw).decode()}\n"
                    for p, t, w, raw in messages)
    jvm = run_main("CheckEvents", [str(PARTITIONS), str(IDLE_MS)], lines)
    python = _python_answers(messages)
    assert len(jvm) == len(python) == len(messages)

    codes: dict[str, int] = {}
    for line in python:
        key = "event" if line.startswith("event ") else json.loads(line[4:])["code"]
        codes[key] = codes.get(key, 0) + 1
    # The corpus reaches every answer there is (else it proves less than it seems to).
    assert set(codes) >= {"event", "not_json", "not_object", "missing_field", "wrong_type", "empty_event_id",
                          "unknown_event_type", "negative_value", "out_of_range", "future_event_time"}, codes
    assert codes["event"] > 2_000, codes

    differences = [i for i, (j, p) in enumerate(zip(jvm, python)) if not _same(j, p)]
    shown = "\n".join(f"message {i} {messages[i][2]!r:.300}\n  jvm    {jvm[i]:.400}\n  python {python[i]:.400}"
                      for i in differences[:8])
    assert not differences, f"{len(differences)} of {len(messages)} answers differ:\n{shown}"
