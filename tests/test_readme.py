"""Every README snippet runs as written: the Python blocks in order in one namespace, and every `turboiqa …` line of
the bash blocks through the CLI, in a folder holding the files the snippets name (REF.png, refs/, ref.mp4,
~/data/tid2013, …) built from the shipped demo images and the shared test data. Adapted: `cuda` becomes `cpu` on
a machine without a GPU, and the API example's frames are smaller (see on_this_machine). Install lines (`pip install …`) are run by CI itself (.ci/run)."""
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA, TID2013, TID_PAIRS
from hdr_common import make_hdr_files

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL)


def on_this_machine(text: str) -> str:
    # The API example's eight 1080p frames go through every deep metric too: a quarter of the size keeps the
    # test to seconds on CI's two cores without changing which code runs.
    text = text.replace("(8, 3, 1080, 1920)", "(2, 3, 270, 480)")
    if torch.cuda.is_available():
        return text
    return text.replace('device="cuda"', 'device="cpu"').replace("--device cuda", "--device cpu")


def cli_lines() -> list[str]:
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command.startswith("turboiqa "):
                lines.append(command)
    return lines


@pytest.fixture
def snippet_folder(tmp_path, monkeypatch):
    """cwd and HOME with the files the README's examples name."""
    from turboiqa.cli import demo_pairs

    (dist, ref), *others = demo_pairs()
    shutil.copy(ref, tmp_path / "REF.png")
    shutil.copy(dist, tmp_path / "DIST.png")
    for folder, index in (("dists", 0), ("refs", 1)):
        (tmp_path / folder).mkdir()
        for k, pair in enumerate(demo_pairs()):
            shutil.copy(pair[index], tmp_path / folder / f"img{k}.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def make_videos(folder: Path):
    """ref.mp4 / dist.mp4: 120 lossless frames of 192×192 (big enough for 5-scale MS-SSIM; Matroska inside)."""
    pytest.importorskip("av")
    from video_common import add_noise, smooth_frames, write_video

    frames = smooth_frames(120, 192, 192)
    write_video(folder / "ref.mkv", frames).rename(folder / "ref.mp4")
    write_video(folder / "dist.mkv", add_noise(frames, 6)).rename(folder / "dist.mp4")


def make_tid2013(folder: Path):
    """~/data/tid2013 laid out as released, with the shared TID2013 pairs and their published MOS."""
    if not TID2013.is_dir():
        pytest.skip(f"shared test data not found at {TID2013} (set TURBOIQA_SHARED_DATA to the data folder)")
    import csv

    with open(SHARED_DATA / "mos_lists" / "TID2013.txt", newline="") as f:
        mos = {Path(r["dis_img_path"]).name.lower(): r["score"] for r in csv.DictReader(f)}
    root = folder / "data" / "tid2013"
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    lines = []
    for dist, ref in [*TID_PAIRS, ("i01_01_5.bmp", "I01.BMP")]:
        shutil.copy(TID2013 / "distorted" / dist, root / "distorted_images" / dist)
        shutil.copy(TID2013 / "reference" / ref, root / "reference_images" / ref)
        lines.append(f"{mos[dist.lower()]} {dist}\n")
    (root / "mos_with_names.txt").write_text("".join(lines))


def test_readme_python_blocks_run(snippet_folder, monkeypatch):
    namespace = {}
    for block in blocks("python"):
        if "turboiqa.video" in block:
            make_videos(snippet_folder)
        if "lpips(" in block or "dists(" in block:  # the deep metrics need the ImageNet backbones
            weights = SHARED_DATA / "weights"
            if not weights.is_dir():
                pytest.skip(f"deep-metric weights not found at {weights} (set TURBOIQA_SHARED_DATA)")
            monkeypatch.setenv("TURBOIQA_WEIGHTS", str(weights))
        exec(compile(on_this_machine(block), str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["loss"].loss and namespace["row"]["frame"] == 119  # the API and the video snippets ran


def test_readme_command_lines_run(snippet_folder, monkeypatch):
    from turboiqa.cli import main

    lines = cli_lines()
    assert any(line.startswith("turboiqa video") for line in lines) and len(lines) >= 8
    make_videos(snippet_folder)
    make_tid2013(snippet_folder)
    make_hdr_files(snippet_folder)
    monkeypatch.setenv("TURBOIQA_WEIGHTS", str(SHARED_DATA / "weights"))
    for line in lines:
        args = shlex.split(on_this_machine(line))[1:]
        if args[0] == "evaluate":
            args += ["--bootstrap", "50"]  # five pairs: the default 1000 resamples only cost time
        if "--ray" in args:
            # its own process, as a user runs it: Ray keeps per-process state (its auth-token loader has read the
            # real HOME's ~/.ray when another test imported ray) that this test's HOME change would contradict
            import subprocess
            import sys

            done = subprocess.run([sys.executable, "-m", "turboiqa", *args], capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, (line, done.stderr[-3000:])
            continue
        assert main(args) == 0, line
    assert (snippet_folder / "frames.summary.json").is_file()
    assert (snippet_folder / "eval-tid2013" / "tid2013_scores.csv").is_file()
