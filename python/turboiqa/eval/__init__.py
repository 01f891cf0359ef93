"""Evaluation of metrics against human scores (SPECS §16): correlation criteria with logistic mapping and
bootstrap CIs, Krasula et al. 2016 analyses with DeLong tests, dataset loaders, and the resumable scoring job
behind ``turboiqa evaluate``. Needs scipy (and matplotlib for the plots): ``pip install 'turboiqa[eval]'``."""
from .bapps import BAPPS2AFC, BAPPSJND, jnd_map, two_afc_score
from .datasets import CSIQ, LIVE, PIPAL, TID2008, TID2013, DatasetLayoutError, KADID10k, Pair, open_dataset
from .job import evaluate_dataset, evaluate_scores, report
from .krasula import KrasulaResult, compare, delong, krasula, krasula_all, pairwise_significance
from .runner import RunStats, lower_is_better, read_scores, score_dataset
from .stats import (
    Correlations,
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
from .summary import format_table, summarise

__all__ = [
    "BAPPS2AFC", "BAPPSJND", "CSIQ", "LIVE", "PIPAL", "TID2008", "TID2013", "Correlations", "DatasetLayoutError",
    "KADID10k", "KrasulaResult", "LogisticFit", "Pair", "RunStats", "bootstrap_ci", "compare", "correlations",
    "delong", "evaluate_dataset", "evaluate_scores", "fit_logistic", "format_table", "jnd_map", "krasula", "krasula_all",
    "krocc", "logistic4", "logistic5", "lower_is_better", "open_dataset", "outlier_ratio", "pairwise_significance",
    "per_distortion", "plcc", "read_scores", "report", "rmse", "score_dataset", "srocc", "summarise",
    "two_afc_score",
]
