"""Run the deep-metric peers (lpips, DISTS_pytorch, piq, torchmetrics, pyiqa) with exactly our weight tensors.

torchvision is not usable beside this CPU torch, and the peers only need ``torchvision.models.<net>(...).features``
(plus ``transforms`` at import time). :func:`install_torchvision_stub` puts a minimal ``torchvision`` in
``sys.modules`` whose model constructors return turboiqa's own ``features`` stacks (same module indices as
torchvision) loaded with the state dicts registered in :data:`FEATURES` — the same tensors turboiqa loads, so any
difference in the scores comes from the metric code, not from the weights.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import types

import torch
from turboiqa.nets.backbones import VGG16, AlexNet, SqueezeNet11

# net name → features state dict (keys "<i>.weight"), filled by the tests before a peer builds its network
FEATURES: dict[str, dict] = {}
_BUILDERS = {"alexnet": AlexNet, "vgg16": VGG16, "squeezenet1_1": SqueezeNet11}


class _Weights:
    """Stand-in for torchvision's weight enums (``AlexNet_Weights.DEFAULT`` …)."""

    DEFAULT = IMAGENET1K_V1 = "imagenet"


def _model(name):
    def build(pretrained=False, weights=None, progress=True, **_):
        features = _BUILDERS[name]().features
        if pretrained or weights is not None:
            if name not in FEATURES:
                raise RuntimeError(f"peer_stubs: no {name} weights registered")
            features.load_state_dict(FEATURES[name])
        return types.SimpleNamespace(features=features)

    return build


class _Unavailable:
    """A torchvision.models name the stub does not build: calling it fails; its attributes are classes a peer may
    subclass at import time (piq's FID module derives from models.inception.InceptionA)."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *_a, **_k):
        raise RuntimeError(f"torchvision stub: {self._name} is not provided")

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (torch.nn.Module,), {})


def install_torchvision_stub() -> None:
    if "torchvision" in sys.modules and getattr(sys.modules["torchvision"], "_turboiqa_stub", False):
        return
    tv = types.ModuleType("torchvision")
    tv._turboiqa_stub = True
    tv.__path__ = []
    tv.__version__ = "0.0+turboiqa.stub"
    models = types.ModuleType("torchvision.models")
    for name in _BUILDERS:
        setattr(models, name, _model(name))
    models.AlexNet_Weights = models.VGG16_Weights = models.SqueezeNet1_1_Weights = _Weights
    models.vgg19 = _model("vgg16")  # imported by piq.perceptual, never used here

    def other(name):  # the rest of torchvision.models: importable, not buildable
        if name.startswith("__"):
            raise AttributeError(name)
        if name.endswith("_Weights"):
            return _Weights
        return _Unavailable(name)

    models.__getattr__ = other
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = types.ModuleType("torchvision.transforms.functional")

    def rotate(t, angle):  # pyiqa's NLPD turns its 3×3 filters by 180°: a flip of both axes
        if angle % 360 != 180:
            raise NotImplementedError(f"torchvision stand-in: rotate by {angle} degrees")
        return torch.flip(t, (-2, -1))

    transforms.functional.rotate = rotate
    tv.models, tv.transforms = models, transforms
    for m in (tv, models, transforms, transforms.functional):
        m.__spec__ = importlib.machinery.ModuleSpec(m.__name__, None, is_package=True)
    sys.modules.update({"torchvision": tv, "torchvision.models": models, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": transforms.functional})


def import_piq_module(name):
    """A piq submodule. piq's __init__ imports torchvision, so the stand-in goes in first and the whole package is
    imported (a bare package shell here left later ``import piq`` users without piq's names: a test-order
    dependency). Only if the full import fails is the submodule loaded under an empty package."""
    if importlib.util.find_spec("piq") is None:
        return None
    install_torchvision_stub()
    if "piq" not in sys.modules:
        try:
            importlib.import_module("piq")
        except Exception:  # noqa: BLE001 - a piq whose __init__ needs more than the stand-in gives
            sys.modules.pop("piq", None)
            pkg = types.ModuleType("piq")
            pkg.__path__ = [os.path.dirname(importlib.util.find_spec("piq").origin)]
            sys.modules["piq"] = pkg
    return importlib.import_module(f"piq.{name}")


def lpips_heads(state: dict, n: int) -> list[torch.Tensor]:
    return [state[f"lin{i}.model.1.weight"] for i in range(n)]


class patched_hub_load:
    """``torch.hub.load_state_dict_from_url`` returning ``value`` (piq fetches its head weights that way)."""

    def __init__(self, value):
        self.value = value

    def __enter__(self):
        self.saved = torch.hub.load_state_dict_from_url
        torch.hub.load_state_dict_from_url = lambda *a, **k: self.value
        return self

    def __exit__(self, *exc):
        torch.hub.load_state_dict_from_url = self.saved
        return False


def lpips_package(net: str, head_path, features: dict):
    """``lpips.LPIPS`` (official package) with our backbone tensors and the given heads file."""
    if importlib.util.find_spec("lpips") is None:
        return None
    install_torchvision_stub()
    import lpips

    FEATURES[{"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[net]] = features
    return lpips.LPIPS(net=net, version="0.1", model_path=str(head_path), verbose=False).eval()


def dists_package(features: dict, alpha_beta: dict):
    if importlib.util.find_spec("DISTS_pytorch") is None:
        return None
    install_torchvision_stub()
    FEATURES["vgg16"] = features
    from DISTS_pytorch.DISTS_pt import DISTS

    model = DISTS(load_weights=False).eval()
    model.alpha.data, model.beta.data = alpha_beta["alpha"].clone(), alpha_beta["beta"].clone()
    return model


def torchmetrics_lpips(net: str, head_path, features: dict):
    """torchmetrics' copy of the lpips networks (it checks for the torchvision distribution: patched)."""
    try:
        tm = importlib.import_module("torchmetrics.functional.image.lpips")
    except Exception:  # noqa: BLE001
        return None
    install_torchvision_stub()
    tm._TORCHVISION_AVAILABLE = True
    FEATURES[{"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[net]] = features
    return tm._LPIPS(pretrained=True, net=net, model_path=str(head_path)).eval()


def import_pyiqa_arch(name: str):
    """``pyiqa.archs.<name>`` without pyiqa/__init__ (its full import pulls in many optional dependencies);
    ``requests``/``huggingface_hub`` are only used for downloads and get stand-ins when absent."""
    if "pyiqa" in sys.modules:
        return importlib.import_module(f"pyiqa.archs.{name}")
    spec = importlib.util.find_spec("pyiqa")
    if spec is None:
        return None
    install_torchvision_stub()
    root = os.path.dirname(spec.origin)
    for pkg, sub in (("pyiqa", ""), ("pyiqa.utils", "utils"), ("pyiqa.archs", "archs")):
        if pkg not in sys.modules:
            m = types.ModuleType(pkg)
            m.__path__ = [os.path.join(root, sub) if sub else root]
            sys.modules[pkg] = m
    for mod in ("huggingface_hub", "requests"):
        try:
            importlib.import_module(mod)
        except ImportError:
            m = types.ModuleType(mod)
            m.hf_hub_url = lambda *a, **k: "offline"
            sys.modules[mod] = m
    return importlib.import_module(f"pyiqa.archs.{name}")


def pyiqa_lpips(net: str, head_path, features: dict):
    arch = import_pyiqa_arch("lpips_arch")
    if arch is None:
        return None
    FEATURES[{"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[net]] = features
    return arch.LPIPS(net=net, version="0.1", pretrained_model_path=str(head_path)).eval()


def pyiqa_dists(features: dict, alpha_beta_path):
    arch = import_pyiqa_arch("dists_arch")
    if arch is None:
        return None
    FEATURES["vgg16"] = features
    return arch.DISTS(pretrained_model_path=str(alpha_beta_path)).eval()


def piqa_lpips(net: str, head_state: dict, features: dict):
    """piqa's LPIPS (it fetches the official head file through torch.hub: patched to our tensors)."""
    if importlib.util.find_spec("piqa") is None:
        return None
    install_torchvision_stub()
    FEATURES[{"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}[net]] = features
    piqa_lpips_module = importlib.import_module("piqa.lpips")
    with patched_hub_load(head_state):
        return piqa_lpips_module.LPIPS(network=net, reduction="none").eval()


# Imports pyiqa's api needs that a --no-deps install lacks; none of them is used by the FR metrics tested here
# (yaml: dataset configs; cv2: image files, read by our own reader in the tests; the rest: downloads, plots).
PYIQA_STAND_INS = ("yaml", "cv2", "torchvision.utils", "requests", "huggingface_hub")


def _stand_in(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    module._turboiqa_stand_in = True

    def missing(attr):  # `from cv2 import X` gets a placeholder class; calling into it fails loudly
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (), {"__init__": lambda self, *a, **k: (_ for _ in ()).throw(
            RuntimeError(f"peer_stubs: {name}.{attr} is a stand-in"))})

    module.__getattr__ = missing
    return module


def _retry_with_stand_ins(step):
    for _ in range(len(PYIQA_STAND_INS) + 1):
        try:
            return step()
        except ModuleNotFoundError as exc:
            if exc.name not in PYIQA_STAND_INS or exc.name in sys.modules:
                raise
            sys.modules[exc.name] = _stand_in(exc.name)
    return step()


def import_pyiqa():
    """The pyiqa package with the api names ``import pyiqa`` binds (``create_metric``, …), or None when
    pyiqa is not installed. pyiqa/__init__ itself is not run (its dataset API needs more than the metrics);
    missing optional dependencies in :data:`PYIQA_STAND_INS` get stand-ins; torchvision is the stub."""
    package = sys.modules.get("pyiqa")
    if package is not None and hasattr(package, "create_metric"):
        return package
    if package is None and importlib.util.find_spec("pyiqa") is None:
        return None
    import_pyiqa_arch("psnr_arch")  # bare pyiqa, pyiqa.utils, pyiqa.archs packages (maybe made earlier)
    root = sys.modules["pyiqa"].__path__[0]
    for name in ("pyiqa.utils", "pyiqa.archs"):  # run their real __init__ in place: registered archs stay
        module = sys.modules[name]
        if not getattr(module, "_turboiqa_initialised", False):
            init = os.path.join(root, name.split(".")[1], "__init__.py")
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=module.__path__)
            module.__file__, module.__spec__, module.__package__ = init, spec, name
            _retry_with_stand_ins(lambda: spec.loader.exec_module(module))
            module._turboiqa_initialised = True
    api = _retry_with_stand_ins(lambda: importlib.import_module("pyiqa.api_helpers"))
    package = sys.modules["pyiqa"]
    package.create_metric, package.list_models = api.create_metric, api.list_models
    package.get_dataset_info = api.get_dataset_info
    return package
