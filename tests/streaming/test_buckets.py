"""The JVM engine's bucket store (jars/aggregator Buckets.java: parallel arrays, oldest first)
against a plain sorted map, step for step, on random scripts: buckets created in and out of order,
counts and sums added, the oldest dropped as the clock moves, copies taken (and left untouched when
the original changes after)."""
from __future__ import annotations

import random

import pytest

from tests.streaming.jvm import run_main


def _dump(model: dict[int, list]) -> str:
    return "".join(f"{leave}:{count}:{'-' if total is None else total} "
                   for leave, (count, total) in sorted(model.items()))


def _script(seed: int, steps: int = 3000) -> tuple[list[str], list[str], int]:
    """(steps for BucketsTrace, the dump expected after each, how many buckets were created before
    a newer one that was already held), from a dict and sorting alone."""
    rng = random.Random(seed)
    model: dict[int, list] = {}
    clock = 0
    script, expected = [], []
    out_of_order = 0

    def add(leave: int, slot: int, value: int) -> None:
        cell = model.setdefault(leave, [0, None])
        if slot == 0:
            cell[0] += 1
        else:
            cell[1] = (cell[1] or 0) + value

    for _ in range(steps):
        roll = rng.random()
        if roll < 0.70:
            # mostly the newest minutes, some older ones (out of order) and some far ahead
            leave = clock + rng.choice([rng.randint(1, 4), rng.randint(1, 60), rng.randint(1, 600)])
            slot, value = rng.randint(0, 1), rng.randint(-50, 1000)
            op = "fork" if roll < 0.05 else "add"
            out_of_order += leave not in model and any(k > leave for k in model)
            script.append(f"{op} {leave} {slot} {value}")
            expected.append(_dump(model) if op == "fork" else None)
            add(leave, slot, value)
            if op == "add":
                expected[-1] = _dump(model)
        elif roll < 0.95:
            clock += rng.randint(0, 30)
            script.append(f"drop {clock}")
            model = {k: v for k, v in model.items() if k > clock}
            expected.append(_dump(model))
        else:
            script.append("copy")
            expected.append(_dump(model))
    return script, expected, out_of_order


# Without a limit the arrays double; with one of 6 held (room for 10) the script, which holds up to
# hundreds at once, runs through the limited growth, the moves to the front and the doubling past it.
@pytest.mark.parametrize("seed, held", [(1, None), (2, None), (3, None), (4, 6), (5, 6), (6, 61)])
def test_buckets_match_a_sorted_map(seed: int, held: int | None) -> None:
    script, expected, out_of_order = _script(seed)
    assert out_of_order > 100, "the script must create buckets out of order"
    got = run_main("BucketsTrace", [] if held is None else [str(held)], "\n".join(script) + "\n")
    assert len(got) == len(expected)
    for step, (line, want, have) in enumerate(zip(script, expected, got)):
        assert have == want, f"step {step} ({line})"


def _minute_stream(minutes: int, window: int) -> tuple[list[str], list[str]]:
    """A key with an event every minute of a `window`-minute window by the minute: each adds to the
    bucket leaving `window` minutes on, and the clock drops what has left."""
    model: dict[int, list] = {}
    script, expected = [], []
    for clock in range(minutes):
        leave = clock + window
        model.setdefault(leave, [0, None])[0] += 1
        script.append(f"add {leave} 0 0")
        expected.append(_dump(model))
        model = {k: v for k, v in model.items() if k > clock}
        script.append(f"drop {clock}")
        expected.append(_dump(model))
    return script, expected


def test_a_window_s_arrays_stop_growing_at_what_it_can_hold() -> None:
    """A 1h window by the minute holds 61 buckets at most: its arrays had room for 128 by doubling,
    twice the heap for every key; with the limit they have room for 61 and a quarter more."""
    script, expected = _minute_stream(minutes=300, window=60)
    limited = run_main("BucketsTrace", ["61"], "\n".join(script + ["capacity"]) + "\n")
    doubling = run_main("BucketsTrace", [], "\n".join(script + ["capacity"]) + "\n")
    assert limited[:-1] == expected and doubling[:-1] == expected
    assert int(doubling[-1]) == 128
    assert 61 <= int(limited[-1]) <= 61 + 61 // 4
