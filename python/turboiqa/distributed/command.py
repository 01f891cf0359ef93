"""The ``--ray`` options of the ``evaluate``, ``video`` and ``score`` commands, and ``turboiqa info``'s cluster
lines."""
from __future__ import annotations

from .cluster import DEFAULT_MAX_RETRIES


def add_ray_arguments(parser, per_task: str, default: int | None = None) -> None:
    """``--ray [ADDRESS]``, ``--cpus-per-task``, ``--gpus-per-task``, ``--max-retries`` and ``--<per_task>-per-task``
    (``pairs`` or ``frames``) on a job's parser."""
    group = parser.add_argument_group("Ray (scale-out; pip install 'turboiqa[ray]')")
    group.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run the job as Ray tasks: on a local cluster started for it, or on the cluster at "
                            "ADDRESS (HOST:6379, ray://HOST:10001 or auto); same output files as without --ray")
    group.add_argument("--cpus-per-task", type=float, default=1, metavar="N",
                       help="CPUs each task asks for (default 1)")
    group.add_argument("--gpus-per-task", type=float, default=0, metavar="N",
                       help="GPUs each task asks for (default 0; >0 scores on the task's GPU: --device cuda)")
    group.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES, metavar="N",
                       help="re-runs of a task whose worker died (default %(default)s)")
    group.add_argument(f"--{per_task}-per-task", type=int, default=default, metavar="N",
                       help=f"{per_task} per task (default: "
                            f"{default if default else '4 × --batch-size'})")


def ray_options(args, per_task: str) -> dict:
    if args.cpus_per_task < 0 or args.gpus_per_task < 0 or args.max_retries < 0:
        raise ValueError("--cpus-per-task, --gpus-per-task and --max-retries must be ≥ 0")
    value = getattr(args, f"{per_task}_per_task")
    if value is not None and value < 1:
        raise ValueError(f"--{per_task}-per-task must be ≥ 1, got {value}")
    options = {"cpus_per_task": args.cpus_per_task, "gpus_per_task": args.gpus_per_task,
               "max_retries": args.max_retries}
    if value is not None:
        options[f"{per_task}_per_task"] = value
    return options


def format_resources(info: dict) -> str:
    res, avail = info["resources"], info["available"]
    gib = 1024 ** 3
    lines = [f"ray cluster: {info['address']}, {info['nodes']} node(s)",
             f"ray CPUs: {res.get('CPU', 0):g} ({avail.get('CPU', 0):g} free)",
             f"ray GPUs: {res.get('GPU', 0):g} ({avail.get('GPU', 0):g} free)",
             f"ray memory: {res.get('memory', 0) / gib:.1f} GiB, "
             f"object store {res.get('object_store_memory', 0) / gib:.1f} GiB"]
    for n in info["per_node"]:
        r = n["resources"]
        lines.append(f"ray node {n['host']} ({n['address']}): CPU {r.get('CPU', 0):g}, GPU {r.get('GPU', 0):g}")
    return "\n".join(lines)
