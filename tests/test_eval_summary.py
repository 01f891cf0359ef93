"""turboiqa.eval.summary on the real score distributions of ../shared/data/mos_lists (synthetic metric scores):
orientation of distances and DMOS, per-distortion breakdown, Krasula on (sub-sampled) pairs, table and JSON."""
import csv
import json

import numpy as np
import pytest
from conftest import SHARED_DATA, skip_missing_shared_data
from scipy import stats as sps
from turboiqa.eval.summary import format_table, summarise, to_json


def real_rows(name, seed=0):
    path = SHARED_DATA / "mos_lists" / f"{name}.txt"
    if not path.is_file():
        skip_missing_shared_data(path, "shared score list")
    rng = np.random.default_rng(seed)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    mos = np.array([float(r["score"]) for r in rows])
    z = (mos - mos.mean()) / mos.std()
    out = []
    for r, zk in zip(rows, z):
        out.append({"distorted": r["dis_img_path"], "distortion": r["dis_type"], "mos": float(r["score"]),
                    "mos_std": float(rng.uniform(0.05, 0.2) * mos.std()),
                    "quality": float(1 / (1 + np.exp(-(zk + rng.normal(0, 0.6))))),   # higher = better
                    "distance": float(np.exp(-zk) + rng.normal(0, 0.5))})             # lower = better
    return out


@pytest.mark.parametrize("name, higher, n_types", [("KADID-10k", True, 25), ("CSIQ", False, 6)])
def test_summary_on_real_distributions(name, higher, n_types):
    rows = real_rows(name)
    if not higher:  # DMOS: the synthetic metrics follow quality = −DMOS
        for r in rows:
            r["quality"], r["distance"] = 1 - r["quality"], -r["distance"]
    s = summarise(rows, ["quality", "distance"], mos_higher_is_better=higher, lower_is_better={"distance"},
                  n_resamples=50, max_pairs=200_000)
    mos = np.array([r["mos"] for r in rows])
    sign = 1 if higher else -1
    for m, metric_sign in (("quality", 1), ("distance", -1)):
        e = s["metrics"][m]
        x = np.array([r[m] for r in rows])
        assert e["srocc"] == pytest.approx(sps.spearmanr(metric_sign * x, sign * mos).statistic, abs=1e-12)
        assert e["srocc"] > 0.5 and e["plcc"] > 0.5          # oriented: good metrics come out positive
        assert len(e["per_distortion"]) == n_types
        k = e["krasula"]
        assert k["n_different"] + k["n_similar"] == min(200_000, len(rows) * (len(rows) - 1) // 2)
        assert 0.5 < k["auc_bw"] <= 1 and 0.5 < k["cc0"] <= 1
    assert set(s["comparisons"]) == {"quality vs distance"}
    text = format_table(s, title=name)
    assert "quality" in text and "AUC_DS" in text
    json.dumps(to_json(s))  # serialisable


def test_summary_excludes_failed_rows_and_needs_three():
    rows = [{"mos": float(k), "m": float(k) ** 2} for k in range(5)]
    rows[1]["error"] = "boom"
    rows[2]["m"] = None
    s = summarise(rows, ["m"], n_resamples=0)
    assert s["n"] == 3 and s["n_excluded"] == 2 and "krasula" not in s["metrics"]["m"]
    with pytest.raises(ValueError, match="at least 3"):
        summarise(rows[:3], ["m"], n_resamples=0)
