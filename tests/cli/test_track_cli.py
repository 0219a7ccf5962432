"""Issue 18 item 1: eval.py --track follows objects over the frames of --video/--images.

--output_json entries gain a ``track_id`` that stays with each object, ``image_id``
is the frame's index in its source, drawings colour and label each track by its
id, and bad tracking flags are refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO

import yolact.cli.eval_cli as cli
from yolact.core.structures import Detections
from yolact.io.render import draw_detections, track_color

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
FRAMES = 5


def frame(i: int) -> np.ndarray:
    """A circle moving right and a square moving left (the shipped model finds both)."""
    img = np.full((96, 128, 3), 90, np.uint8)
    cv2.circle(img, (30 + 4 * i, 35), 18, (40, 200, 40), -1)
    cv2.rectangle(img, (80 - 3 * i, 55), (110 - 3 * i, 85), (200, 60, 60), -1)
    return img


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_video(path: Path) -> None:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 96))
    for i in range(FRAMES):
        out.write(frame(i))
    out.release()


def ids_per_frame(entries: list[dict]) -> dict[int, dict[int, int | None]]:
    """image_id -> {category_id: track_id} of the best-scored detection of each class
    found with a score above 0.5 (the circle's and the square's)."""
    best: dict[tuple[int, int], dict] = {}
    for e in entries:
        key = (e["image_id"], e["category_id"])
        if e["score"] > 0.5 and (key not in best or e["score"] > best[key]["score"]):
            best[key] = e
    out: dict[int, dict[int, int | None]] = {}
    for (image_id, category_id), e in best.items():
        out.setdefault(image_id, {})[category_id] = e.get("track_id")
    return out


def assert_consistent(entries: list[dict]) -> None:
    frames = ids_per_frame(entries)
    assert sorted(frames) == list(range(FRAMES))
    first = frames[0]
    assert first.keys() == {1, 2} and None not in first.values()  # circle, square
    assert len(set(first.values())) == 2
    assert all(ids == first for ids in frames.values())
    assert all(e["track_id"] >= 1 for e in entries if "track_id" in e)


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_video_track_ids_follow_each_object(tmp_path, capsys, iou):
    video, res = tmp_path / "clip.avi", tmp_path / "res.json"
    write_video(video)
    code, _, err = run(capsys, f"--video={video}:{tmp_path / 'out.avi'}", "--track",
                       f"--track_iou={iou}", f"--output_json={res}")  # fmt: skip
    assert code == 0, err
    assert_consistent(json.loads(res.read_bytes()))


def test_images_track_ids_follow_each_object(tmp_path, capsys):
    src, res = tmp_path / "in", tmp_path / "res.json"
    src.mkdir()
    for i in range(FRAMES):
        cv2.imwrite(str(src / f"f{i:02d}.png"), frame(i))
    code, _, err = run(capsys, f"--images={src}:{tmp_path / 'out'}", "--track",
                       "--track_buffer=0.5", f"--output_json={res}")  # fmt: skip
    assert code == 0, err
    entries = json.loads(res.read_bytes())
    assert_consistent(entries)
    assert {e["file_name"] for e in entries if e["image_id"] == 3} == {"f03.png"}


def test_untracked_video_has_no_track_ids(tmp_path, capsys):
    video, res = tmp_path / "clip.avi", tmp_path / "res.json"
    write_video(video)
    code, _, err = run(capsys, f"--video={video}:{tmp_path / 'out.avi'}", f"--output_json={res}")
    assert code == 0, err
    entries = json.loads(res.read_bytes())
    assert entries and all("track_id" not in e for e in entries)
    assert {e["image_id"] for e in entries} == set(range(FRAMES))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--track", "--track_iou=poly"], "error: --track_iou must be box or mask, got 'poly'"),
        (["--track", "--track_buffer=-1"], "error: --track_buffer must be >= 0 seconds, got -1.0"),
        (["--track"], "error: --track goes with --video or --images"),
    ],
)
def test_bad_track_flags_are_one_line(tmp_path, capsys, flags, message):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), frame(0))
    before = image.read_bytes()
    code, _, err = run(capsys, f"--image={image}:{tmp_path / 'b.png'}", *flags)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [message]
    assert image.read_bytes() == before and not (tmp_path / "b.png").exists()


def detections(boxes: list[list[float]], track_ids: list[int]) -> Detections:
    n = len(boxes)
    return Detections(
        boxes=torch.tensor(boxes), labels=torch.zeros(n, dtype=torch.long),
        scores=torch.linspace(0.9, 0.8, n), box_scores=torch.zeros(n), mask_scores=torch.zeros(n),
        masks=None, image_size=(40, 60), class_names=("circle",),
        track_ids=torch.tensor(track_ids),
    )  # fmt: skip


def test_a_track_keeps_its_colour_when_its_rank_changes():
    image = np.zeros((40, 60, 3), np.uint8)
    a, b = [2.0, 20.0, 20.0, 38.0], [30.0, 20.0, 50.0, 38.0]
    one = draw_detections(image, detections([a, b], [4, 9]), text=False, masks=False)
    two = draw_detections(image, detections([b, a], [9, 4]), text=False, masks=False)
    assert tuple(one[20, 2]) == tuple(two[20, 2]) == track_color(4)
    assert tuple(one[20, 30]) == tuple(two[20, 30]) == track_color(9)
    assert track_color(4) != track_color(9)
    untracked = draw_detections(image, detections([b, a], [-1, -1]), text=False, masks=False)
    assert tuple(untracked[20, 2]) != tuple(two[20, 2])  # by rank: the second colour


def test_tracked_labels_show_the_id():
    image = np.zeros((40, 60, 3), np.uint8)
    det = detections([[2.0, 20.0, 50.0, 38.0]], [7])
    with_id = draw_detections(image, det, masks=False, boxes=False)
    det.track_ids = None
    without = draw_detections(image, det, masks=False, boxes=False)
    assert not np.array_equal(with_id, without)
