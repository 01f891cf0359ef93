"""The video job: pairing and selection, resume, truncated / corrupt input, mismatched inputs, output, CLI."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import turboiqa
from conftest import import_or_skip
from video_common import (
    add_noise,
    carphone,
    remux_faststart,
    smooth_frames,
    write_video,
)

import_or_skip("av")
video = import_or_skip("turboiqa.video")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Small lossless synthetic clips (ffv1 in Matroska: no frame count in the header)."""
    root = tmp_path_factory.mktemp("clips")
    frames = smooth_frames(12, 48, 64)
    noisy = add_noise(frames, 8)
    return {
        "ref": write_video(root / "ref.mkv", frames),
        "dist": write_video(root / "dist.mkv", noisy),
        "late": write_video(root / "late.mkv", np.concatenate([np.zeros_like(frames[:2]), frames])),
        "short": write_video(root / "short.mkv", noisy[:7]),
        "wide": write_video(root / "wide.mkv", add_noise(smooth_frames(12, 48, 80), 8)),
        "fps30": write_video(root / "fps30.mkv", noisy, fps=30),
        "root": root,
    }


@pytest.fixture(scope="module")
def blur_pair(tmp_path_factory):
    """(blur, sharp): 3 frames and a 7×7 box-blurred copy, so that VIFp (asymmetric) tells the orders apart."""
    root = tmp_path_factory.mktemp("blur")
    frames = smooth_frames(3, 48, 64, seed=5)
    box = np.ones(7, np.float32) / 7
    blurred = frames.astype(np.float32)
    for axis in (1, 2):
        blurred = np.apply_along_axis(lambda v: np.convolve(v, box, mode="same"), axis, blurred)
    sharp = write_video(root / "sharp.mkv", frames)
    blur = write_video(root / "blur.mkv", np.clip(np.rint(blurred), 0, 255).astype(np.uint8))
    return blur, sharp


def frames_of(rows):
    return [r["frame"] for r in rows]


def test_score_yields_records_in_order(clips):
    rows = list(video.score(clips["dist"], clips["ref"], ["psnr", "ssim"], batch_size=5))
    assert frames_of(rows) == list(range(12))
    assert list(rows[0]) == ["frame", "pts", "psnr", "ssim"]
    assert rows[1]["pts"] == pytest.approx(1 / 25)
    assert all(20 < r["psnr"] < 40 and 0 < r["ssim"] < 1 for r in rows)


def test_batch_size_does_not_change_scores(clips):
    one = list(video.score(clips["dist"], clips["ref"], ["psnr", "ssim"], batch_size=1))
    many = list(video.score(clips["dist"], clips["ref"], ["psnr", "ssim"], batch_size=7))
    assert one == many


def test_selection_start_end_every(clips):
    rows = list(video.score(clips["dist"], clips["ref"], ["psnr"], start=2, end=11, every=3))
    assert frames_of(rows) == [2, 5, 8]


def test_dist_delay_aligns_a_late_start(clips):
    rows = list(video.score(clips["late"], clips["ref"], ["psnr"], dist_delay=2))
    assert frames_of(rows) == list(range(12))
    assert all(r["psnr"] == float("inf") for r in rows)  # lossless copy, aligned
    misaligned = list(video.score(clips["late"], clips["ref"], ["psnr"], shortest=True))
    assert all(np.isfinite(r["psnr"]) for r in misaligned)


def test_size_mismatch_is_refused_or_scaled(clips):
    with pytest.raises(video.VideoMismatchError, match=r"frame sizes differ.*64×48.*80×48.*--scale"):
        list(video.score(clips["wide"], clips["ref"], ["psnr"]))
    rows = list(video.score(clips["wide"], clips["ref"], ["psnr", "ssim"], scale=True))
    assert frames_of(rows) == list(range(12))


def test_frame_rate_mismatch_is_refused_unless_ignored(clips):
    with pytest.raises(video.VideoMismatchError, match=r"frame rates differ.*25 fps.*30 fps"):
        list(video.score(clips["fps30"], clips["ref"], ["psnr"]))
    assert len(list(video.score(clips["fps30"], clips["ref"], ["psnr"], ignore_fps=True))) == 12


def test_shorter_distorted_video_names_the_frame(clips):
    rows = []
    with pytest.raises(video.VideoMismatchError, match="ended at frame 7") as info:
        for row in video.score(clips["short"], clips["ref"], ["psnr"], batch_size=4):
            rows.append(row)  # noqa: PERF402 - keeps the rows yielded before the error
    assert info.value.frame == 7
    assert frames_of(rows) == list(range(7))  # every frame before it was delivered
    assert frames_of(video.score(clips["short"], clips["ref"], ["psnr"], shortest=True)) == list(range(7))


def test_bad_arguments_name_themselves(clips):
    for kwargs, pattern in [({"every": 0}, "every"), ({"batch_size": 0}, "batch_size"), ({"end": 0}, "end"),
                            ({"device": "cuda"} if not torch.cuda.is_available() else {"device": "tpu"}, "device"),
                            ({"colorspace": "bt999"}, "colorspace"), ({"ssim_convention": "nope"}, "ssim_convention")]:
        with pytest.raises(ValueError, match=pattern):
            list(video.score(clips["dist"], clips["ref"], ["psnr", "ssim"], **kwargs))
    with pytest.raises(ValueError, match="unknown metric"):
        list(video.score(clips["dist"], clips["ref"], ["psnr", "vmaf"]))
    with pytest.raises(FileNotFoundError, match="reference video"):
        list(video.score(clips["dist"], clips["root"] / "missing.mkv", ["psnr"]))


def test_rgb_metric_uses_stream_colour_metadata(clips):
    rows = list(video.score(clips["dist"], clips["ref"], ["fsimc"], end=2))
    assert all(0 < r["fsimc"] <= 1 for r in rows)
    bt709 = list(video.score(clips["dist"], clips["ref"], ["fsimc"], end=2, colorspace="bt709", color_range="full"))
    assert [r["fsimc"] for r in bt709] != [r["fsimc"] for r in rows]


def test_run_streams_rows_and_summary(clips, tmp_path):
    out = tmp_path / "scores.csv"
    summary = video.run(clips["dist"], clips["ref"], ["psnr", "ssim"], out=out, progress=False, plot=True)
    lines = out.read_text().splitlines()
    assert lines[0] == "frame,pts,psnr,ssim" and len(lines) == 13
    on_disk = json.loads((tmp_path / "scores.summary.json").read_text())
    assert on_disk["frames"] == 12 == summary["frames"]
    psnr = np.array([float(line.split(",")[2]) for line in lines[1:]])
    stats = on_disk["metrics"]["psnr"]
    assert stats["mean"] == pytest.approx(psnr.mean())
    assert stats["harmonic_mean"] == pytest.approx(len(psnr) / np.sum(1 / psnr))
    assert stats["min"] == pytest.approx(psnr.min()) and stats["p50"] == pytest.approx(np.median(psnr))
    assert (tmp_path / "scores.png").stat().st_size > 0
    with pytest.raises(FileExistsError, match="--resume"):
        video.run(clips["dist"], clips["ref"], ["psnr", "ssim"], out=out, progress=False)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_resume_after_a_kill_gives_identical_output(tmp_path, suffix):
    ref, dist = carphone()
    full = tmp_path / f"full{suffix}"
    video.run(dist, ref, ["psnr", "ssim"], out=full, progress=False)
    # A run killed while writing row 57: 57 complete rows plus half a line on disk.
    killed = tmp_path / f"killed{suffix}"
    lines = full.read_bytes().splitlines(keepends=True)
    head = 57 + (suffix == ".csv")
    killed.write_bytes(b"".join(lines[:head]) + lines[head][: len(lines[head]) // 2])
    summary = video.run(dist, ref, ["psnr", "ssim"], out=killed, resume=True, progress=False)
    assert killed.read_bytes() == full.read_bytes()
    assert summary["resumed_frames"] == 57 and summary["frames"] == 120
    first = json.loads((tmp_path / f"full{suffix}").with_name("full.summary.json").read_text())
    assert summary["metrics"] == first["metrics"]


def test_interrupted_run_resumes_to_the_same_file(clips, tmp_path, monkeypatch):
    """Ctrl-C (or a crash) mid-run: rows so far are on disk with a summary; --resume finishes the same file."""
    from turboiqa import rows

    full = tmp_path / "full.jsonl"
    video.run(clips["dist"], clips["ref"], ["psnr", "ssim"], out=full, progress=False, batch_size=4)
    write, written = rows.RowWriter.write, []

    def interrupting_write(self, row):
        if len(written) == 6:
            raise KeyboardInterrupt
        written.append(row)
        write(self, row)

    monkeypatch.setattr(rows.RowWriter, "write", interrupting_write)
    out = tmp_path / "run.jsonl"
    with pytest.raises(KeyboardInterrupt):
        video.run(clips["dist"], clips["ref"], ["psnr", "ssim"], out=out, progress=False, batch_size=4)
    monkeypatch.undo()
    assert len(out.read_text().splitlines()) == 6
    assert json.loads((tmp_path / "run.summary.json").read_text())["frames"] == 6
    video.run(clips["dist"], clips["ref"], ["psnr", "ssim"], out=out, resume=True, progress=False, batch_size=5)
    assert out.read_bytes() == full.read_bytes()


def test_resume_refuses_other_metrics(clips, tmp_path):
    out = tmp_path / "s.csv"
    video.run(clips["dist"], clips["ref"], ["psnr"], out=out, progress=False, end=3)
    with pytest.raises(video.VideoError, match="columns"):
        video.run(clips["dist"], clips["ref"], ["psnr", "ssim"], out=out, resume=True, progress=False)


def test_truncated_file_keeps_earlier_frames(tmp_path):
    ref, dist = carphone()
    streamable = remux_faststart(dist, tmp_path / "dist_faststart.mp4")
    data = streamable.read_bytes()
    cut = tmp_path / "dist_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "cut.jsonl"
    with pytest.raises(video.VideoDecodeError, match=r"ended after (\d+) frames but its header declares 120") as info:
        video.run(cut, ref, ["psnr", "ssim"], out=out, progress=False)
    bad = info.value.frame
    assert 0 < bad < 120
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert frames_of(kept) == list(range(bad))
    reference_rows = list(video.score(dist, ref, ["psnr", "ssim"], end=bad))
    assert kept == reference_rows
    summary = json.loads((tmp_path / "cut.summary.json").read_text())
    assert summary["error_frame"] == bad and summary["frames"] == bad


def test_unreadable_file_is_a_clear_error(tmp_path):
    ref, dist = carphone()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(dist.read_bytes()[:3000])  # index at the end of this MP4: nothing is readable
    with pytest.raises(video.VideoDecodeError, match="distorted video .* cannot be opened"):
        list(video.score(broken, ref, ["psnr"]))


def test_cli(tmp_path, capsys):
    from turboiqa.cli import main

    ref, dist = carphone()
    out = tmp_path / "cli.jsonl"
    assert main(["video", str(dist), str(ref), "--metric", "psnr,ssim_ffmpeg", "--end", "10", "--batch", "4",
                 "--out", str(out), "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert frames_of(rows) == list(range(10)) and set(rows[0]) == {"frame", "pts", "psnr", "ssim_ffmpeg"}
    assert json.loads(capsys.readouterr().out)["frames"] == 10
    assert main(["video", str(dist), str(ref), "--end", "2", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "frame,pts,psnr,ssim"
    if not torch.cuda.is_available():
        assert main(["video", str(dist), str(ref), "--device", "cuda", "--no-progress"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_cli_takes_distorted_first(clips, blur_pair, tmp_path, capsys):
    """``turboiqa video A B``: A is the distorted video, B the reference (the metrics' order). --dist-delay is the
    distorted side's delay, so only that order aligns 'late' (two black frames, then ref's frames) exactly; and an
    asymmetric metric (VIFp) gives the Python API's values for distorted=A, reference=B, not the swapped ones."""
    from turboiqa.cli import main

    ref, late = clips["ref"], clips["late"]
    common = ["--metric", "psnr", "--psnr-max-db", "60", "--dist-delay", "2", "--shortest", "--no-progress"]
    out = tmp_path / "aligned.csv"
    assert main(["video", str(late), str(ref), *common, "--out", str(out)]) == 0
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == 12 and all(float(r.split(",")[2]) == 60 for r in rows)  # lossless copy, aligned
    summary = json.loads((tmp_path / "aligned.summary.json").read_text())
    assert (summary["distorted"], summary["reference"]) == (str(late), str(ref))
    capsys.readouterr()
    assert main(["video", str(ref), str(late), *common, "--out", str(tmp_path / "swapped.csv")]) == 0
    rows = (tmp_path / "swapped.csv").read_text().splitlines()[1:]
    assert rows and all(float(r.split(",")[2]) < 30 for r in rows)
    summary = json.loads((tmp_path / "swapped.summary.json").read_text())
    assert (summary["distorted"], summary["reference"]) == (str(ref), str(late))

    blur, sharp = blur_pair
    want = [r["vif_p"] for r in video.score(distorted=blur, reference=sharp, metrics=["vif_p"])]
    swapped = [r["vif_p"] for r in video.score(distorted=sharp, reference=blur, metrics=["vif_p"])]
    assert all(abs(w - s) > 0.05 * abs(w) for w, s in zip(want, swapped))  # the orders are told apart
    out = tmp_path / "vif.jsonl"
    assert main(["video", str(blur), str(sharp), "--metric", "vif_p", "--out", str(out), "--no-progress"]) == 0
    assert [json.loads(line)["vif_p"] for line in out.read_text().splitlines()] == pytest.approx(want, rel=1e-6)


def test_api_takes_distorted_first(blur_pair, tmp_path):
    """``video.score(A, B)`` / ``video.run(A, B)``: A is the distorted video, B the reference, as ``vif_p(A, B)``
    on the decoded frames (VIFp reads RGB; it is asymmetric: the swapped call gives other values); the keywords
    ``distorted=`` / ``reference=`` give the same rows in either order."""
    from turboiqa.video.decode import BatchReader

    blur, sharp = blur_pair
    with BatchReader(distorted=blur, reference=sharp, planes={"rgb"}) as reader:
        (batch,) = list(reader)
    d, r = batch.dist["rgb"], batch.ref["rgb"]
    assert reader.paths == (str(sharp), str(blur))  # decoded from the files named by the keywords
    want = turboiqa.vif_p(d, r, 255, reduction="none").tolist()
    swapped = turboiqa.vif_p(r, d, 255, reduction="none").tolist()
    assert all(abs(w - s) > 0.05 * abs(w) for w, s in zip(want, swapped))  # the orders are told apart
    positional = list(video.score(blur, sharp, ["vif_p"]))
    assert [row["vif_p"] for row in positional] == pytest.approx(want, rel=1e-6)
    assert [row["vif_p"] for row in video.score(sharp, blur, ["vif_p"])] == pytest.approx(swapped, rel=1e-6)
    assert list(video.score(distorted=blur, reference=sharp, metrics=["vif_p"])) == positional
    assert list(video.score(reference=sharp, distorted=blur, metrics=["vif_p"])) == positional
    assert list(video.score(blur, reference=sharp, metrics=["vif_p"])) == positional

    out = tmp_path / "vif.jsonl"
    summary = video.run(blur, sharp, ["vif_p"], out=out, progress=False)
    assert (summary["distorted"], summary["reference"]) == (str(blur), str(sharp))
    assert [json.loads(line) for line in out.read_text().splitlines()] == positional
    kw = video.run(reference=sharp, distorted=blur, metrics=["vif_p"], out=tmp_path / "kw.jsonl", progress=False)
    assert (tmp_path / "kw.jsonl").read_bytes() == out.read_bytes() and kw["metrics"] == summary["metrics"]


def test_summary_harmonic_mean_of_infinite_psnr():
    """Identical frames have PSNR inf: the harmonic mean n / Σ 1/v gets 0 from each (and is inf when every frame
    is inf, the limit, computed without a 1/0 division); a value ≤ 0 has no harmonic mean (None)."""
    from turboiqa.video.output import summarize

    inf = float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as pytest -W error::RuntimeWarning: no divide-by-zero warning
        stats = summarize([{"psnr": inf}] * 3, ["psnr"])["psnr"]
        mixed = summarize([{"psnr": v} for v in (30.0, inf, 40.0)], ["psnr"])["psnr"]
        zero = summarize([{"psnr": v} for v in (30.0, 0.0)], ["psnr"])["psnr"]
    assert stats["harmonic_mean"] == inf and stats["mean"] == inf and stats["min"] == inf and stats["p50"] == inf
    assert mixed["harmonic_mean"] == pytest.approx(3 / (1 / 30 + 1 / 40)) and mixed["mean"] == inf
    assert zero["harmonic_mean"] is None and zero["mean"] == 15.0


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_run_on_identical_videos_summarizes_infinite_psnr(clips, tmp_path):
    """A video scored against itself: every PSNR is inf; the summary (on disk and returned) says inf, no warning."""
    out = tmp_path / "same.csv"
    summary = video.run(clips["ref"], clips["ref"], ["psnr"], out=out, progress=False)
    on_disk = json.loads((tmp_path / "same.summary.json").read_text())
    for stats in (summary["metrics"]["psnr"], on_disk["metrics"]["psnr"]):
        assert stats["harmonic_mean"] == stats["mean"] == stats["min"] == stats["p50"] == float("inf")


def luma_planes(path, count: int) -> torch.Tensor:
    """The first ``count`` decoded Y planes as N×1×H×W uint8, read straight from PyAV's frame buffers."""
    import av

    planes = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            y = frame.planes[0]
            rows = np.frombuffer(bytes(y), np.uint8).reshape(frame.height, y.line_size)
            planes.append(torch.from_numpy(rows[:, :frame.width].copy()))
            if len(planes) == count:
                break
    return torch.stack(planes)[:, None]


def test_cli_scales_and_output_errors(tmp_path, capsys):
    # Issue 11: ms_ssim on the 176×144 clip advised scales=4, which the command line could not pass; an --out in a
    # missing folder exited 2 (bad input) instead of 3 (output not writable).
    from turboiqa.cli import main

    ref, dist = carphone()
    args = ["video", str(dist), str(ref), "--metric", "ms_ssim", "--end", "2", "--no-progress"]
    assert main(args) == 1
    assert "--scales 4" in capsys.readouterr().err
    out = tmp_path / "ms.jsonl"
    assert main([*args, "--scales", "3", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ref_y, dist_y = luma_planes(ref, 2), luma_planes(dist, 2)
    want = turboiqa.ms_ssim(dist_y, ref_y, 255, reduction="none", scales=3)
    assert [r["ms_ssim"] for r in rows] == pytest.approx(want.tolist(), abs=1e-6)
    assert main([*args, "--scales", "0"]) == 2
    assert main(["video", str(dist), str(ref), "--end", "1", "--out", str(tmp_path / "missing" / "o.csv")]) == 3
    assert "cannot write --out" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_pipeline_matches_cpu(clips):
    """Pinned batches, non-blocking copies and the metrics on the GPU give the CPU's numbers."""
    names = ["psnr", "ssim", "ssim_libvmaf", "ssim_ffmpeg"]
    cpu = list(video.score(clips["dist"], clips["ref"], names, batch_size=5))
    gpu = list(video.score(clips["dist"], clips["ref"], names, batch_size=5, device="cuda"))
    assert frames_of(gpu) == frames_of(cpu)
    for name in names:
        np.testing.assert_allclose([r[name] for r in gpu], [r[name] for r in cpu], rtol=0, atol=2e-5)
