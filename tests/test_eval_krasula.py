"""turboiqa.eval.krasula: pair significance, DeLong AUC/covariance against brute force, and the Krasula analyses
on constructed cases (separable → 1, random → ½)."""
import itertools

import numpy as np
import pytest
from scipy import stats as sps
from turboiqa.eval.krasula import compare, delong, krasula, pairwise_significance


def brute_force_delong(pos, neg):
    """DeLong 1988 structural components by their definition: ψ(X, Y) = 1, ½, 0 for X >, =, < Y."""
    pos, neg = np.atleast_2d(pos), np.atleast_2d(neg)
    m, n = pos.shape[1], neg.shape[1]
    psi = [(p[:, None] > q[None, :]) + 0.5 * (p[:, None] == q[None, :]) for p, q in zip(pos, neg)]
    auc = np.array([s.mean() for s in psi])
    v10 = np.array([s.mean(axis=1) for s in psi])  # per positive
    v01 = np.array([s.mean(axis=0) for s in psi])  # per negative
    cov = np.zeros((len(psi), len(psi)))
    for a, b in itertools.product(range(len(psi)), repeat=2):
        s10 = np.sum((v10[a] - auc[a]) * (v10[b] - auc[b])) / (m - 1)
        s01 = np.sum((v01[a] - auc[a]) * (v01[b] - auc[b])) / (n - 1)
        cov[a, b] = s10 / m + s01 / n
    return auc, cov


def test_delong_matches_brute_force_and_mann_whitney_with_ties():
    rng = np.random.default_rng(0)
    pos = np.round(rng.normal(0.8, 1.0, size=(2, 60)), 1)  # rounding → ties
    neg = np.round(rng.normal(0.0, 1.0, size=(2, 45)), 1)
    neg[1] = np.round(neg[0] + 0.3 * rng.normal(size=45), 1)  # correlated second classifier
    auc, cov = delong(pos, neg)
    auc_bf, cov_bf = brute_force_delong(pos, neg)
    np.testing.assert_allclose(auc, auc_bf, atol=1e-14)
    np.testing.assert_allclose(cov, cov_bf, atol=1e-14)
    for k in range(2):
        u = sps.mannwhitneyu(pos[k], neg[k]).statistic
        assert auc[k] == pytest.approx(u / (60 * 45), abs=1e-14)


def test_delong_variance_agrees_with_bootstrap():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(1.0, 1.0, 150), rng.normal(0.0, 1.0, 120)
    _, cov = delong(pos, neg)
    boot = []
    for _ in range(1500):
        p = pos[rng.integers(0, pos.size, pos.size)]
        q = neg[rng.integers(0, neg.size, neg.size)]
        boot.append(sps.mannwhitneyu(p, q).statistic / (p.size * q.size))
    assert cov[0, 0] == pytest.approx(np.var(boot, ddof=1), rel=0.2)


def test_pairwise_significance_hand_case():
    mos = np.array([5.0, 4.9, 3.0])
    se = np.array([0.1, 0.1, 0.2])
    i, j, s = pairwise_significance(mos, se)
    # z(0,1) = 0.1/√0.02 = 0.71 → 0; z(0,2) = 2/√0.05 = 8.9 → +1; z(1,2) = 1.9/√0.05 = 8.5 → +1
    assert list(zip(i.tolist(), j.tolist(), s.tolist())) == [(0, 1, 0), (0, 2, 1), (1, 2, 1)]
    # observers' std with n observers: SE = std/√n
    _, _, s2 = pairwise_significance(mos, se * 5, n_observers=25)
    assert s2.tolist() == s.tolist()
    _, _, s3 = pairwise_significance(mos[::-1], se[::-1])
    assert s3.tolist() == [-1, -1, 0]


def test_pairwise_significance_from_raw_scores_equals_mos_and_standard_error():
    rng = np.random.default_rng(2)
    raw = [rng.normal(mu, 1.0, 20) for mu in rng.uniform(1, 5, 30)]
    i, j, s = pairwise_significance(None, raw_scores=raw)
    mos = np.array([r.mean() for r in raw])
    sd = np.array([r.std(ddof=1) for r in raw])
    i2, j2, s2 = pairwise_significance(mos, sd, n_observers=20)
    assert (i == i2).all() and (j == j2).all() and (s == s2).all()
    assert (s != 0).any() and (s == 0).any()


def test_pair_subsampling_is_seeded_and_covers_valid_pairs():
    mos = np.arange(3000, dtype=float)
    i, j, _ = pairwise_significance(mos, np.full(3000, 0.1), max_pairs=10_000, seed=4)
    assert i.size == 10_000 and (i < j).all() and (j < 3000).all()
    i2, j2, _ = pairwise_significance(mos, np.full(3000, 0.1), max_pairs=10_000, seed=4)
    assert (i == i2).all() and (j == j2).all()


def clustered_stimuli(rng, clusters=6, per_cluster=8):
    """Clusters of stimuli 1 MOS unit apart with SE 0.05: inside a cluster (spread 0.02) no pair is
    significant, across clusters every pair is."""
    mos = np.concatenate([c + 0.02 * rng.uniform(size=per_cluster) for c in range(clusters)])
    return mos, np.full(mos.size, 0.05)


def test_separable_case_gives_auc_one():
    rng = np.random.default_rng(3)
    mos, se = clustered_stimuli(rng)
    sig = pairwise_significance(mos, se)
    res = krasula(3.0 * mos + 7.0, sig)   # any increasing function of MOS
    assert res.auc_ds == pytest.approx(1.0)
    assert res.auc_bw == pytest.approx(1.0)
    assert res.cc0 == 1.0
    assert res.n_similar == 6 * 28 and res.n_different == 48 * 47 // 2 - 6 * 28
    assert res.threshold <= 3.0 * 0.02
    flipped = krasula(-mos, sig)  # a metric with the wrong direction
    assert flipped.auc_bw == pytest.approx(0.0) and flipped.cc0 == 0.0


def test_random_metric_gives_auc_one_half_within_ci():
    rng = np.random.default_rng(4)
    mos = rng.uniform(1, 5, 300)
    sig = pairwise_significance(mos, np.full(300, 0.3))
    res = krasula(rng.normal(size=300), sig)
    for auc, var in ((res.auc_ds, res.var_ds), (res.auc_bw, res.var_bw)):
        # pairs share stimuli, so DeLong's pair-level SE is optimistic: allow a wide margin
        assert abs(auc - 0.5) < max(4 * np.sqrt(var), 0.05)
    assert res.cc0 == pytest.approx(0.5, abs=0.05)


def test_auc_bw_is_the_mann_whitney_statistic_of_the_oriented_differences():
    rng = np.random.default_rng(5)
    mos = rng.uniform(1, 5, 80)
    sig = pairwise_significance(mos, np.full(80, 0.2))
    o = mos + rng.normal(0, 0.8, 80)
    res = krasula(o, sig)
    i, j, s = sig
    d = (o[i] - o[j])[s != 0] * s[s != 0]
    assert res.auc_bw == pytest.approx(sps.mannwhitneyu(d, -d).statistic / d.size ** 2, abs=1e-12)
    assert res.cc0 == pytest.approx(np.mean(d > 0), abs=1e-15)
    absd = np.abs(o[i] - o[j])
    assert res.auc_ds == pytest.approx(
        sps.mannwhitneyu(absd[s != 0], absd[s == 0]).statistic / ((s != 0).sum() * (s == 0).sum()), abs=1e-12)


def test_compare_two_metrics():
    rng = np.random.default_rng(6)
    mos = rng.uniform(1, 5, 150)
    sig = pairwise_significance(mos, np.full(150, 0.25))
    good = mos + rng.normal(0, 0.3, 150)
    bad = mos + rng.normal(0, 2.0, 150)
    out = compare(good, bad, sig)
    assert out["auc_bw"]["a"] > out["auc_bw"]["b"] and out["auc_bw"]["p"] < 1e-6
    assert out["cc0"]["p"] < 1e-6
    same = compare(good, good, sig)
    assert same["auc_ds"]["p"] == 1.0 and same["cc0"]["p"] == 1.0
    # binomial z-test by hand
    i, j, s = sig
    p1 = np.mean(((good[i] - good[j]) * s)[s != 0] > 0)
    p2 = np.mean(((bad[i] - bad[j]) * s)[s != 0] > 0)
    pbar, n = (p1 + p2) / 2, (s != 0).sum()
    z = abs(p1 - p2) / np.sqrt(2 * pbar * (1 - pbar) / n)
    assert out["cc0"]["p"] == pytest.approx(2 * sps.norm.sf(z), rel=1e-12)
    # DeLong z with the brute-force covariance
    d = ((good[i] - good[j]) * s)[s != 0], ((bad[i] - bad[j]) * s)[s != 0]
    auc, cov = delong(np.stack(d), -np.stack(d))
    z = abs(auc[0] - auc[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert out["auc_bw"]["p"] == pytest.approx(2 * sps.norm.sf(z), rel=1e-9)


def test_errors():
    with pytest.raises(ValueError, match="std"):
        pairwise_significance([1, 2, 3])
    with pytest.raises(ValueError, match="at least 2"):
        delong([1.0], [0.0, 1.0])
    mos = np.array([1.0, 5.0, 9.0])
    with pytest.raises(ValueError, match="similar"):
        krasula(mos, pairwise_significance(mos, np.full(3, 0.01)))
