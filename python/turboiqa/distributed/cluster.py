"""Starting or joining a Ray cluster, and what every job shares: task options and placement, a progress bar,
results in submission order."""
from __future__ import annotations

import socket
import sys
from contextlib import contextmanager

RAY_INSTALL = "pip install 'turboiqa[ray]' (or: pip install ray)"
DEFAULT_CHUNK_FRAMES = 1024
DEFAULT_MAX_RETRIES = 3


class RayNotInstalled(ImportError):
    """Ray is needed for ``--ray`` / :mod:`turboiqa.distributed`; the message says which extra installs it."""


class ClusterUnreachable(ConnectionError):
    """``--ray ADDRESS``: no Ray cluster answers at that address."""


def require_ray():
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalled(f"--ray needs Ray, which is not installed: {RAY_INSTALL}") from exc
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A fast, clear failure for ``HOST:PORT`` / ``ray://HOST:PORT`` that nothing listens on (``ray.init`` itself
    retries for a long time before it gives up)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ClusterUnreachable(f"--ray {address}: expected HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterUnreachable(f"--ray {address}: no Ray cluster reachable there ({exc.strerror or exc}); start "
                                 f"one with `ray start --head` on that machine, or omit the address to run a local "
                                 f"cluster") from exc


@contextmanager
def cluster(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None):
    """Ray, initialised: joined to ``address``, or a local cluster (``num_cpus``/``num_gpus`` of this machine,
    default all) started for the duration of the block and shut down after it. An already initialised Ray (a
    notebook's) is used as is and left running."""
    ray = require_ray()
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": True,
              "logging_level": "warning"}
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ClusterUnreachable(f"--ray {address}: cannot join the Ray cluster: {exc}") from exc
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_resources(address: str | None = None) -> dict:
    """Nodes and total/available resources of the cluster at ``address`` (a local one when None)."""
    with cluster(address) as ray:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return {"address": address or "local", "nodes": len(nodes),
                "resources": {k: v for k, v in sorted(ray.cluster_resources().items()) if "node:" not in k},
                "available": {k: v for k, v in sorted(ray.available_resources().items()) if "node:" not in k},
                "per_node": [{"host": n.get("NodeManagerHostname"), "address": n.get("NodeManagerAddress"),
                              "resources": {k: v for k, v in n.get("Resources", {}).items() if "node:" not in k}}
                             for n in nodes]}


def _slots(ray, cpus_per_task: float, gpus_per_task: float) -> int:
    res = ray.cluster_resources()
    slots = []
    if cpus_per_task:
        slots.append(res.get("CPU", 0) / cpus_per_task)
    if gpus_per_task:
        slots.append(res.get("GPU", 0) / gpus_per_task)
    return max(1, int(min(slots))) if slots else 1


class _Progress:
    """tqdm over finished items with the tasks running / pending (submitted, waiting for a slot) as a postfix."""

    def __init__(self, total, initial, unit, enabled):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc="scoring (ray)", unit=unit, file=sys.stderr,
                        disable=not enabled or None, dynamic_ncols=True)

    def tasks(self, in_flight: int, slots: int):
        running = min(in_flight, slots)
        self.bar.set_postfix({"running": running, "pending": in_flight - running}, refresh=False)

    def update(self, n):
        self.bar.update(n)

    def close(self):
        self.bar.close()


def ordered_results(ray, remote, jobs, *, slots: int, progress: _Progress | None = None, window: int | None = None):
    """Run ``remote.remote(*args)`` for each ``args`` of ``jobs`` and yield ``(k, result)`` in the order of
    ``jobs`` (results that arrive early are held back). At most ``window`` tasks are submitted or held at once
    (default ``2 × slots + 2``), bounding the driver's memory and what a killed driver loses. A task whose retries
    are exhausted yields ``(k, exc)`` with the Ray exception instead of raising."""
    window = window or 2 * slots + 2
    jobs = list(jobs)
    in_flight: dict = {}
    held: dict = {}
    submitted = written = 0
    try:
        while written < len(jobs):
            while submitted < len(jobs) and len(in_flight) + len(held) < window:
                in_flight[remote.remote(*jobs[submitted])] = submitted
                submitted += 1
            if progress is not None:
                progress.tasks(len(in_flight), slots)
            if written not in held:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    k = in_flight.pop(ref)
                    try:
                        held[k] = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        held[k] = exc
            while written in held:
                yield written, held.pop(written)
                written += 1
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)


def _task_options(cpus_per_task: float, gpus_per_task: float, max_retries: int) -> dict:
    return {"num_cpus": cpus_per_task, "num_gpus": gpus_per_task, "max_retries": max_retries,
            "retry_exceptions": False}


def _placement(device, cpus_per_task: float, gpus_per_task: float) -> tuple[str, float, float]:
    """(the device a task scores on, CPUs, GPUs it asks for): ``--device cuda`` asks for one GPU per task unless
    ``gpus_per_task`` says otherwise, and a task given GPUs scores on ``cuda`` (Ray sets CUDA_VISIBLE_DEVICES to
    the task's GPU, so ``cuda:N`` of the driver's numbering would not mean the same device there)."""
    if str(device).startswith("cuda") and not gpus_per_task:
        gpus_per_task = 1
    if cpus_per_task < 0 or gpus_per_task < 0 or not (cpus_per_task or gpus_per_task):
        raise ValueError(f"cpus_per_task ({cpus_per_task}) and gpus_per_task ({gpus_per_task}) must be ≥ 0, "
                         "not both 0")
    return ("cuda" if gpus_per_task else str(device)), cpus_per_task, gpus_per_task
