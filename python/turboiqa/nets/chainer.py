"""Chainer checkpoints (the official deepIQA models) read without Chainer.

Chainer's serializers write a model's parameters as a tree of arrays named ``<link>/<param>`` — ``conv1/W``,
``conv1/b``, ``fc1/W`` … — either as a NumPy ``.npz`` archive (``save_npz``: the names are the archive's keys) or as
HDF5 (``save_hdf5``: a group per link holding one dataset per parameter). Convolution ``W`` is (out, in, kh, kw) and
Linear ``W`` is (out, in), as in PyTorch, so conversion only renames: ``W`` → ``weight``, ``b`` → ``bias``, ``/`` → ``.``.
HDF5 needs ``h5py`` (``pip install h5py``); ``.npz`` needs only NumPy.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PARAM_NAMES = {"W": "weight", "b": "bias"}


class ChainerFormatError(ValueError):
    pass


def chainer_format(path) -> str | None:
    """'hdf5', 'npz' or None (a torch checkpoint or anything else). A torch zip holds ``data.pkl``; an npz only
    ``.npy`` members."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        return "hdf5"
    if head[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
    return None


def read_arrays(path) -> dict[str, np.ndarray]:
    """Every parameter array of a Chainer checkpoint, keyed ``link/param`` (leading ``/`` dropped)."""
    path = Path(path)
    kind = chainer_format(path)
    if kind == "npz":
        with np.load(path, allow_pickle=False) as archive:
            return {k.lstrip("/"): archive[k] for k in archive.files}
    if kind == "hdf5":
        try:
            import h5py
        except ImportError as exc:
            raise ImportError(f"{path} is a Chainer HDF5 checkpoint: reading it needs h5py (pip install h5py)") from exc
        arrays = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
        return arrays
    raise ChainerFormatError(f"{path} is neither a Chainer .npz nor a Chainer HDF5 checkpoint")


def to_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``conv1/W`` → ``conv1.weight`` (float32 tensors, shapes unchanged). Entries that are not link parameters
    (an optimiser's state saved alongside, scalars) are refused by name so nothing is dropped silently."""
    state = {}
    for name, array in arrays.items():
        *links, param = name.split("/")
        if not links or param not in PARAM_NAMES:
            raise ChainerFormatError(f"unexpected entry {name!r} in a Chainer model (expected <link>/W or <link>/b)")
        state[".".join(links + [PARAM_NAMES[param]])] = torch.from_numpy(np.ascontiguousarray(array, np.float32))
    return state


def load_state_dict(path) -> dict[str, torch.Tensor]:
    return to_state_dict(read_arrays(path))


def convert(source, target=None) -> Path:
    """Write the PyTorch state dict of Chainer checkpoint ``source`` to ``target`` (default: next to it, ``.pth``);
    returns the path written."""
    source = Path(source).expanduser()
    target = Path(target).expanduser() if target is not None else source.with_suffix(".pth")
    if target.is_dir():
        target = target / source.with_suffix(".pth").name
    state = load_state_dict(source)
    partial = target.with_name(target.name + ".partial")
    torch.save(state, partial)
    partial.replace(target)
    return target
