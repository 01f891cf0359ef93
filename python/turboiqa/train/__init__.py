"""Training the learned metrics on an IQA dataset: ``turboiqa train <task> --dataset NAME --root PATH``.

:func:`train` is generic; a *task* (one per trainable metric, listed in :data:`TASKS`) says how to build the
network, turn a (distorted, reference, score) pair into training examples, compute the loss and predict a score.
"""
from __future__ import annotations

import importlib

from .loop import TrainResult, split_by_reference, train_task

# task name → "module:class" (imported on use)
TASKS = {
    "deepqa": "turboiqa.train.deepqa:DeepQATask",
    "wadiqam_fr": "turboiqa.train.wadiqam:WaDIQaMTask",
}


def make_task(name: str, **options):
    if name not in TASKS:
        raise ValueError(f"unknown training task {name!r}; available: {sorted(TASKS)}")
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**options)


def train(task_name: str, dataset: str, root, out, epochs: int | None = None, seed: int = 0, resume: bool = False,
          batch_size: int | None = None, lr: float | None = None, device: str = "cpu", progress: bool = True,
          task_options: dict | None = None, **dataset_options) -> TrainResult:
    """Train ``task_name`` on ``dataset`` (a :func:`turboiqa.eval.datasets.open_dataset` name) under ``root``;
    checkpoints, the per-epoch log and the final weight file go to ``out``. ``task_options``: the task's own
    (WaDIQaM-FR: ``pooling``, ``patches_per_image``, ``convention``). See :func:`loop.train_task`."""
    from ..eval.datasets import open_dataset

    task = make_task(task_name, **(task_options or {}))
    data = open_dataset(dataset, root, **dataset_options)
    return train_task(task, data, dataset.lower(), out, epochs=epochs, seed=seed, resume=resume,
                      batch_size=batch_size, lr=lr, device=device, progress=progress)


__all__ = ["TASKS", "TrainResult", "make_task", "split_by_reference", "train", "train_task"]
