"""turboiqa.eval.stats: correlation criteria against scipy and hand-computed cases; logistic fits recover known
parameters; outlier ratio, bootstrap CIs and the per-distortion breakdown."""
import math

import numpy as np
import pytest
from scipy import stats as sps
from turboiqa.eval.stats import (
    LogisticFit,
    bootstrap_ci,
    correlations,
    fit_logistic,
    krocc,
    logistic4,
    logistic5,
    outlier_ratio,
    per_distortion,
    plcc,
    rmse,
    srocc,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    x[:20] = np.round(x[:20])  # ties on both sides
    y[50:80] = np.round(y[50:80])
    assert srocc(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-14)
    assert krocc(x, y) == pytest.approx(sps.kendalltau(x, y).statistic, abs=1e-14)
    assert plcc(x, y, mapping=None) == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-14)
    assert rmse(x, y, mapping=None) == pytest.approx(np.sqrt(np.mean((x - y) ** 2)), abs=1e-14)


def test_hand_computed_small_case():
    x = [1, 2, 3, 4, 5]
    y = [2, 1, 4, 3, 5]
    # no ties: 1 − 6Σd²/(n(n²−1)) with d = (−1, 1, −1, 1, 0) → 1 − 24/120
    assert srocc(x, y) == pytest.approx(0.8, abs=1e-15)
    # 2 discordant pairs of 10 → τ = (8 − 2)/10
    assert krocc(x, y) == pytest.approx(0.6, abs=1e-15)
    # centred: Σdxdy = 8, Σdx² = Σdy² = 10
    assert plcc(x, y, mapping=None) == pytest.approx(0.8, abs=1e-15)
    assert rmse(x, y, mapping=None) == pytest.approx(math.sqrt(0.8), abs=1e-15)
    # τ-b with ties: x = (1, 1, 2), y = (1, 2, 3): nc = 2, nd = 0, one tie in x → 2/√(2·3)
    assert krocc([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6), abs=1e-15)
    # average ranks for ties: ranks x = (1.5, 1.5, 3) vs (1, 2, 3) → Pearson of those
    assert srocc([1, 1, 2], [1, 2, 3]) == pytest.approx(np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1], abs=1e-15)


def test_monotone_invariance_and_sign():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 300)
    y = x + 0.1 * rng.normal(size=300)
    assert srocc(np.exp(5 * x), y) == pytest.approx(srocc(x, y), abs=1e-15)
    assert srocc(-x, y) == pytest.approx(-srocc(x, y), abs=1e-15)


def test_logistic5_fit_recovers_parameters():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, 3000)
    true = np.array([4.0, 12.0, 0.55, 1.5, 2.0])
    y = logistic5(x, *true) + 0.05 * rng.normal(size=x.size)
    fit = fit_logistic(x, y, "5")
    assert fit.converged and fit.kind == "5"
    np.testing.assert_allclose(fit.params, true, rtol=0.06, atol=0.02)
    assert fit.sse / x.size == pytest.approx(0.05 ** 2, rel=0.1)  # residual = the noise
    assert plcc(x, y, fit) > plcc(x, y, mapping=None)


def test_logistic4_fit_recovers_decreasing_curve_in_raw_units():
    rng = np.random.default_rng(1)
    x = rng.uniform(10.0, 50.0, 2000)   # PSNR-like units far from the MOS scale
    true = np.array([1.0, 8.0, 30.0, 3.0])  # β1 < β2: decreasing
    y = logistic4(x, *true) + 0.1 * rng.normal(size=x.size)
    fit = fit_logistic(x, y, "4")
    assert fit.converged
    np.testing.assert_allclose(fit.params, true, rtol=0.05, atol=0.05)
    assert np.all(np.diff(fit(np.linspace(10, 50, 100))) <= 0)


def test_logistic5_mapping_is_monotonic_on_few_points():
    x = np.array([21.0, 21.1, 21.0, 27.0, 23.3, 21.6])
    y = np.array([3.86, 0.70, 3.93, 3.89, 3.28, 1.66])
    fit = fit_logistic(x, y, "5")
    d = np.diff(fit(np.linspace(x.min(), x.max(), 500)))
    assert np.all(d >= -1e-12) or np.all(d <= 1e-12)


def test_fit_errors_are_clear():
    with pytest.raises(ValueError, match="constant"):
        fit_logistic([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="same length"):
        srocc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        srocc([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="kind"):
        fit_logistic([1, 2, 3], [1, 2, 3], "3")


def test_outlier_ratio_hand_case():
    identity = LogisticFit("linear", np.array([1.0, 0.0]), 0.0, True)
    # |MOS − Q̂| = (0, 0.5, 0, 1) against 2·std = (0.2, 0.2, 2, 0.8) → outliers 2 and 4
    assert outlier_ratio([1, 2, 3, 4], [1, 2.5, 3, 5], [0.1, 0.1, 1.0, 0.4], identity) == 0.5
    with pytest.raises(ValueError, match="mos_std"):
        outlier_ratio([1, 2, 3, 4], [1, 2, 3, 4], [0.1], identity)


def test_bootstrap_ci_of_the_mean_matches_the_normal_interval():
    rng = np.random.default_rng(5)
    a = rng.normal(3.0, 2.0, 2000)
    low, high = bootstrap_ci(lambda v: np.mean(v), a, n_resamples=2000, seed=1)
    se = a.std(ddof=1) / np.sqrt(a.size)
    assert low == pytest.approx(a.mean() - 1.96 * se, abs=0.25 * se)
    assert high == pytest.approx(a.mean() + 1.96 * se, abs=0.25 * se)


def test_correlations_bundle_and_cis_bracket_the_estimates():
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, 400)
    mos = logistic5(x, 4.0, 10.0, 0.5, 1.0, 2.0) + 0.2 * rng.normal(size=x.size)
    std = np.full(x.size, 0.15)
    res = correlations(x, mos, std, n_resamples=300)
    assert res.n == 400
    assert res.srocc == pytest.approx(sps.spearmanr(x, mos).statistic, abs=1e-14)
    assert res.plcc == pytest.approx(sps.pearsonr(res.fit(x), mos).statistic, abs=1e-14)
    assert res.rmse == pytest.approx(np.sqrt(np.mean((mos - res.fit(x)) ** 2)), abs=1e-14)
    assert res.rmse == pytest.approx(0.2, rel=0.15)
    # noise 0.2 vs 2·0.15: P(|N(0, 0.2)| > 0.3) = 2(1 − Φ(1.5)) ≈ 0.134
    assert res.outlier_ratio == pytest.approx(0.134, abs=0.05)
    for key in ("srocc", "krocc", "plcc", "rmse"):
        low, high = res.ci[key]
        assert low <= getattr(res, key) <= high
    assert set(res.as_dict()) >= {"srocc", "srocc_ci", "plcc", "fit_params", "outlier_ratio"}


def test_per_distortion_matches_scipy_per_group():
    rng = np.random.default_rng(11)
    x = rng.normal(size=60)
    y = x + rng.normal(size=60)
    types = np.array(["a"] * 25 + ["b"] * 33 + ["c"] * 2)
    fit = fit_logistic(x, y)
    out = per_distortion(x, y, types, fit)
    for t in ("a", "b"):
        sel = types == t
        assert out[t]["n"] == sel.sum()
        assert out[t]["srocc"] == pytest.approx(sps.spearmanr(x[sel], y[sel]).statistic, abs=1e-14)
        assert out[t]["krocc"] == pytest.approx(sps.kendalltau(x[sel], y[sel]).statistic, abs=1e-14)
        assert out[t]["rmse"] == pytest.approx(np.sqrt(np.mean((y[sel] - fit(x[sel])) ** 2)), abs=1e-14)
    assert out["c"]["n"] == 2 and math.isnan(out["c"]["srocc"])
