"""``eval.py --video=A,B`` and ``--streams=FILE``: one model for every source, one output
video per source, JSON entries naming their source, a window grid, per-source figures."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, run_main

import yolact.cli.eval_cli as cli

SIZE = (64, 48)  # width, height of the generated clips


def scene(i: int, salt: int) -> np.ndarray:
    w, h = SIZE
    img = np.full((h, w, 3), 50 + 20 * salt, np.uint8)
    cv2.rectangle(img, (4 + 3 * i, 8), (28 + 3 * i, 30), (40, 200, 90), -1)
    cv2.circle(img, (46, 24 + i), 9, (200, 60, 160 - 40 * salt), -1)
    return img


def write_clip(path: Path, frames: int, salt: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(scene(i, salt))
    writer.release()


def frames_of(path: Path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return count, size


def by_source(entries: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for e in entries:
        out.setdefault(e["source"], []).append(e)
    return out


@pytest.fixture
def clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """a.avi (3 frames) and b.avi (4 frames) in the current folder."""
    monkeypatch.chdir(tmp_path)
    write_clip(tmp_path / "a.avi", 3, salt=0)
    write_clip(tmp_path / "b.avi", 4, salt=1)
    return tmp_path


def test_two_files_through_one_model(clips, capsys, tiny_ckpt) -> None:
    """Each source is drawn to its own OUT with all its frames; the JSON entries carry
    the source's place and the frame's index in it, and equal what a run of that
    source alone gives (source 0 there); a --streams file gives the same run."""
    pairs = "--video=a.avi:oa.avi,b.avi:ob.avi"
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", pairs, "--output_json=d.json")
    assert code == 0, err
    assert frames_of(clips / "oa.avi") == (3, SIZE)
    assert frames_of(clips / "ob.avi") == (4, SIZE)
    assert "2 sources: processed 7 frames" in out
    assert "source 0 a.avi: 3 delivered, 3 processed, 0 dropped" in out
    assert "source 1 b.avi: 4 delivered, 4 processed, 0 dropped" in out
    assert "wrote oa.avi (3 frames)" in out and "wrote ob.avi (4 frames)" in out
    both = json.loads((clips / "d.json").read_text())
    assert {e["file_name"] for e in both} == {"a.avi", "b.avi"}
    got = by_source(both)
    assert {e["image_id"] for e in got[0]} == set(range(3))
    assert {e["image_id"] for e in got[1]} == set(range(4))

    for k, name in enumerate(("a.avi", "b.avi")):
        code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={name}",
                                f"--output_json={k}.json")  # fmt: skip
        assert code == 0, err
        alone = json.loads((clips / f"{k}.json").read_text())
        assert {e["source"] for e in alone} == {0}
        assert [{**e, "source": k} for e in alone] == got[k]

    (clips / "list.streams").write_text("# two clips\na.avi:sa.avi\n\nb.avi:sb.avi\n")
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--streams=list.streams",
                            "--output_json=s.json")  # fmt: skip
    assert code == 0, err
    assert json.loads((clips / "s.json").read_text()) == both
    assert frames_of(clips / "sa.avi") == (3, SIZE) and frames_of(clips / "sb.avi") == (4, SIZE)


class FakeWindow:
    """Stands in for OpenCV's window calls; keeps copies of what was shown."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shown: list[tuple[str, np.ndarray]] = []
        self.destroyed = 0
        monkeypatch.setattr(cli, "open_window_possible", lambda: True)
        monkeypatch.setattr(
            cv2, "imshow", lambda title, img: self.shown.append((title, img.copy()))
        )
        monkeypatch.setattr(cv2, "waitKey", lambda delay=0: -1)
        monkeypatch.setattr(cv2, "destroyAllWindows", self.destroy)

    def show(self, title: str, image: np.ndarray) -> None:
        self.shown.append((title, image.copy()))

    def destroy(self) -> None:
        self.destroyed += 1


def test_sources_without_out_share_one_window_grid(clips, capsys, tiny_ckpt, monkeypatch) -> None:
    """No OUT and a display: one window; its last image holds, side by side, the last
    drawing of each source as a run of that source alone shows it."""
    last = []
    for name in ("a.avi", "b.avi"):
        window = FakeWindow(monkeypatch)
        code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={name}")
        assert code == 0, err
        assert {title for title, _ in window.shown} == {f"yolact: {name}"}
        last.append(window.shown[-1][1])
    window = FakeWindow(monkeypatch)
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--video=a.avi,b.avi")
    assert code == 0, err
    assert {title for title, _ in window.shown} == {"yolact: 2 sources"}
    assert len(window.shown) == 7 and window.destroyed == 1
    w, h = SIZE
    grid = window.shown[-1][1]
    assert grid.shape == (h, 2 * w, 3)
    np.testing.assert_array_equal(grid, np.hstack(last))


def test_only_sources_without_out_are_shown(clips, capsys, tiny_ckpt, monkeypatch) -> None:
    window = FakeWindow(monkeypatch)
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--video=a.avi:oa.avi,b.avi")
    assert code == 0, err
    assert len(window.shown) == 4  # b's frames, in a grid of one tile: b's drawings as they are
    assert all(img.shape == (SIZE[1], SIZE[0], 3) for _, img in window.shown)
    assert frames_of(clips / "oa.avi") == (3, SIZE)


def test_headless_without_out_opens_no_window(clips, capsys, tiny_ckpt, monkeypatch) -> None:
    def no_window(*args: object) -> None:
        raise AssertionError("a window was opened without a display")

    monkeypatch.setattr(cli, "open_window_possible", lambda: False)
    monkeypatch.setattr(cv2, "imshow", no_window)
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--video=a.avi,b.avi:ob.avi")
    assert code == 0, err
    assert "note: no display here and no OUT for a.avi; their detections are only counted" in err
    assert "source 0 a.avi: 3 delivered, 3 processed" in out
    assert frames_of(clips / "ob.avi") == (4, SIZE)


STATS = re.compile(
    r"^source (\d) (\S+): (\d+) delivered, (\d+) processed, (\d+) dropped, [\d.]+ FPS, "
    r"latency p50 \d+ ms p95 \d+ ms, (\d+) reconnects?$",
    re.M,
)


def test_two_live_loopback_streams(tmp_path, capsys, tiny_ckpt, mjpeg_server) -> None:
    """Two MJPEG streams from localhost through one model: both give results, the JSON
    names each entry's stream and frame, and a line of figures per stream is printed."""
    servers = [mjpeg_server(8, make_frame=lambda i, s=s: scene(i % 10, s)) for s in (0, 1)]
    js = tmp_path / "live.json"
    urls = ",".join(server.url for server in servers)
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={urls}",
                              f"--output_json={js}", "--batch_wait_ms=20")  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err
    stats = {int(m[0]): m for m in STATS.findall(out)}
    assert sorted(stats) == [0, 1], out
    for k, server in enumerate(servers):
        _, name, delivered, processed, dropped, reconnects = stats[k]
        assert name == server.url
        assert int(delivered) == 8 and int(processed) >= 1
        assert int(processed) + int(dropped) == 8 and reconnects == "0"
    entries = by_source(json.loads(js.read_text()))
    assert sorted(entries) == [0, 1]
    for k in (0, 1):
        ids = {e["image_id"] for e in entries[k]}
        assert ids <= set(range(8)) and 7 in ids  # the newest frame is never dropped
        assert len(ids) <= int(stats[k][3])


def test_dropped_streams_reconnect(tmp_path, capsys, tiny_ckpt, mjpeg_server) -> None:
    """--reconnect=1: streams that close after 2 frames are reopened after 0.5 s, one note
    line per event; the first connections give at most 4 results, so the run reaches
    --max_images=6 only through a reconnection, and the figures count them."""
    servers = [mjpeg_server(2, make_frame=lambda i, s=s: scene(i, s)) for s in (0, 1)]
    urls = ",".join(server.url for server in servers)
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={urls}",
                              "--reconnect=1", "--max_images=6")  # fmt: skip
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note: source ")]
    event = re.compile(r"^note: source (\d): (\S+) (ended; reconnecting in 0\.5 s \(attempt 1 "
                       r"of 1\)|reconnected \(attempt 1\))$")  # fmt: skip
    for line in notes:
        m = event.match(line)
        assert m is not None, line
        assert m[2] == servers[int(m[1])].url
    reconnected = [line for line in notes if line.endswith("reconnected (attempt 1)")]
    assert reconnected, err
    stats = {int(m[0]): m for m in STATS.findall(out)}
    assert sorted(stats) == [0, 1], out
    assert sum(int(stats[k][3]) for k in (0, 1)) == 6
    assert sum(int(stats[k][5]) for k in (0, 1)) == len(reconnected)


def test_sigterm_keeps_every_source_s_output_and_figures(clips, capsys, tiny_ckpt) -> None:
    """SIGTERM during a two-source run: exit 143, each OUT closed as a playable file
    with the frames processed for its source, the JSON written, the figures printed."""
    from yolact.models.yolact.predictor import YolactPredictor

    write_clip(clips / "long_a.avi", 40, salt=0)
    write_clip(clips / "long_b.avi", 40, salt=1)
    real_call, calls = YolactPredictor.run_network, []

    def call_then_signal(self, batch):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_call(self, batch)

    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # restored afterwards
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(YolactPredictor, "run_network", call_then_signal)
            code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}",
                                      "--video=long_a.avi:oa.avi,long_b.avi:ob.avi",
                                      "--output_json=d.json")  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    stats = {int(m[0]): m for m in STATS.findall(out)}
    assert sorted(stats) == [0, 1], out
    processed = [int(stats[k][3]) for k in (0, 1)]
    assert 3 <= sum(processed) < 80
    for k, name in enumerate(("oa.avi", "ob.avi")):
        assert frames_of(clips / name) == (processed[k], SIZE)
        assert int(stats[k][2]) == processed[k] + int(stats[k][4])  # delivered
    got = by_source(json.loads((clips / "d.json").read_text()))
    assert {k: len({e["image_id"] for e in got[k]}) for k in got} == {
        0: processed[0],
        1: processed[1],
    }


def tracked_scene(i: int) -> np.ndarray:
    """A disc going right and a square going left, which the shipped demo model finds."""
    img = np.full((96, 128, 3), 90, np.uint8)
    cv2.circle(img, (28 + 5 * i, 36), 17, (40, 200, 40), -1)
    cv2.rectangle(img, (82 - 4 * i, 54), (112 - 4 * i, 84), (200, 60, 60), -1)
    return img


def test_each_source_has_its_own_tracker(tmp_path, capsys, monkeypatch) -> None:
    """The same clip given twice with --track: both sources get the same track ids
    frame by frame (one tracker each, from a fresh start), and every entry has one."""
    monkeypatch.chdir(tmp_path)
    writer = cv2.VideoWriter("clip.avi", cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (128, 96))
    for i in range(5):
        writer.write(tracked_scene(i))
    writer.release()
    weights = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
    code, _, err = run_main(capsys, f"--trained_model={weights}", "--video=clip.avi,clip.avi",
                            "--track", "--output_json=t.json")  # fmt: skip
    assert code == 0, err
    got = by_source(json.loads((tmp_path / "t.json").read_text()))
    assert sorted(got) == [0, 1]
    assert [{**e, "source": 1} for e in got[0]] == got[1]
    best: dict[tuple[int, int], dict] = {}  # the best entry of each class in each frame
    for e in got[0]:
        key = (e["image_id"], e["category_id"])
        if e["score"] > 0.5 and (key not in best or e["score"] > best[key]["score"]):
            best[key] = e
    assert {image_id for image_id, _ in best} == set(range(5))
    ids = {category: {e.get("track_id") for (_, c), e in best.items() if c == category}
           for category in {c for _, c in best}}  # fmt: skip
    assert len(ids) == 2 and all(len(v) == 1 and None not in v for v in ids.values()), ids
    assert len(set.union(*ids.values())) == 2  # the disc and the square: one id each, kept


def test_q_in_the_grid_window_ends_the_run(clips, capsys, tiny_ckpt, monkeypatch) -> None:
    """q pressed at the first drawing: reading ends, what was read is still processed,
    the run ends normally long before the 80 frames of the two clips."""
    write_clip(clips / "long_a.avi", 40, salt=0)
    write_clip(clips / "long_b.avi", 40, salt=1)
    window = FakeWindow(monkeypatch)
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: ord("q"))
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}",
                              "--video=long_a.avi,long_b.avi")  # fmt: skip
    assert code == 0, err
    processed = int(re.search(r"^2 sources: processed (\d+) frames", out, re.M)[1])
    assert 1 <= processed < 80 and len(window.shown) == processed
    assert window.destroyed == 1 and "ended or dropped" not in err
