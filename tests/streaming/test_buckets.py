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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_buckets_match_a_sorted_map(seed: int) -> None:
    script, expected, out_of_order = _script(seed)
    assert out_of_order > 100, "the script must create buckets out of order"
    got = run_main("BucketsTrace", [], "\n".join(script) + "\n")
    assert len(got) == len(expected)
    for step, (line, want, have) in enumerate(zip(script, expected, got)):
        assert have == want, f"step {step} ({line})"
