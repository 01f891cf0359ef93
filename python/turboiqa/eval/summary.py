"""From scored rows to the evaluation table: correlations with CIs, Krasula AUCs, per-distortion breakdown and
pairwise metric comparisons, computed on the pairs every metric scored.

Orientation: metric scores are negated for distances (SPECS §0.3) and subjective scores for DMOS datasets, so
every reported SROCC/KROCC/PLCC is positive for a metric that agrees with the subjects, and Krasula's analysis
sees "higher = better" on both sides. RMSE is in the dataset's own score units.
"""
from __future__ import annotations

import math

import numpy as np

from .krasula import krasula_all, pairwise_significance
from .stats import correlations, per_distortion


def _usable(rows, metrics):
    out = []
    for row in rows:
        if row.get("error"):
            continue
        values = [row.get(m) for m in metrics] + [row.get("mos")]
        if all(isinstance(v, float) and math.isfinite(v) for v in values):
            out.append(row)
    return out


def summarise(rows, metrics, mos_higher_is_better: bool = True, lower_is_better=(), mapping: str = "5",
              n_resamples: int = 1000, with_krasula: bool = True, seed: int = 0, max_pairs: int = 5_000_000):
    """Evaluation of ``metrics`` on ``rows`` (dicts with ``mos``, optional ``mos_std``/``distortion`` and one
    float per metric). ``lower_is_better``: metric names that are distances."""
    metrics = list(metrics)
    usable = _usable(rows, metrics)
    summary = {"n_rows": len(rows), "n": len(usable), "n_excluded": len(rows) - len(usable), "metrics": {},
               "comparisons": {}, "mos_higher_is_better": mos_higher_is_better, "mapping": mapping}
    if len(usable) < 3:
        raise ValueError(f"only {len(usable)} of {len(rows)} rows have a score for every metric and a MOS; "
                         "need at least 3")
    sign_q = 1.0 if mos_higher_is_better else -1.0
    mos = np.array([r["mos"] for r in usable])
    q = sign_q * mos
    stds = [r.get("mos_std") for r in usable]
    std = np.array(stds, dtype=np.float64) if all(isinstance(s, float) for s in stds) else None
    types = [r.get("distortion") or "all" for r in usable]
    significance = None
    if with_krasula and std is not None and len(usable) >= 4:
        significance = pairwise_significance(q, std, max_pairs=max_pairs, seed=seed)
    summary["krasula_note"] = (f"{significance[0].size} stimulus pairs judged from MOS ± std (std taken as the "
                               "standard error of the MOS)" if significance is not None
                               else "skipped: no MOS std in the scores")
    oriented = {}
    for m in metrics:
        sign_o = -1.0 if m in lower_is_better else 1.0
        o = sign_o * np.array([r[m] for r in usable])
        oriented[m] = o
        corr = correlations(o, q, std, mapping=mapping, n_resamples=n_resamples, seed=seed)
        entry = corr.as_dict()
        entry["orientation"] = {"metric": sign_o, "mos": sign_q}
        entry["per_distortion"] = per_distortion(o, q, types, corr.fit)
        summary["metrics"][m] = entry
        entry["_fit"] = corr.fit  # for the plots; dropped by to_json
    if significance is not None:
        try:
            results, summary["comparisons"] = krasula_all(oriented, significance)
            for m, res in results.items():
                summary["metrics"][m]["krasula"] = res.as_dict()
        except ValueError as exc:
            summary["krasula_note"] = f"skipped: {exc}"
    return summary


def to_json(summary) -> dict:
    """The summary without non-serialisable helpers (NaN → None)."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not k.startswith("_")}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, (float, np.floating)):
            return None if not math.isfinite(value) else float(value)
        if isinstance(value, np.integer):
            return int(value)
        return value

    return clean(summary)


def _fmt(value, digits=4):
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _p(p: float) -> str:
    return "p<1e-300" if p == 0 else f"p={p:.3g}"  # the normal tail underflows for very different metrics


def format_table(summary, title: str = "") -> str:
    """Plain-text table: one row per metric; CIs in brackets; Krasula columns when available."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{summary['n']} pairs scored by every metric"
                 + (f" ({summary['n_excluded']} excluded: failed or missing)" if summary["n_excluded"] else "")
                 + f"; PLCC/RMSE after the {summary['mapping']}-parameter logistic")
    head = ["metric", "SROCC [95% CI]", "KROCC", "PLCC", "RMSE", "OR", "AUC_DS", "AUC_BW", "CC_0"]
    table = [head]
    for m, e in summary["metrics"].items():
        ci = e.get("srocc_ci")
        srocc = _fmt(e["srocc"]) + (f" [{_fmt(ci[0], 3)}, {_fmt(ci[1], 3)}]" if ci else "")
        k = e.get("krasula", {})
        table.append([m, srocc, _fmt(e["krocc"]), _fmt(e["plcc"]), _fmt(e["rmse"]), _fmt(e.get("outlier_ratio"), 3),
                      _fmt(k.get("auc_ds")), _fmt(k.get("auc_bw")), _fmt(k.get("cc0"))])
    widths = [max(len(r[c]) for r in table) for c in range(len(head))]
    for k, r in enumerate(table):
        lines.append("  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in
                               enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    if summary.get("comparisons"):
        lines.append("")
        lines.append("Metric vs metric (two-sided p): DeLong for AUC_DS / AUC_BW, binomial z-test for CC_0")
        for name, c in summary["comparisons"].items():
            if "skipped" in c:
                lines.append(f"  {name}: skipped ({c['skipped']})")
            else:
                lines.append(f"  {name}: AUC_DS {_p(c['auc_ds']['p'])}  AUC_BW {_p(c['auc_bw']['p'])}  "
                             f"CC_0 {_p(c['cc0']['p'])}")
    if "krasula_note" in summary:
        lines.append(f"Krasula et al. 2016: {summary['krasula_note']}")
    return "\n".join(lines)
