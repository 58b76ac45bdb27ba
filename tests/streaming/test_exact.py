"""The JVM engine's exact sums (jars/aggregator Exact.java: a long mantissa while it fits, a
BigInteger beyond) against Python's Fraction, rounded once to the nearest double, on random
scripts: values of every magnitude (subnormal to 1e300, both signs, longs), sums that outgrow a long
and shrink back, and every value taken away again, which must leave exactly 0."""
from __future__ import annotations

import random
import struct
from fractions import Fraction

import pytest

from tests.streaming.jvm import run_main


def _bits(x: float) -> str:
    return format(struct.unpack("<q", struct.pack("<d", x))[0] & 0xFFFFFFFFFFFFFFFF, "x")


def _value(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.4:
        return round(rng.uniform(0, 50), rng.randint(0, 6))  # costs as the generator makes them
    if kind < 0.7:
        return rng.choice([-1, 1]) * rng.random() * 10.0 ** rng.randint(-30, 30)
    if kind < 0.9:
        return rng.choice([-1, 1]) * rng.random() * 10.0 ** rng.randint(-320, 300)  # subnormal to huge
    return float(rng.randint(-2**53, 2**53))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_exact_sums_match_fractions(seed: int) -> None:
    rng = random.Random(seed)
    script: list[str] = []
    expected: list[str] = []
    total = Fraction(0)
    added: list[float] = []
    for _ in range(4000):
        roll = rng.random()
        if roll < 0.55 or not added:
            x = _value(rng)
            script.append(f"add {x!r}")
            added.append(x)
            total += Fraction(x)
        elif roll < 0.93:
            x = added.pop(rng.randrange(len(added)))
            script.append(f"sub {x!r}")
            total -= Fraction(x)
        elif roll < 0.97:
            # Two large longs of one sign (their sum outgrows a long), then both taken away again.
            n = rng.choice([-1, 1]) * rng.randint(2**62, 2**63 - 1)
            for v in (n, n, -n, -n):
                script.append(f"addl {v}")
                total += v
                expected.append(_bits(float(total)))
            continue
        else:
            script.append("snap")
        expected.append(_bits(float(total)))
    for x in added:  # everything taken away: exactly 0
        script.append(f"sub {x!r}")
        total -= Fraction(x)
        expected.append(_bits(float(total)))
    assert total == 0 and expected[-1] == "0"
    got = run_main("ExactTrace", [], "\n".join(script) + "\n")
    assert len(got) == len(expected)
    for step, (line, want, have) in enumerate(zip(script, expected, got)):
        assert have == want, f"step {step} ({line}): {have} != {want}"


@pytest.mark.parametrize("steps", [
    ["addl 4611686018427387909", "addl 4611686018427387911", "addl -4611686018427387909", "addl -4611686018427387911"],
    ["addl -9223372036854775807", "addl -9223372036854775807", "addl 9223372036854775807", "add 0.5", "snap",
     "addl 9223372036854775807", "sub 0.5"],
    ["add 1e300", "add 1e-300", "sub 1e300", "add 3.0", "sub 1e-300", "sub 3.0"],
    ["add 5e-324", "add 5e-324", "add 1.0", "sub 1.0", "sub 5e-324"],
    ["add 4503599627370497.0", "add 0.25", "add 0.25", "sub 0.25", "sub 0.25"],
], ids=["longs-overflow", "longs-overflow-negative", "far-magnitudes", "subnormal", "53-bits"])
def test_exact_edges(steps: list[str]) -> None:
    """A fresh sum through the places where it leaves or re-enters the long fast path."""
    total, expected = Fraction(0), []
    for line in steps:
        op, _, arg = line.partition(" ")
        if op == "addl":
            total += int(arg)
        elif op in ("add", "sub"):
            total += Fraction(float(arg)) * (1 if op == "add" else -1)
        expected.append(_bits(float(total)))
    assert run_main("ExactTrace", [], "\n".join(steps) + "\n") == expected
