"""turboiqa — fast, faithful full-reference image quality metrics for PyTorch."""
from __future__ import annotations

from functools import partial

from ._ops import HAVE_NATIVE
from .catalogue import create_metric, list_models
from .metrics.deepsim import DeepSim, deepsim
from .metrics.dists import DISTS, dists
from .metrics.dnn_features import DNNFeatures, dnn_features
from .metrics.dss import DSS, DSS_CONVENTIONS, dss
from .metrics.fsim import FSIM, FSIM_CONVENTIONS, fsim
from .metrics.gmsd import GMSD, GMSD_CONVENTIONS, MS_GMSD, MS_GMSD_CONVENTIONS, gmsd, ms_gmsd
from .metrics.haarpsi import HAARPSI_CONVENTIONS, HaarPSI, haarpsi
from .metrics.iw_ssim import IW_SSIM, IW_SSIM_CONVENTIONS, iw_ssim
from .metrics.lpips import LPIPS, lpips
from .metrics.lpips_swd import LPIPS_SWD, lpips_swd
from .metrics.mad import MAD, MAD_CONVENTIONS, mad
from .metrics.mdsi import MDSI, MDSI_CONVENTIONS, mdsi
from .metrics.ms_ssim import MS_SSIM, MS_SSIM_CONVENTIONS, ms_ssim
from .metrics.nlpd import NLPD, NLPD_CONVENTIONS, nlpd
from .metrics.pieapp import PIEAPP_CONVENTIONS, PieAPP, pieapp
from .metrics.psnr import PSNR, psnr
from .metrics.srsim import SRSIM, SRSIM_CONVENTIONS, srsim
from .metrics.ssim import SSIM, SSIM_CONVENTIONS, ssim
from .metrics.vif import VIF, VIF_CONVENTIONS, VIFP_CONVENTIONS, VIFp, vif, vif_p
from .metrics.vsi import VSI, VSI_CONVENTIONS, vsi
from .metrics.cw_ssim import CW_SSIM, CW_SSIM_CONVENTIONS, cw_ssim
from .metrics.deepqa import DeepQA, deepqa, deepqa_maps
from .metrics.wadiqam import WADIQAM_CHECKPOINTS, WADIQAM_CONVENTIONS, WaDIQaM_FR, wadiqam_fr
from .metrics.pu21 import PU21PSNR, PU21SSIM, pu21, pu21_decode, pu21_encode, pu21_psnr, pu21_ssim
from .metrics.cvvdp import CVVDP, cvvdp
from . import display

__version__ = "0.1.0"

# Every entry is called metric(distorted, reference, data_range=..., reduction=...).
METRICS = {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim, "fsim": fsim, "fsimc": partial(fsim, color="yiq_chromatic"),
           "iw_ssim": iw_ssim, "lpips": lpips, "lpips_vgg": partial(lpips, net="vgg"), "dists": dists,
           "deepsim": deepsim, "lpips_swd": lpips_swd, "pieapp": pieapp,
           "wadiqam_fr": wadiqam_fr, "deepqa": deepqa, "dnn_features": dnn_features,
           "vsi": vsi, "haarpsi": haarpsi, "dss": dss, "gmsd": gmsd, "ms_gmsd": ms_gmsd,
           "ms_gmsdc": partial(ms_gmsd, chromatic=True), "mdsi": mdsi, "mdsi_mult": partial(mdsi, combination="mult"),
           "srsim": srsim, "srsimc": partial(srsim, chromatic=True), "vif": vif, "vif_p": vif_p,
           "nlpd": nlpd, "mad": mad, "cw_ssim": cw_ssim, "pu21_psnr": pu21_psnr, "pu21_ssim": pu21_ssim,
           "cvvdp": cvvdp}
SCALED_METRICS = ("ms_ssim", "iw_ssim")  # the METRICS that take scales= (the jobs' --scales)


def metric_options(name: str, scales: int | None = None) -> dict:
    """Keyword arguments the jobs pass to ``METRICS[name]`` besides data_range (``--scales`` where it applies)."""
    return {"scales": scales} if scales is not None and name in SCALED_METRICS else {}


def build_info() -> dict:
    """What was compiled (CPU ISA builds and the one selected, OpenMP, CUDA archs) and what runs now."""
    import torch

    info = {"native": HAVE_NATIVE, "torch_version_runtime": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available()}
    if HAVE_NATIVE:
        from . import _C

        info.update(_C.build_info())
    return info


__all__ = [
    "CVVDP",
    "cvvdp",
    "display",
    "PU21PSNR",
    "PU21SSIM",
    "pu21",
    "pu21_decode",
    "pu21_encode",
    "pu21_psnr",
    "pu21_ssim",
    "CW_SSIM",
    "CW_SSIM_CONVENTIONS",
    "cw_ssim",
    "MAD",
    "MAD_CONVENTIONS",
    "mad",
    "NLPD",
    "NLPD_CONVENTIONS",
    "nlpd",
    "VIF",
    "VIF_CONVENTIONS",
    "VIFP_CONVENTIONS",
    "VIFp",
    "vif",
    "vif_p",
    "GMSD",
    "GMSD_CONVENTIONS",
    "MS_GMSD",
    "MS_GMSD_CONVENTIONS",
    "gmsd",
    "ms_gmsd",
    "MDSI",
    "MDSI_CONVENTIONS",
    "mdsi",
    "SRSIM",
    "SRSIM_CONVENTIONS",
    "srsim",
    "DSS",
    "DSS_CONVENTIONS",
    "dss",
    "HAARPSI_CONVENTIONS",
    "HaarPSI",
    "haarpsi",
    "VSI",
    "VSI_CONVENTIONS",
    "vsi",
    "DeepQA",
    "deepqa",
    "deepqa_maps",
    "DISTS",
    "DNNFeatures",
    "dnn_features",
    "LPIPS",
    "LPIPS_SWD",
    "DeepSim",
    "deepsim",
    "dists",
    "lpips",
    "lpips_swd",
    "FSIM",
    "FSIM_CONVENTIONS",
    "IW_SSIM",
    "IW_SSIM_CONVENTIONS",
    "METRICS",
    "SCALED_METRICS",
    "metric_options",
    "MS_SSIM",
    "MS_SSIM_CONVENTIONS",
    "PSNR",
    "PIEAPP_CONVENTIONS",
    "PieAPP",
    "pieapp",
    "SSIM",
    "SSIM_CONVENTIONS",
    "WADIQAM_CHECKPOINTS",
    "WADIQAM_CONVENTIONS",
    "WaDIQaM_FR",
    "wadiqam_fr",
    "build_info",
    "create_metric",
    "list_models",
    "fsim",
    "iw_ssim",
    "ms_ssim",
    "psnr",
    "ssim",
]
