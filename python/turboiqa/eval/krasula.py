"""Krasula, Fliegel, Le Callet & Klíma, "On the accuracy of objective image and video quality models: new
methodology for performance evaluation", QoMEX 2016 (SPECS §16.3).

Step 1 decides for every stimulus pair whether the subjects saw a significant difference; the metric is then
judged as a classifier: can its score difference tell *different* from *similar* pairs (AUC_DS), and within the
different pairs, the *better* from the *worse* stimulus (AUC_BW, and the percentage of correct classification
CC_0)? AUCs and their covariance use DeLong's estimator with midranks (Sun & Xu 2014's fast algorithm, as in the
VMAF port of the authors' MATLAB). Scores must be oriented "higher = better quality" for both the subjective and
the objective side (negate DMOS and distances first).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def _pair_indices(n: int, max_pairs: int | None, seed: int):
    """Unordered pairs i < j (SPECS §16.3: equivalent to the port's n² ordered pairs, mirrored); a seeded random
    subset of ``max_pairs`` of them when there are more (KADID-10k has 51 M)."""
    total = n * (n - 1) // 2
    if max_pairs is None or total <= max_pairs:
        return np.triu_indices(n, k=1)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=max_pairs)
    j = rng.integers(0, n - 1, size=max_pairs)
    j = j + (j >= i)  # uniform over j ≠ i
    return np.minimum(i, j), np.maximum(i, j)


def pairwise_significance(mos, std=None, n_observers=None, raw_scores=None, z_threshold: float = 2.0,
                          max_pairs: int | None = 5_000_000, seed: int = 0):
    """Step 1. Returns ``(i, j, signif)`` with signif ∈ {+1 (i significantly better than j), −1, 0} per pair.

    * ``raw_scores``: a list of per-stimulus arrays of individual ratings — mean and sample variance (ddof=1) are
      taken from them (VMAF port).
    * otherwise ``mos`` and ``std``: ``std`` is the standard error of each MOS, or the observers' standard
      deviation when ``n_observers`` (scalar or per stimulus) is given (then SE = std/√n).
    z = (μ_i − μ_j)/√(SE_i² + SE_j²); |z| > ``z_threshold`` (2 ≈ 95 % two-sided) is significant.
    """
    if raw_scores is not None:
        mean = np.array([np.mean(r) for r in raw_scores], dtype=np.float64)
        var = np.array([np.var(r, ddof=1) for r in raw_scores], dtype=np.float64)
        n = np.array([len(r) for r in raw_scores], dtype=np.float64)
        var = np.where(var == 0, 1e-8, var)  # the port's guard against identical ratings
        se2 = var / n
    else:
        if std is None:
            raise ValueError("pairwise_significance needs std (or raw_scores) to judge significance")
        mean = np.asarray(mos, dtype=np.float64).ravel()
        sd = np.broadcast_to(np.asarray(std, dtype=np.float64), mean.shape)
        if n_observers is not None:
            sd = sd / np.sqrt(np.broadcast_to(np.asarray(n_observers, dtype=np.float64), mean.shape))
        se2 = np.where(sd == 0, 1e-8, sd ** 2)
    if mean.size < 2:
        raise ValueError("pairwise_significance needs at least two stimuli")
    i, j = _pair_indices(mean.size, max_pairs, seed)
    z = (mean[i] - mean[j]) / np.sqrt(se2[i] + se2[j])
    signif = np.where(z > z_threshold, 1, np.where(z < -z_threshold, -1, 0)).astype(np.int8)
    return i, j, signif


def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def delong(positives, negatives):
    """DeLong AUC and covariance for k classifiers scored on the same samples.

    ``positives``: (k, m) scores of the positive samples, ``negatives``: (k, n). Returns ``(auc (k,), cov (k, k))``;
    AUC = P(pos > neg) + ½ P(pos = neg) (midranks, Sun & Xu 2014)."""
    pos = np.atleast_2d(np.asarray(positives, dtype=np.float64))
    neg = np.atleast_2d(np.asarray(negatives, dtype=np.float64))
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives, got {m} and {n}")
    k = pos.shape[0]
    tx = np.empty((k, m))
    ty = np.empty((k, n))
    tz = np.empty((k, m + n))
    for r in range(k):
        tx[r] = _midrank(pos[r])
        ty[r] = _midrank(neg[r])
        tz[r] = _midrank(np.concatenate([pos[r], neg[r]]))
    auc = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v01 = (tz[:, :m] - tx) / n          # structural components of the positives
    v10 = 1.0 - (tz[:, m:] - ty) / m    # ... and of the negatives
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return auc, cov


@dataclass
class KrasulaResult:
    auc_ds: float          # different vs similar
    auc_bw: float          # better vs worse
    cc0: float             # percentage (fraction) of correct classification
    threshold: float       # 95th percentile of |ΔO| over similar pairs
    n_different: int
    n_similar: int
    var_ds: float
    var_bw: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _split(objective, i, j, signif):
    o = np.asarray(objective, dtype=np.float64).ravel()
    d = o[i] - o[j]
    diff, sim = signif != 0, signif == 0
    oriented = d[diff] * signif[diff]          # ΔO of the better stimulus minus the worse one
    return np.abs(d[diff]), np.abs(d[sim]), oriented


def _analyse(objectives, significance):
    """One DeLong pass over all metrics (k × pairs): per-metric results and the AUC covariance matrices."""
    i, j, signif = significance
    parts = [_split(o, i, j, signif) for o in objectives]
    pos = np.stack([p for p, _, _ in parts])
    neg = np.stack([n for _, n, _ in parts])
    better = np.stack([b for _, _, b in parts])
    if pos.shape[1] < 2 or neg.shape[1] < 2:
        raise ValueError(f"need at least 2 significantly different and 2 similar pairs, got {pos.shape[1]} and "
                         f"{neg.shape[1]}")
    auc_ds, cov_ds = delong(pos, neg)
    auc_bw, cov_bw = delong(better, -better)
    results = [KrasulaResult(auc_ds=float(auc_ds[k]), auc_bw=float(auc_bw[k]), cc0=float(np.mean(better[k] > 0)),
                             threshold=float(np.percentile(neg[k], 95)), n_different=int(pos.shape[1]),
                             n_similar=int(neg.shape[1]), var_ds=float(cov_ds[k, k]), var_bw=float(cov_bw[k, k]))
               for k in range(len(parts))]
    return results, (auc_ds, cov_ds), (auc_bw, cov_bw)


def krasula(objective, significance) -> KrasulaResult:
    """Analyses A and B of Krasula et al. for one metric; ``significance`` from :func:`pairwise_significance`."""
    return _analyse([objective], significance)[0][0]


def _z_to_p(z: float) -> float:
    return float(2.0 * stats.norm.sf(abs(z)))


def _auc_test(auc, cov, a: int, b: int) -> dict:
    var = cov[a, a] + cov[b, b] - 2 * cov[a, b]
    z = abs(auc[a] - auc[b]) / np.sqrt(var) if var > 0 else (0.0 if auc[a] == auc[b] else np.inf)
    return {"a": float(auc[a]), "b": float(auc[b]), "z": float(z), "p": _z_to_p(z)}


def _cc0_test(p1: float, p2: float, count: int) -> dict:
    pbar = (p1 + p2) / 2
    denom = np.sqrt(2 * pbar * (1 - pbar) / count)
    z = abs(p1 - p2) / denom if denom > 0 else (0.0 if p1 == p2 else np.inf)
    return {"a": p1, "b": p2, "z": float(z), "p": _z_to_p(z)}


def krasula_all(objectives: dict, significance):
    """Krasula analyses of several metrics on the same pairs plus every pairwise test (one DeLong pass):
    ``({name: KrasulaResult}, {"a vs b": {auc_ds, auc_bw, cc0: {a, b, z, p}}})``."""
    names = list(objectives)
    results, (auc_ds, cov_ds), (auc_bw, cov_bw) = _analyse([objectives[n] for n in names], significance)
    tests = {}
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            tests[f"{names[a]} vs {names[b]}"] = {
                "auc_ds": _auc_test(auc_ds, cov_ds, a, b), "auc_bw": _auc_test(auc_bw, cov_bw, a, b),
                "cc0": _cc0_test(results[a].cc0, results[b].cc0, results[a].n_different)}
    return dict(zip(names, results)), tests


def compare(objective_a, objective_b, significance) -> dict:
    """Significance of the difference between two metrics on the same pairs: DeLong z-test for AUC_DS and AUC_BW
    (correlated ROC curves), binomial z-test for CC_0 (two-sided p-values)."""
    return krasula_all({"a": objective_a, "b": objective_b}, significance)[1]["a vs b"]
