"""The soak's event pump: live `ad_events` at a fixed rate, stamped with the time they are sent.

Generating an event costs about 15 us (tessera/generator.py), which at 5,000 events/s would be a
sixth of a core taken from the services under test. So the pump generates a plan of at most
`plan_s` seconds before it starts, and sends it again and again for as long as the soak lasts: each
pass moves every event_time on by the plan's length and gives every event_id a suffix of its pass,
so no pass repeats an id of another (the plan's own duplicates stay duplicates of each other) and
the keys, the mix of types and the out-of-order events are those of the plan. Without the replay
an hour's soak planned 18 M events first (9 minutes and 12 GB); live generation fell behind the
clock at 4,100 events/s.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any, Iterator, NamedTuple

_ID_FIELD = b'"event_id":"'
_TIME_FIELD = b'"event_time":'


class PlannedEvent(NamedTuple):
    """An encoded event cut where a pass changes it: `id_head` ends inside its event_id's quotes,
    `mid` runs from there up to its event_time's digits."""
    key: bytes | None
    id_head: bytes
    mid: bytes
    event_time: int
    tail: bytes


def plan_event(key: bytes | None, value: bytes) -> PlannedEvent:
    """Cuts an encoded valid event (the pump sends no other kind: each has both fields, and the
    generator's ids hold no quote or escape)."""
    id_end = value.index(b'"', value.index(_ID_FIELD) + len(_ID_FIELD))
    time_start = value.index(_TIME_FIELD) + len(_TIME_FIELD)
    time_end = value.index(b",", time_start)
    if time_start < id_end:
        raise ValueError("the event_time comes before the event_id's end; the pump expects the generator's field order")
    return PlannedEvent(key, value[:id_end], value[id_end:time_start], int(value[time_start:time_end]), value[time_end:])


def pass_suffix(n: int) -> bytes:
    """The first pass keeps the generator's ids; pass n > 0 adds ".r<n>"."""
    return b"" if n == 0 else b".r%d" % n


def encode(event: PlannedEvent, suffix: bytes, shift_ms: int) -> bytes:
    return event.id_head + suffix + event.mid + str(event.event_time + shift_ms).encode() + event.tail


def replay(plan: list[PlannedEvent], span_ms: int) -> Iterator[tuple[PlannedEvent, bytes, int]]:
    """(event, id suffix, time shift) of the plan's passes without end: pass n moves on by n * span_ms."""
    n = 0
    while True:
        suffix, shift = pass_suffix(n), n * span_ms
        for event in plan:
            yield event, suffix, shift
        n += 1


def _pump(settings, rate: float, plan_s: float, produced, ready, stop_flag) -> None:  # type: ignore[no-untyped-def]
    """Sends at `rate` until `stop_flag` is set (in a process of its own: in the load generator's
    process it would take the GIL from it, and the API's latency would look worse)."""
    from tessera.generator import EventGenerator, GeneratorConfig
    from tessera.kafka_io import RatePacer, make_producer

    count = max(1, int(rate * plan_s))
    generator = EventGenerator(GeneratorConfig(seed=9, duplicates=0.01, out_of_order=0.02),
                               int(time.time() * 1000), rate_per_s=rate)
    plan = [plan_event(m.key, m.value) for batch in generator.batches(count) for m in batch]
    # The pacer sends the plan in count / rate seconds, so that is how far a pass moves its times.
    span_ms = int(round(1000 * count / rate))
    producer = make_producer(settings, **{"linger.ms": "20"})
    shift = int(time.time() * 1000) - generator.start_ms
    ready.set()
    pacer = RatePacer(rate)
    sent = paced = 0
    parent = os.getppid()
    # A soak killed outright leaves no one to set the flag: stop with the parent rather than go on
    # producing into the next run's broker on the same port.
    for event, suffix, pass_shift in replay(plan, span_ms):
        if stop_flag.is_set() or (sent % 1000 == 0 and os.getppid() != parent):
            break
        behind = time.monotonic() - (pacer.started + paced / rate)
        if behind > 1.0:
            # More than a second behind (the machine is saturated): drop the deficit rather
            # than send it in a burst, which would measure a load nobody asked for, and move the
            # times on by as much, so that an event's time stays the time it is sent (else every
            # drop would read as lost freshness downstream).
            pacer, paced = RatePacer(rate), 0
            shift += int(behind * 1000)
        pacer(paced)
        paced += 1
        key, value = event.key, encode(event, suffix, shift + pass_shift)
        while True:
            try:
                producer.produce(settings.kafka.topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        sent += 1
        if sent % 500 == 0:
            produced.value = sent
            producer.poll(0)
    producer.flush(30)
    produced.value = sent


class EventPump:
    """`_pump` in a child process, with its count of produced events."""

    def __init__(self, settings: Any, rate: float, plan_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._produced = context.Value("q", 0)
        self.ready = context.Event()
        self.stop_flag = context.Event()
        self._process = context.Process(target=_pump, daemon=True, name="event-pump",
                                        args=(settings, rate, plan_s, self._produced, self.ready, self.stop_flag))

    @property
    def produced(self) -> int:
        return int(self._produced.value)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> None:
        """Starts sending once the plan is generated (about 15 us an event)."""
        self._process.start()
        while not self.ready.wait(1.0):
            if not self._process.is_alive():
                raise RuntimeError("the event pump exited before it was ready")

    def join(self, timeout: float) -> None:
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
