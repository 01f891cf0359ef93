"""The generic training loop: split by reference, Adam, a checkpoint per epoch, exact resume, a streamed log.

Determinism: the weights are initialised from ``torch.manual_seed(seed)``; the split comes from
``numpy.random.RandomState(seed)``; each epoch's order from a generator seeded by (seed, epoch) alone, so a resumed
run visits the same batches as an uninterrupted one. The checkpoint holds the model, the optimiser, the epoch and
the RNG states; on the CPU with the same thread count a run resumed after any epoch ends in the identical state.

Files written to ``out``:

* ``checkpoint.pt``: after every epoch (written to a temporary file, then renamed);
* ``log.csv``: one row per epoch as it ends (train loss and its parts, validation SROCC/PLCC, seconds);
* ``<task.weights_name>`` (``deepqa.pth``): the final ``{'state_dict', 'meta'}`` that the metric loads.
"""
from __future__ import annotations

import csv
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

TRAIN_FRACTION = 0.8
LOG_FIELDS = ("epoch", "loss", "val_srocc", "val_plcc", "seconds")


@dataclass
class TrainResult:
    model_path: Path
    checkpoint_path: Path
    log_path: Path
    history: list = field(default_factory=list)  # the log rows, as dicts


def split_by_reference(pairs, seed: int, train_fraction: float = TRAIN_FRACTION):
    """(train indices, validation indices, train references, validation references): the references are shuffled
    by ``RandomState(seed)`` and ⌈fraction·n⌉ go to training, as the official DeepQA loader; every distorted image
    follows its reference."""
    refs = sorted({p.reference.name.lower() for p in pairs})
    if len(refs) < 2:
        raise ValueError(f"the dataset has {len(refs)} reference image(s); a split by reference needs at least 2")
    order = np.random.RandomState(seed).permutation(len(refs))
    n_train = min(len(refs) - 1, int(math.ceil(len(refs) * train_fraction)))
    train_refs = sorted(refs[i] for i in order[:n_train])
    val_refs = sorted(refs[i] for i in order[n_train:])
    chosen = set(train_refs)
    train_idx = [k for k, p in enumerate(pairs) if p.reference.name.lower() in chosen]
    val_idx = [k for k, p in enumerate(pairs) if p.reference.name.lower() not in chosen]
    return train_idx, val_idx, train_refs, val_refs


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _validate(task, model, pairs, val_idx, device, config):
    from ..eval.stats import plcc, srocc

    if not val_idx:
        return float("nan"), float("nan")
    model.eval()
    preds, labels = [], []
    with torch.no_grad():
        for k in val_idx:
            pair = pairs[k]
            dist, ref = pair.load()
            preds.append(task.predict(model, dist.to(device), ref.to(device), config))
            labels.append(pair.score)
    if len(set(preds)) < 2 or len(set(labels)) < 2:  # a constant prediction has no correlation
        return float("nan"), float("nan")
    # PLCC without the logistic mapping: a 5-parameter fit on a small validation set each epoch is unstable.
    return float(srocc(preds, labels)), float(plcc(preds, labels, mapping=None))


def _write_log(path: Path, rows: list[dict], fields: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def train_task(task, data, dataset_name: str, out, epochs: int | None = None, seed: int = 0, resume: bool = False,
               batch_size: int | None = None, lr: float | None = None, device: str = "cpu",
               progress: bool = True) -> TrainResult:
    """Train ``task`` on the opened dataset ``data``; see the module docstring for what is written."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = task.config(dataset_name, data)
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr)):
        if value is not None:
            config[key] = value
    if config["epochs"] < 1 or config["batch_size"] < 1 or not config["lr"] > 0:
        raise ValueError(f"epochs and batch_size must be at least 1 and lr positive, got {config}")
    pairs = [data[k] for k in range(len(data))]
    train_idx, val_idx, train_refs, val_refs = split_by_reference(pairs, seed)
    items = [(k, flip) for k in train_idx for flip in ((False, True) if config.get("flip", True) else (False,))]

    torch.manual_seed(seed)
    model = task.build_model().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config["lr"])
    checkpoint_path, log_path = out / "checkpoint.pt", out / "log.csv"
    start, history = 0, []
    if resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        saved = {k: state["config"].get(k) for k in ("dataset", "seed", "lr", "batch_size")}
        wanted = {"dataset": dataset_name, "seed": seed, "lr": config["lr"], "batch_size": config["batch_size"]}
        if saved != wanted:
            raise ValueError(f"{checkpoint_path} was written by another run ({saved}); this run is {wanted}")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        start, history = state["epoch"], list(state["history"])
    fields = list(LOG_FIELDS[:2]) + list(task.loss_parts) + list(LOG_FIELDS[2:])
    _write_log(log_path, history, fields)  # a resumed run rewrites the rows it keeps

    for epoch in range(start, config["epochs"]):
        began = time.perf_counter()
        model.train()
        order = [items[i] for i in _epoch_order(len(items), seed, epoch)]
        batches = [order[i:i + config["batch_size"]] for i in range(0, len(order), config["batch_size"])]
        sums = {name: 0.0 for name in ("loss", *task.loss_parts)}
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config['epochs']}", unit="batch", disable=not progress or None,
                   leave=False)
        for batch in bar:
            examples = []
            for k, flip in batch:
                dist, ref = pairs[k].load()
                examples.append(task.example(dist.to(device), ref.to(device), pairs[k].score, flip, config))
            parts = task.loss(model, examples)
            optimiser.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimiser.step()
            for name in sums:
                sums[name] += float(parts[name].detach()) * len(batch)
            bar.set_postfix(loss=f"{float(parts['loss'].detach()):.4g}")
        val_srocc, val_plcc = _validate(task, model, pairs, val_idx, device, config)
        row = {"epoch": epoch + 1, **{k: v / len(order) for k, v in sums.items()}, "val_srocc": val_srocc,
               "val_plcc": val_plcc, "seconds": round(time.perf_counter() - began, 3)}
        history.append(row)
        with open(log_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow(row)
        _save_atomic({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "epoch": epoch + 1,
                      "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(), "history": history,
                      "config": {**config, "dataset": dataset_name, "seed": seed}}, checkpoint_path)

    meta = {**task.metadata(config, data), "dataset": dataset_name, "epochs": config["epochs"], "seed": seed,
            "lr": config["lr"], "batch_size": config["batch_size"], "train_references": train_refs,
            "val_references": val_refs,
            "val_srocc": history[-1]["val_srocc"] if history else float("nan")}
    model_path = out / task.weights_name
    _save_atomic({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta},
                 model_path)
    return TrainResult(model_path, checkpoint_path, log_path, history)
