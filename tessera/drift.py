"""Distribution drift of one feature: population stability index and Kolmogorov-Smirnov statistic.

Both compare a reference sample (values of the feature over a window of the offline store) with a
recent one (values sampled from the online store). Nulls (a ratio with nothing to divide by) are
values too: PSI gives them a bin of their own, so a change in how often a feature is null is drift;
KS compares the non-null values only.

PSI = sum over bins of (a - e) * ln(a / e), e and a the reference's and the recent sample's share of
the bin. Bins are the reference's deciles, right-closed, so a feature that is mostly 0 gets one bin
for the zeros rather than several empty ones. An empty bin's share is taken as PSI_EPSILON (the usual
convention; a share of 0 would make the logarithm infinite). Conventional reading: below 0.1 stable,
0.1 to 0.2 a moderate shift, above 0.2 a significant one (the default threshold of `tessera drift`).

KS = the largest distance between the two empirical cumulative distributions, from 0 (the same) to 1
(no overlap); ties are handled exactly, so it is meaningful for counts too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
# Below this many values on either side PSI is mostly sampling noise (10 bins of a few values each).
MIN_SAMPLE = 100


def as_array(values: object) -> np.ndarray:
    """Feature values (ints, floats, None) -> float64 with NaN for null (numpy maps None to NaN)."""
    return np.asarray(values, dtype=np.float64)


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Inner edges of `bins` quantile bins of the reference's non-null values, repeats merged.

    Edges are values the reference actually takes (inverted CDF), so with right-closed bins every
    edge value falls in the bin it closes: for a feature that is 0 for 70% of keys, (-inf, 0] is
    one bin holding all of them.
    """
    present = reference[~np.isnan(reference)]
    if present.size == 0:
        return np.array([], dtype=np.float64)
    # k / bins, not linspace: 0.3 must be the same float as 30 / 100, or ties at an edge move bins.
    inner = np.quantile(present, np.arange(1, bins) / bins, method="inverted_cdf")
    edges = np.unique(inner)
    # A top edge equal to the maximum would leave the last bin (max, inf) empty in the reference.
    return edges[edges < present.max()] if edges.size else edges


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of the bins (-inf, e1], (e1, e2], ..., (ek, inf) and, last, of nulls."""
    if values.size == 0:
        return np.zeros(edges.size + 2)
    null = np.isnan(values)
    index = np.searchsorted(edges, values[~null], side="left")  # edges[i-1] < v <= edges[i]
    counts = np.bincount(index, minlength=edges.size + 1).astype(np.float64)
    return np.append(counts, null.sum()) / values.size


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two vectors of bin shares (reference first)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def ks_statistic(reference: np.ndarray, recent: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic of the non-null values; None when a side has none."""
    a = np.sort(reference[~np.isnan(reference)])
    b = np.sort(recent[~np.isnan(recent)])
    if a.size == 0 or b.size == 0:
        return None
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float | None          # None: too few values to say
    ks: float | None
    reference_n: int
    online_n: int
    reference_null: float      # share of nulls
    online_null: float
    reference_mean: float | None
    online_mean: float | None
    edges: list[float]         # inner bin edges; the shares below have len(edges) + 2 entries (last: null)
    reference_shares: list[float]
    online_shares: list[float]
    flagged: bool

    @property
    def status(self) -> str:
        if self.psi is None:
            return "insufficient"
        return "drift" if self.flagged else "ok"

    def as_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "status": self.status, "flagged": self.flagged,
                "psi": _round(self.psi), "ks": _round(self.ks),
                "reference_n": self.reference_n, "online_n": self.online_n,
                "reference_null": _round(self.reference_null), "online_null": _round(self.online_null),
                "reference_mean": _round(self.reference_mean), "online_mean": _round(self.online_mean),
                "bins": {"edges": [_round(e) for e in self.edges],
                         "reference": [_round(s) for s in self.reference_shares],
                         "online": [_round(s) for s in self.online_shares]}}


def _round(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def _mean(values: np.ndarray) -> float | None:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else None


def compare(feature: str, reference: np.ndarray, online: np.ndarray, threshold: float,
            bins: int = DEFAULT_BINS, min_sample: int = MIN_SAMPLE) -> FeatureDrift:
    """PSI and KS of one feature; flagged when PSI is above the threshold and both samples are big enough."""
    reference, online = as_array(reference), as_array(online)
    edges = quantile_edges(reference, bins)
    expected, actual = bin_shares(reference, edges), bin_shares(online, edges)
    enough = reference.size >= min_sample and online.size >= min_sample
    value = psi(expected, actual) if enough else None
    return FeatureDrift(
        feature=feature, psi=value, ks=ks_statistic(reference, online) if enough else None,
        reference_n=int(reference.size), online_n=int(online.size),
        reference_null=float(np.isnan(reference).mean()) if reference.size else 0.0,
        online_null=float(np.isnan(online).mean()) if online.size else 0.0,
        reference_mean=_mean(reference), online_mean=_mean(online),
        edges=[float(e) for e in edges], reference_shares=[float(s) for s in expected],
        online_shares=[float(s) for s in actual], flagged=value is not None and value > threshold)
