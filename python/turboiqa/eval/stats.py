"""Correlation criteria of SPECS §16.1–16.2: SROCC, KROCC, PLCC and RMSE after a logistic mapping, the outlier
ratio, bootstrap confidence intervals and the per-distortion breakdown.

Ranks, correlations, least squares and the bootstrap are scipy's (``spearmanr``, ``kendalltau`` (τ-b),
``pearsonr``, ``curve_fit``, ``bootstrap``); this module only chooses start values, bounds and restarts.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats


def _as_pair(scores, mos, what: str = "scores"):
    x = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(mos, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{what} and mos must have the same length, got {x.size} and {y.size}")
    if x.size < 3:
        raise ValueError(f"{what}: need at least 3 (score, mos) pairs, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{what} and mos must be finite (drop failed pairs first)")
    return x, y


def srocc(scores, mos) -> float:
    """Spearman rank-order correlation (ties → average ranks)."""
    x, y = _as_pair(scores, mos)
    return float(stats.spearmanr(x, y).statistic)


def krocc(scores, mos) -> float:
    """Kendall τ-b (tie-corrected), as scipy ``kendalltau`` and MATLAB ``corr(..., 'Kendall')``."""
    x, y = _as_pair(scores, mos)
    return float(stats.kendalltau(x, y).statistic)


def logistic5(x, b1, b2, b3, b4, b5):
    """Sheikh, Sabir & Bovik 2006 (VQEG): β1·(½ − 1/(1 + exp(β2·(x − β3)))) + β4·x + β5."""
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -500, 500)))) + b4 * x + b5


def logistic4(x, b1, b2, b3, b4):
    """VQEG FR-TV Phase II: (β1 − β2)/(1 + exp(−(x − β3)/|β4|)) + β2."""
    return (b1 - b2) / (1.0 + np.exp(np.clip(-(x - b3) / np.abs(b4), -500, 500))) + b2


@dataclass
class LogisticFit:
    """A fitted monotonic mapping score → MOS; ``params`` are in the units of the raw scores."""

    kind: str
    params: np.ndarray
    sse: float
    converged: bool
    message: str = ""

    def __call__(self, scores) -> np.ndarray:
        x = np.asarray(scores, dtype=np.float64)
        if self.kind == "5":
            return logistic5(x, *self.params)
        if self.kind == "4":
            return logistic4(x, *self.params)
        return self.params[0] * x + self.params[1]  # linear fallback


def _fit_starts(kind: str, z, y, sign: float):
    """Start values in standardised-score space (z = (x − mean)/std), SPECS §16.2 'more robust start'."""
    lo, hi, mean = y.min(), y.max(), y.mean()
    span = max(hi - lo, 1e-12)
    if kind == "5":
        # β1 ≥ 0 removes the (β1, β2) ↔ (−β1, −β2) symmetry, so the logistic's slope has the sign of β2; giving
        # β4 the same sign keeps the mapping monotonic (an unconstrained β4 can bend it back on small sets).
        starts = [[span, sign * s, c, 0.0, mean] for s in (1.0, 3.0, 0.3) for c in (0.0, -1.0, 1.0)]
        slope_lo, slope_hi = (0.0, 100.0) if sign > 0 else (-100.0, 0.0)
        linear_lo, linear_hi = (0.0, 10.0 * span) if sign > 0 else (-10.0 * span, 0.0)
        lower = [0.0, slope_lo, z.min() - 1.0, linear_lo, lo - 10.0 * span]
        upper = [10.0 * span, slope_hi, z.max() + 1.0, linear_hi, hi + 10.0 * span]
    else:
        top, bottom = (hi, lo) if sign >= 0 else (lo, hi)
        starts = [[top, bottom, c, w] for w in (0.25, 1.0, 0.1) for c in (0.0, -1.0, 1.0)]
        lower = [lo - span, lo - span, z.min() - 1.0, 1e-3]
        upper = [hi + span, hi + span, z.max() + 1.0, 100.0]
    return starts, (lower, upper)


def _to_raw_units(kind: str, p, m: float, s: float) -> np.ndarray:
    if kind == "5":
        b1, b2, b3, b4, b5 = p
        return np.array([b1, b2 / s, m + s * b3, b4 / s, b5 - b4 * m / s])
    b1, b2, b3, b4 = p
    return np.array([b1, b2, m + s * b3, s * abs(b4)])


def fit_logistic(scores, mos, kind: str = "5") -> LogisticFit:
    """Least-squares fit of the monotonic 5- (``kind='5'``, default) or 4-parameter (``'4'``) logistic, increasing
    or decreasing as the Pearson correlation of scores and MOS says.

    The scores are standardised first (the fit is then scale-free), every start of :func:`_fit_starts` is tried
    within bounds (``curve_fit`` trust-region reflective) and the lowest SSE wins. If no start converges the
    mapping falls back to a least-squares line and ``converged`` is False (a warning says so).
    """
    if kind not in ("4", "5"):
        raise ValueError(f"kind must be '4' or '5', got {kind!r}")
    x, y = _as_pair(scores, mos)
    m, s = x.mean(), x.std()
    if s == 0:
        raise ValueError("scores are constant: no mapping can be fitted")
    z = (x - m) / s
    sign = 1.0 if stats.pearsonr(z, y).statistic >= 0 else -1.0
    func = logistic5 if kind == "5" else logistic4
    starts, bounds = _fit_starts(kind, z, y, sign)
    best, best_sse, failures = None, np.inf, []
    for p0 in starts:
        p0 = np.clip(p0, np.asarray(bounds[0]) + 1e-6, np.asarray(bounds[1]) - 1e-6)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                p, _ = optimize.curve_fit(func, z, y, p0=p0, bounds=bounds, maxfev=20000)
        except (RuntimeError, ValueError) as exc:
            failures.append(str(exc))
            continue
        sse = float(np.sum((func(z, *p) - y) ** 2))
        if sse < best_sse:
            best, best_sse = p, sse
    if best is None:
        a, b = np.polyfit(x, y, 1)
        warnings.warn(f"{kind}-parameter logistic did not converge from any start ({failures[-1]}); "
                      "using a linear mapping", RuntimeWarning, stacklevel=2)
        return LogisticFit("linear", np.array([a, b]), float(np.sum((a * x + b - y) ** 2)), False, failures[-1])
    return LogisticFit(kind, _to_raw_units(kind, best, m, s), best_sse, True)


def plcc(scores, mos, mapping: str | LogisticFit | None = "5") -> float:
    """Pearson correlation between MOS and the mapped scores (``mapping=None``: raw scores, as pyiqa reports)."""
    x, y = _as_pair(scores, mos)
    if mapping is not None:
        x = (mapping if isinstance(mapping, LogisticFit) else fit_logistic(x, y, mapping))(x)
    return float(stats.pearsonr(x, y).statistic)


def rmse(scores, mos, mapping: str | LogisticFit | None = "5") -> float:
    """√mean((MOS − Q̂)²) with Q̂ the mapped scores (in MOS units)."""
    x, y = _as_pair(scores, mos)
    if mapping is not None:
        x = (mapping if isinstance(mapping, LogisticFit) else fit_logistic(x, y, mapping))(x)
    return float(np.sqrt(np.mean((y - x) ** 2)))


def outlier_ratio(scores, mos, mos_std, mapping: str | LogisticFit = "5", k: float = 2.0) -> float:
    """Fraction of pairs whose mapped score lies more than ``k`` MOS standard deviations from the MOS (VQEG)."""
    x, y = _as_pair(scores, mos)
    sd = np.asarray(mos_std, dtype=np.float64).ravel()
    if sd.shape != y.shape:
        raise ValueError(f"mos_std must have one value per pair, got {sd.size} for {y.size} pairs")
    q = (mapping if isinstance(mapping, LogisticFit) else fit_logistic(x, y, mapping))(x)
    return float(np.mean(np.abs(y - q) > k * sd))


def bootstrap_ci(statistic, *samples, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                 method: str = "percentile", vectorized: bool = False):
    """Paired bootstrap confidence interval (``scipy.stats.bootstrap``) of ``statistic(*samples)``;
    ``vectorized=True``: ``statistic(*resamples, axis=-1)`` takes a batch of resamples at once."""
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in samples]
    batch = max(1, 4_000_000 // max(1, arrays[0].size)) if vectorized else None  # bounded memory
    with warnings.catch_warnings():  # resamples of tiny sets can be constant: their NaN is the answer
        warnings.simplefilter("ignore")
        res = stats.bootstrap(arrays, statistic if vectorized else (lambda *a: statistic(*a)), paired=True,
                              vectorized=vectorized, n_resamples=n_resamples, confidence_level=confidence,
                              method=method, rng=np.random.default_rng(seed), batch=batch)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _spearman_along(a, b, axis=-1):
    """SROCC of many resamples at once: Pearson of the average ranks along ``axis`` (= ``spearmanr``)."""
    return stats.pearsonr(stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis), axis=axis).statistic


@dataclass
class Correlations:
    """Everything §16.1 asks for one metric on one dataset; ``ci`` maps a criterion to its (low, high)."""

    n: int
    srocc: float
    krocc: float
    plcc: float
    rmse: float
    fit: LogisticFit
    outlier_ratio: float | None = None
    ci: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"n": self.n, "srocc": self.srocc, "krocc": self.krocc, "plcc": self.plcc, "rmse": self.rmse,
               "fit": self.fit.kind, "fit_params": [float(v) for v in self.fit.params],
               "fit_converged": self.fit.converged}
        if self.outlier_ratio is not None:
            out["outlier_ratio"] = self.outlier_ratio
        for key, (low, high) in self.ci.items():
            out[f"{key}_ci"] = [low, high]
        return out


def correlations(scores, mos, mos_std=None, mapping: str = "5", n_resamples: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> Correlations:
    """SROCC, KROCC, PLCC, RMSE (after the ``mapping`` logistic), outlier ratio when ``mos_std`` is given, and
    bootstrap CIs (``n_resamples=0`` skips them). The CIs of PLCC/RMSE keep the mapping fitted on all pairs
    (refitting per resample would cost a nonlinear fit each); SROCC/KROCC are mapping-free."""
    x, y = _as_pair(scores, mos)
    fit = fit_logistic(x, y, mapping)
    result = Correlations(n=x.size, srocc=srocc(x, y), krocc=krocc(x, y), plcc=plcc(x, y, fit),
                          rmse=rmse(x, y, fit), fit=fit)
    if mos_std is not None:
        result.outlier_ratio = outlier_ratio(x, y, mos_std, fit)
    if n_resamples:
        q = fit(x)
        ci = lambda f, *a, v=True: bootstrap_ci(f, *a, n_resamples=n_resamples, seed=seed,
                                                confidence=confidence, vectorized=v)
        result.ci = {"srocc": ci(_spearman_along, x, y),
                     "krocc": ci(lambda a, b: stats.kendalltau(a, b).statistic, x, y, v=False),
                     "plcc": ci(lambda a, b, axis=-1: stats.pearsonr(a, b, axis=axis).statistic, q, y),
                     "rmse": ci(lambda a, b, axis=-1: np.sqrt(np.mean((a - b) ** 2, axis=axis)), q, y)}
    return result


def per_distortion(scores, mos, distortions, fit: LogisticFit | None = None) -> dict:
    """{distortion: {'n', 'srocc', 'krocc'[, 'plcc', 'rmse']}}; PLCC/RMSE use the dataset-wide ``fit`` (VQEG
    practice: one mapping per dataset). Types with fewer than 3 pairs or constant scores get NaN."""
    x, y = _as_pair(scores, mos)
    types = np.asarray(distortions, dtype=object).ravel()
    if types.shape != x.shape:
        raise ValueError(f"distortions must have one entry per pair, got {types.size} for {x.size} pairs")
    out = {}
    for name in sorted(set(types.tolist()), key=str):
        sel = types == name
        xs, ys = x[sel], y[sel]
        row = {"n": int(sel.sum())}
        ok = xs.size >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0
        row["srocc"] = float(stats.spearmanr(xs, ys).statistic) if ok else float("nan")
        row["krocc"] = float(stats.kendalltau(xs, ys).statistic) if ok else float("nan")
        if fit is not None:
            q = fit(xs)
            row["plcc"] = float(stats.pearsonr(q, ys).statistic) if ok and np.ptp(q) > 0 else float("nan")
            row["rmse"] = float(np.sqrt(np.mean((ys - q) ** 2)))
        out[name] = row
    return out
