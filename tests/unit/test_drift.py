"""PSI and KS against values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tessera.drift import (PSI_EPSILON, as_array, bin_shares, compare, ks_statistic, psi, quantile_edges)


def test_psi_of_two_bins() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi_is_zero_for_the_same_shares_and_symmetric() -> None:
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    assert psi(shares, shares) == 0.0
    a, b = np.array([0.2, 0.8]), np.array([0.6, 0.4])
    assert psi(a, b) == pytest.approx(psi(b, a))


def test_an_empty_bin_counts_as_epsilon() -> None:
    # (0.9 - 1) ln(0.9) + (0.1 - 1e-4) ln(0.1 / 1e-4)
    expected = -0.1 * math.log(0.9) + (0.1 - PSI_EPSILON) * math.log(0.1 / PSI_EPSILON)
    assert psi(np.array([1.0, 0.0]), np.array([0.9, 0.1])) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.700621, abs=1e-6)


def test_decile_edges_of_0_to_99() -> None:
    reference = np.arange(100, dtype=np.float64)
    assert quantile_edges(reference).tolist() == [9, 19, 29, 39, 49, 59, 69, 79, 89]
    assert bin_shares(reference, quantile_edges(reference)).tolist() == pytest.approx([0.1] * 10 + [0.0])


def test_mostly_zero_feature_gets_one_bin_for_the_zeros() -> None:
    reference = np.array([0] * 7 + [1, 2, 3], dtype=np.float64)
    edges = quantile_edges(reference)
    assert edges.tolist() == [0, 1, 2]
    # (-inf, 0], (0, 1], (1, 2], (2, inf), null
    assert bin_shares(reference, edges).tolist() == pytest.approx([0.7, 0.1, 0.1, 0.1, 0.0])
    # A new maximum falls into the open top bin rather than an empty one of its own.
    assert bin_shares(np.array([0, 50.0]), edges).tolist() == pytest.approx([0.5, 0, 0, 0.5, 0])


def test_bins_are_right_closed_and_nulls_have_their_own() -> None:
    edges = np.array([1.0, 2.0])
    values = as_array([1, 1.5, 2, 2.5, None, 0])
    # (-inf, 1]: 1, 0   (1, 2]: 1.5, 2   (2, inf): 2.5   null: 1
    assert bin_shares(values, edges).tolist() == pytest.approx([2 / 6, 2 / 6, 1 / 6, 1 / 6])


def test_psi_of_a_shifted_uniform_by_hand() -> None:
    reference = np.arange(100, dtype=np.float64)
    online = np.arange(50, 150, dtype=np.float64)
    # Edges 9, 19, ..., 89. Online: the five bins up to 49 are empty, (49,59] .. (79,89] hold 0.1 each
    # as in the reference, (89, inf) holds 90..149, 0.6; no nulls on either side.
    empty = (PSI_EPSILON - 0.1) * math.log(PSI_EPSILON / 0.1)
    expected = 5 * empty + (0.6 - 0.1) * math.log(0.6 / 0.1)
    assert expected == pytest.approx(4.346304, abs=1e-6)
    drift = compare("x", reference, online, threshold=0.2)
    assert drift.psi == pytest.approx(expected, abs=1e-9)
    assert drift.flagged and drift.status == "drift"
    # KS: at x = 49 the reference's CDF is 0.5 and the online one 0.
    assert drift.ks == pytest.approx(0.5)


def test_ks_by_hand() -> None:
    assert ks_statistic(as_array([1, 2, 3, 4]), as_array([3, 4, 5, 6])) == pytest.approx(0.5)
    assert ks_statistic(as_array([0, 0, 1]), as_array([0, 1, 1])) == pytest.approx(1 / 3)  # ties exact
    assert ks_statistic(as_array([1, 2]), as_array([3, 4])) == 1.0
    assert ks_statistic(as_array([1, 2, None]), as_array([1, 2])) == 0.0  # nulls left out
    assert ks_statistic(as_array([None]), as_array([1])) is None


def test_null_rate_shift_is_drift_for_psi_not_for_ks() -> None:
    rng = np.random.default_rng(1)
    reference = rng.random(1000)
    online = rng.random(1000)
    online[:400] = np.nan  # 40% now null, none before
    drift = compare("ctr", reference, online, threshold=0.2)
    assert drift.online_null == pytest.approx(0.4) and drift.reference_null == 0.0
    assert drift.flagged  # the null bin: (0.4 - 1e-4) ln(0.4 / 1e-4) alone is about 3.3
    assert drift.ks is not None and drift.ks < 0.1


def test_same_distribution_is_not_flagged_and_small_samples_are_not_judged() -> None:
    rng = np.random.default_rng(2)
    same = compare("spend", rng.lognormal(0, 1, 5000), rng.lognormal(0, 1, 2000), threshold=0.2)
    assert same.psi is not None and same.psi < 0.05 and not same.flagged and same.status == "ok"
    few = compare("spend", rng.random(1000), rng.random(20) + 5, threshold=0.2)
    assert few.psi is None and few.ks is None and not few.flagged and few.status == "insufficient"
    assert few.as_dict()["psi"] is None and few.online_n == 20
