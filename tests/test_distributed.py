"""``--ray`` / turboiqa.distributed on a real local Ray cluster (2 CPUs, started once for the module): the output
files of ``evaluate``, ``score`` and ``video`` are byte-identical to the single-process runs, a worker killed by PID
mid-job costs no row and duplicates none, and a driver killed mid-job is resumed to the same final file."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import SHARED_DATA, TID2013, import_or_skip, skip_missing_shared_data
from dataset_folders import build_tid_folder as build_tid_folder_from

from turboiqa import distributed
from turboiqa.cli import main

VIDEO = SHARED_DATA / "video"
METRICS = ["psnr", "ssim"]
PYTHON_DIR = Path(distributed.__file__).resolve().parents[2]  # python/ (turboiqa/distributed/__init__.py)


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module; jobs find it initialised and leave it running. Skips only if it cannot
    start (Ray missing or refusing to run here)."""
    ray = import_or_skip("ray")
    os.environ.setdefault("PYTHONPATH", str(PYTHON_DIR))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"a local Ray cluster cannot start here: {exc}")
    yield ray
    ray.shutdown()


def build_tid_folder(root: Path, per_reference: int = 12) -> int:
    """dataset_folders.build_tid_folder over the shared TID2013 pairs (skips when they are missing)."""
    if not (TID2013 / "mos.csv").is_file():
        skip_missing_shared_data(TID2013 / "mos.csv")
    return build_tid_folder_from(root, TID2013, per_reference)


@pytest.fixture(scope="module")
def tid_single(tmp_path_factory):
    """The dataset folder and the single-process ``evaluate`` output (the reference every Ray run must equal)."""
    import_or_skip("scipy")
    base = tmp_path_factory.mktemp("tid")
    n = build_tid_folder(base / "tid2013")
    assert n >= 60
    out = base / "single"
    assert main(["evaluate", "--dataset", "tid2013", "--root", str(base / "tid2013"), "--metric", ",".join(METRICS),
                 "--out", str(out), "--bootstrap", "50", "--no-plots", "--batch-size", "4"]) == 0
    return base / "tid2013", out, n


def evaluate_args(root, out, *extra):
    return ["evaluate", "--dataset", "tid2013", "--root", str(root), "--metric", ",".join(METRICS), "--out", str(out),
            "--bootstrap", "50", "--no-plots", "--batch-size", "4", *extra]


def test_evaluate_on_ray_is_byte_identical(ray_cluster, tid_single, tmp_path, capsys):
    root, single, n = tid_single
    out = tmp_path / "ray"
    assert main(evaluate_args(root, out, "--ray", "--pairs-per-task", "8")) == 0
    assert "SROCC" in capsys.readouterr().out
    assert (out / "tid2013_scores.csv").read_bytes() == (single / "tid2013_scores.csv").read_bytes()
    assert (out / "tid2013_table.txt").read_text() == (single / "tid2013_table.txt").read_text()
    with open(out / "tid2013_scores.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == n


def test_score_folders_on_ray_is_byte_identical(ray_cluster, tid_single, tmp_path):
    root = tid_single[0]
    refs, dists = tmp_path / "ref", tmp_path / "dist"
    refs.mkdir()
    dists.mkdir()
    for p in sorted((root / "distorted_images").iterdir())[:14]:
        (dists / p.name).symlink_to(p.resolve())
        (refs / p.name).symlink_to((root / "reference_images" / f"I{p.name[1:3]}.BMP").resolve())
    (dists / "broken.png").write_bytes(b"not an image")  # one per-pair failure, recorded as today
    (refs / "broken.png").symlink_to(next(refs.iterdir()).resolve())
    outputs = []
    for extra in ([], ["--ray", "--pairs-per-task", "3"]):
        out = tmp_path / f"scores{len(extra)}.csv"
        assert main(["score", str(dists), str(refs), "--metric", "psnr,ssim", "--csv", "--out", str(out),
                     *extra]) == 1  # exit 1: the broken pair
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == 16 and b"broken.png" in outputs[0]
    with open(tmp_path / "scores3.csv", newline="") as f:  # the Ray rows: DIST (first argument) is 'distorted'
        rows = list(csv.DictReader(f))
    assert all(Path(r["distorted"]).parent == dists and Path(r["reference"]).parent == refs for r in rows)


def test_score_with_a_display_on_ray_is_byte_identical(ray_cluster, tmp_path):
    """--display reaches the workers: 16-bit PQ PNGs and EXRs scored by cvvdp and pu21_psnr as in one process."""
    from hdr_common import make_hdr_files

    make_hdr_files(tmp_path)
    for ref, dist, display in (("ref_pq.png", "dist_pq.png", "standard_hdr_pq"),
                               ("ref.exr", "dist.exr", "standard_hdr_linear")):
        outputs = []
        for extra in ([], ["--ray"]):
            out = tmp_path / f"{display}{len(extra)}.csv"
            assert main(["score", str(tmp_path / dist), str(tmp_path / ref), "--metric", "cvvdp,pu21_psnr",
                         "--display", display, "--display-param", "ambient=20", "--csv", "--out", str(out),
                         *extra]) == 0
            outputs.append(out.read_bytes())
        assert outputs[0] == outputs[1]
        assert b"nan" not in outputs[0].lower()


def reencode(src: Path, dst: Path, gop: int = 10, bframes: int = 2, preset: str = "medium",
             frames: int | None = None) -> Path:
    """H.264 copy of ``src`` (its first ``frames``) with a keyframe every ``gop`` frames and B-frames (so ranges
    really seek)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = inp.streams.video[0]
        rate = Fraction(s.average_rate)
        o = out.add_stream("libx264", rate=rate)
        o.width, o.height, o.pix_fmt = s.codec_context.width, s.codec_context.height, "yuv420p"
        o.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": str(bframes), "crf": "32",
                     "preset": preset}
        for i, frame in enumerate(inp.decode(s)):
            if frames is not None and i >= frames:
                break
            frame.pts, frame.time_base = i, 1 / rate
            for packet in o.encode(frame):
                out.mux(packet)
        for packet in o.encode():
            out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    import_or_skip("av")
    ref, dist = VIDEO / "carphone_pristine.mp4", VIDEO / "carphone_distorted.mp4"
    if not (ref.is_file() and dist.is_file()):
        skip_missing_shared_data(VIDEO, "shared video clips")
    base = tmp_path_factory.mktemp("clips")
    return {"shared": (ref, dist),
            "gop": (reencode(ref, base / "carphone_ref_g10.mp4"), reencode(dist, base / "carphone_dist_g10.mp4"))}


@pytest.mark.parametrize("kind,suffix,extra", [
    ("shared", ".csv", []),
    ("gop", ".jsonl", []),
    ("gop", ".csv", ["--every", "3", "--start", "5", "--end", "101"]),
    ("gop", ".csv", ["--dist-delay", "2", "--shortest"]),
])
def test_video_frame_ranges_are_byte_identical(ray_cluster, clips, tmp_path, kind, suffix, extra):
    ref, dist = clips[kind]
    args = ["video", str(dist), str(ref), "--metric", "psnr,ssim", "--no-progress", "--batch", "4", *extra]
    single, on_ray = tmp_path / f"single{suffix}", tmp_path / f"ray{suffix}"
    assert main([*args, "--out", str(single)]) == 0
    assert main([*args, "--out", str(on_ray), "--ray", "--frames-per-task", "12"]) == 0
    assert on_ray.read_bytes() == single.read_bytes()
    summary = json.loads(on_ray.with_name("ray.summary.json").read_text())
    assert summary["ray"]["tasks"] >= 8
    assert (summary["distorted"], summary["reference"]) == (str(dist), str(ref))  # DIST first on Ray too
    assert summary["metrics"] == json.loads(single.with_name("single.summary.json").read_text())["metrics"]


def test_range_seeks_to_a_keyframe_with_the_frames_of_one_pass(clips):
    from turboiqa.video import score

    ref, dist = clips["gop"]
    index = distributed.frame_index(ref)
    assert index["seekable"] and index["keyframes"][:3] == [0, 10, 20]
    # distorted first (index_dist before index_ref), as turboiqa.video.score; VIFp is asymmetric
    rows, error, timing = distributed.score_range(dist, ref, ["psnr", "vif_p"], 37, 53, distributed.frame_index(dist),
                                                  index)
    assert error is None and timing["keyframes_back"] == 0
    assert rows == list(score(distorted=dist, reference=ref, metrics=["psnr", "vif_p"], start=37, end=53))
    swapped = list(score(distorted=ref, reference=dist, metrics=["vif_p"], start=37, end=53))
    assert all(abs(a["vif_p"] - b["vif_p"]) > 1e-3 for a, b in zip(rows, swapped))  # the orders are told apart


def ray_worker_pids(task_name: str) -> list[int]:
    """PIDs of the Ray workers executing ``task_name`` now (their process title is ray::<task>)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(f"ray::{task_name}".encode()):
                pids.append(int(entry))
    return pids


class WorkerKiller:
    """Kills (SIGKILL, by PID) up to ``count`` Ray workers caught executing ``task_name``, in a thread."""

    def __init__(self, task_name: str, count: int = 1):
        self.task_name, self.count, self.killed = task_name, count, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.hunt, daemon=True)

    def hunt(self):
        while not self.stop.is_set() and len(self.killed) < self.count:
            for pid in ray_worker_pids(self.task_name):
                try:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                except ProcessLookupError:
                    pass
                time.sleep(0.3)  # let the retry start before the next kill
            time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_worker_killed_mid_job_loses_and_duplicates_nothing(ray_cluster, tid_single, clips, tmp_path):
    from turboiqa.eval.datasets import TID2013 as TID2013Dataset

    root, single, n = tid_single
    out = tmp_path / "tid2013_scores.csv"
    with WorkerKiller("_dataset_task", count=1) as killer:
        rows, stats = distributed.score_dataset(TID2013Dataset(root), METRICS, out, batch_size=4, pairs_per_task=4,
                                                progress=False, max_retries=5, ray=ray_cluster)
    assert killer.killed, "no worker was caught mid-task"
    assert stats.pairs_scored == n and stats.pairs_failed == 0
    assert out.read_bytes() == (single / "tid2013_scores.csv").read_bytes()

    ref, dist = clips["gop"]
    args = ["video", str(dist), str(ref), "--metric", "psnr,ms_ssim", "--scales", "3", "--no-progress", "--batch", "2"]
    assert main([*args, "--out", str(tmp_path / "single.csv")]) == 0
    with WorkerKiller("_video_task", count=1) as killer:
        assert main([*args, "--out", str(tmp_path / "ray.csv"), "--ray", "--frames-per-task", "4",
                     "--max-retries", "4"]) == 0
    assert killer.killed, "no worker was caught mid-task"
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "single.csv").read_bytes()


def driver(args, env_address) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "turboiqa", *args, "--ray", env_address], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(jobs, timeout: float = 90) -> list[int]:
    """``jobs``: [(process, path, min_lines)]. SIGKILL each process once its ``path`` has ``min_lines`` lines;
    the line counts at the kills."""
    deadline = time.monotonic() + timeout
    counts = [None] * len(jobs)
    while None in counts and time.monotonic() < deadline:
        for k, (proc, path, min_lines) in enumerate(jobs):
            if counts[k] is not None:
                continue
            if proc.poll() is not None:
                for other, *_ in jobs:
                    other.kill()
                raise AssertionError(f"the driver ended (rc {proc.returncode}) before {path} had {min_lines} "
                                     f"lines: {proc.stderr.read().decode()[-2000:]}")
            if path.is_file() and path.read_bytes().count(b"\n") >= min_lines:
                proc.kill()
                proc.wait()
                counts[k] = path.read_bytes().count(b"\n")
        time.sleep(0.005)
    for proc, *_ in jobs:
        proc.kill()
    assert None not in counts, "timed out waiting for the drivers to write rows"
    return counts


def test_driver_killed_then_resumed_gives_the_same_file(ray_cluster, tid_single, clips, tmp_path):
    """Both jobs, driven by subprocesses that join this cluster by address (at the same time: each new driver
    starts its own workers) and are killed mid-job, then resumed here."""
    address = ray_cluster.get_runtime_context().gcs_address
    root, single, n = tid_single
    out = tmp_path / "eval"
    ref, dist = clips["gop"]
    args = ["video", str(dist), str(ref), "--metric", "psnr,ssim,ms_ssim", "--scales", "3", "--no-progress",
            "--batch", "2"]
    on_ray = tmp_path / "ray.csv"
    jobs = [(driver(evaluate_args(root, out, "--pairs-per-task", "4"), address), out / "tid2013_scores.csv", 9),
            (driver([*args, "--out", str(on_ray), "--frames-per-task", "4"], address), on_ray, 20)]
    single_video = tmp_path / "single.csv"
    assert main([*args, "--out", str(single_video)]) == 0  # meanwhile
    evaluate_lines, video_lines = kill_when(jobs)
    assert evaluate_lines < n + 1 and video_lines < 121

    assert main(evaluate_args(root, out, "--ray", address, "--pairs-per-task", "4")) == 0
    assert (out / "tid2013_scores.csv").read_bytes() == (single / "tid2013_scores.csv").read_bytes()
    assert main([*args, "--out", str(on_ray), "--resume", "--ray", address, "--frames-per-task", "4"]) == 0
    assert on_ray.read_bytes() == single_video.read_bytes()


def test_info_reports_the_cluster(ray_cluster, capsys):
    assert main(["info", "--ray"]) == 0
    printed = capsys.readouterr().out
    assert "ray CPUs: 2 " in printed and "node(s)" in printed


def test_clear_errors_without_ray_or_cluster(monkeypatch, capsys, tmp_path):
    assert main(["info", "--ray", "127.0.0.1:9"]) == 2
    assert "no Ray cluster reachable" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(distributed.RayNotInstalled, match=r"turboiqa\[ray\]"):
        distributed.require_ray()
    assert main(["video", "a.mp4", "b.mp4", "--ray"]) == 2
    assert "pip install 'turboiqa[ray]'" in capsys.readouterr().err


def test_range_steps_back_a_keyframe_when_the_seek_hides_frames(clips):
    """Frames the seek does not deliver as the table says (an open GOP, timestamps that do not match) make the task
    decode from the keyframe before (here: the start), with the same rows."""
    from turboiqa.video import score

    ref, dist = clips["gop"]
    index = distributed.frame_index(ref)
    doctored = {**index, "pts": index["pts"] + 1, "keyframes": [0, 20]}
    rows, error, timing = distributed.score_range(dist, ref, ["psnr"], 25, 40, doctored, doctored)
    assert error is None and timing["keyframes_back"] == 1
    assert rows == list(score(dist, ref, ["psnr"], start=25, end=40))


def test_video_catalogue_shares_the_cluster(ray_cluster, clips, tmp_path):
    """run_videos: several pairs, one ordered stream of tasks (the short one whole, the other in ranges); each
    file equals its single-process run, and a pair that cannot be decoded past its start is recorded, not fatal."""
    from turboiqa.video import run

    (ref, dist), (gref, gdist) = clips["shared"], clips["gop"]
    expected = {}
    for r, d in ((ref, dist), (gref, gdist)):
        run(d, r, METRICS, out=tmp_path / f"single_{d.stem}.csv", progress=False, batch_size=4)
        expected[d.stem] = (tmp_path / f"single_{d.stem}.csv").read_bytes()
    short = reencode(dist, tmp_path / "short.mp4", frames=50)  # 50 frames against 120: a length mismatch
    pairs = [(dist, ref), (short, gref), (gdist, gref)]  # (distorted, reference), as score_pairs
    summaries = distributed.run_videos(pairs, tmp_path / "out", METRICS, frames_per_task=48, batch_size=4,
                                       progress=False, ray=ray_cluster)
    for name, data in expected.items():
        assert (tmp_path / "out" / f"{name}.csv").read_bytes() == data
    assert [s["ray"]["tasks"] for s in summaries] == [3, 3, 3]
    assert "error" not in summaries[0] and "error" not in summaries[2]
    assert summaries[1]["error_frame"] == 50 and summaries[1]["frames"] == 50
    assert (tmp_path / "out" / "short.csv").read_bytes().count(b"\n") == 51
