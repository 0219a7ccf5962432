"""eval.py --track --output_mots (issue 18, item 1): a tracked run over a generated
clip, exported as MOTS txt, scores as the tracking benchmark scores the same run in
memory; TrackEval's KITTI MOTS reader reads the file; bad flags are one line."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import trackeval
from conftest import REPO

import yolact.cli.eval_cli as cli
from yolact import Predictor
from yolact.bench.tracking import track_benchmark
from yolact.bench.tracking_score import score_tracks
from yolact.data.clips import Clip, ClipOptions, FrameTruth, Track, make_clip, read_mots, write_clip
from yolact.data.scenes import Shape

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
FRAMES, FPS = 14, 10.0
FLAGS = ["--track", "--score_threshold=0.3", "--track_buffer=100"]


def _clip() -> Clip:
    """A circle (car, class 1) and a square (pedestrian, class 2) crossing, a star above."""
    size = (160, 160)
    tracks = [
        Track(1, Shape(0, (30.0, 80.0), 34.0, colour=(40, 200, 40)), (7.0, 0.0), 0, FRAMES),
        Track(2, Shape(1, (130.0, 90.0), 34.0, colour=(200, 60, 60)), (-7.0, 0.0), 0, FRAMES),
        Track(3, Shape(3, (80.0, 30.0), 28.0, colour=(60, 60, 220)), (0.0, 0.5), 3, FRAMES),
    ]
    return make_clip(ClipOptions(frames=FRAMES, size=size, fps=FPS, seed=3), tracks)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Clip]:
    """The clip written as a video, and the clip with the video's decoded frames."""
    folder = tmp_path_factory.mktemp("clip")
    clip = _clip()
    paths = write_clip(clip, str(folder))
    cap = cv2.VideoCapture(paths["video"])
    decoded = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        decoded.append(img)
    cap.release()
    assert len(decoded) == FRAMES
    return folder, Clip(decoded, clip.truth, clip.fps, clip.options)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _of_class(frames: list[FrameTruth], label: int) -> list[FrameTruth]:
    out = []
    for f in frames:
        k = f.labels == label
        out.append(FrameTruth(f.ids[k], f.labels[k], f.boxes[k], f.masks[k]))
    return out


def _trackeval(root: Path, gt: Path, res: Path, cls: str) -> dict[str, float]:
    """TrackEval's KittiMOTS dataset reading the two files from folders, one class."""
    (root / "gt").mkdir(parents=True, exist_ok=True)
    (root / "trackers" / "yolact" / "data").mkdir(parents=True, exist_ok=True)
    (root / "gt" / "0000.txt").write_bytes(gt.read_bytes())
    (root / "trackers" / "yolact" / "data" / "0000.txt").write_bytes(res.read_bytes())
    dataset = trackeval.datasets.KittiMOTS({
        "GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
        "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt", "SEQ_INFO": {"0000": FRAMES},
        "TRACKERS_TO_EVAL": ["yolact"], "CLASSES_TO_EVAL": [cls], "PRINT_CONFIG": False,
    })  # fmt: skip
    raw = dataset.get_raw_seq_data("yolact", "0000")
    data = dataset.get_preprocessed_seq_data(raw, cls)
    quiet = {"PRINT_CONFIG": False}
    hota = trackeval.metrics.HOTA(quiet).eval_sequence(data)
    clear = trackeval.metrics.CLEAR(quiet).eval_sequence(data)
    ident = trackeval.metrics.Identity(quiet).eval_sequence(data)
    return {"HOTA": float(np.mean(hota["HOTA"])), "MOTA": clear["MOTA"], "IDSW": clear["IDSW"],
            "IDF1": ident["IDF1"], "GT": clear["CLR_TP"] + clear["CLR_FN"]}  # fmt: skip


def test_video_export_scores_as_the_benchmark_and_trackeval_reads_it(clip_dir, capsys, tmp_path):
    folder, decoded = clip_dir
    res = tmp_path / "run.txt"
    code, out, err = run(capsys, f"--video={folder / 'clip.avi'}", *FLAGS, f"--output_mots={res}")
    assert code == 0, err
    assert f"wrote MOTS tracks of {FRAMES} frames to {res}" in out
    truth = read_mots(str(folder / "gt.txt"), FRAMES)
    ours = read_mots(str(res), FRAMES)
    assert sum(len(f.ids) for f in ours) >= FRAMES  # the model follows the objects
    from_file = score_tracks([truth], [ours])

    predictor = Predictor.from_checkpoint(WEIGHTS, device="cpu")
    bench = track_benchmark(predictor, [decoded], iou_modes=("box",), score_threshold=0.3,
                            buffer_s=100.0, synthetic_detections=0).modes[0]  # fmt: skip
    assert from_file.hota.hota == pytest.approx(bench.hota, abs=1e-12)
    assert from_file.identity.idf1 == pytest.approx(bench.idf1, abs=1e-12)
    assert from_file.clear.mota == pytest.approx(bench.mota, abs=1e-12)
    assert from_file.clear.id_switches == bench.id_switches

    for label, cls in ((0, "car"), (1, "pedestrian")):
        ref = _trackeval(tmp_path / "te", folder / "gt.txt", res, cls)
        mine = score_tracks([_of_class(truth, label)], [_of_class(ours, label)])
        assert ref["GT"] == sum((f.labels == label).sum() for f in truth) > 0
        assert mine.hota.hota == pytest.approx(ref["HOTA"], abs=1e-6)
        assert mine.identity.idf1 == pytest.approx(ref["IDF1"], abs=1e-6)
        assert mine.clear.mota == pytest.approx(ref["MOTA"], abs=1e-6)
        assert mine.clear.id_switches == ref["IDSW"]
        assert not math.isnan(ref["HOTA"])


def test_images_export_equals_the_video_export(clip_dir, capsys, tmp_path):
    folder, decoded = clip_dir
    src = tmp_path / "frames"
    src.mkdir()
    for i, img in enumerate(decoded.frames):
        cv2.imwrite(str(src / f"{i:03d}.png"), img)
    from_video, from_images = tmp_path / "v.txt", tmp_path / "i.txt"
    code, _, err = run(capsys, f"--video={folder / 'clip.avi'}", *FLAGS,
                       f"--output_mots={from_video}")  # fmt: skip
    assert code == 0, err
    code, _, err = run(capsys, f"--images={src}:{tmp_path / 'drawn'}", *FLAGS,
                       f"--output_mots={from_images}")  # fmt: skip
    assert code == 0, err
    assert from_images.read_bytes() == from_video.read_bytes()
    assert from_video.stat().st_size > 0


def _assert_one_line_and_kept(code: int, err: str, message: str, files: dict[Path, bytes]) -> None:
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [message]
    for path, before in files.items():
        assert path.read_bytes() == before


def test_bad_output_mots_flags_are_one_line(clip_dir, capsys, tmp_path):
    folder, _ = clip_dir
    video = folder / "clip.avi"
    old = tmp_path / "old.txt"
    old.write_bytes(b"0 1 1 2 2 4\n")
    kept = {video: video.read_bytes(), old: old.read_bytes()}

    code, _, err = run(capsys, f"--video={video}", f"--output_mots={old}")
    _assert_one_line_and_kept(code, err, "error: --output_mots goes with --track", kept)

    code, _, err = run(capsys, f"--video={video}", "--track", f"--output_mots={video}")
    message = (f"error: --output_mots {video} is the input {video} (the same file); "
               "give another path")  # fmt: skip
    _assert_one_line_and_kept(code, err, message, kept)

    code, _, err = run(capsys, f"--video={video}", "--track", f"--output_mots={old}",
                       f"--output_json={old}")  # fmt: skip
    assert code == 1 and len(err.strip().splitlines()) == 1 and str(old) in err
    assert old.read_bytes() == kept[old]

    blocked = tmp_path / "a_file" / "run.txt"
    (tmp_path / "a_file").write_bytes(b"x")
    code, _, err = run(capsys, f"--video={video}", "--track", f"--output_mots={blocked}")
    message = (f"error: --output_mots: cannot create folder {tmp_path / 'a_file'}: "
               f"{tmp_path / 'a_file'} is not a folder")  # fmt: skip
    _assert_one_line_and_kept(code, err, message, kept)


def test_a_failed_run_leaves_the_old_file(capsys, tmp_path):
    old = tmp_path / "old.txt"
    old.write_bytes(b"0 1 1 2 2 4\n")
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"not a video")
    code, _, err = run(capsys, f"--video={broken}", "--track", f"--output_mots={old}")
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert old.read_bytes() == b"0 1 1 2 2 4\n"


def test_several_sources_write_one_file_each(clip_dir, capsys, tmp_path):
    folder, _ = clip_dir
    video = folder / "clip.avi"
    single, many = tmp_path / "one.txt", tmp_path / "many.txt"
    code, _, err = run(capsys, f"--video={video}", *FLAGS, f"--output_mots={single}")
    assert code == 0, err
    code, out, err = run(capsys, f"--video={video},{video}", *FLAGS, f"--output_mots={many}")
    assert code == 0, err
    assert not many.exists()
    for k in (0, 1):
        path = tmp_path / f"many_{k}.txt"
        assert f"to {path}" in out
        ours = read_mots(str(path), FRAMES)
        assert [f.ids.tolist() for f in ours] == [f.ids.tolist() for f in read_mots(str(single))]
