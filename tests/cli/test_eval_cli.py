"""eval.py end to end on generated images, folders and videos, and its error handling."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO as REPO_PATH
from conftest import SteppedCamera, run_main

from yolact.cli.eval_cli import main

REPO = str(REPO_PATH)


def scene(h: int = 72, w: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 60, np.uint8)
    cv2.rectangle(img, (10, 10), (50, 40), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    cv2.circle(img, (70, 50), 15, tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return img


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 1
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


def test_image_with_output_and_json(tmp_path, capsys, tiny_ckpt):
    src, dst, js = tmp_path / "in.png", tmp_path / "out" / "drawn.png", tmp_path / "d.json"
    img = scene()
    cv2.imwrite(str(src), img)
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--image={src}:{dst}", f"--output_json={js}",
        "--top_k=3",
    )  # fmt: skip
    assert code == 0, err
    drawn = cv2.imread(str(dst))
    assert drawn.shape == img.shape
    assert not np.array_equal(drawn, img)  # something was drawn
    dets = json.loads(js.read_text())
    # JSON keeps every detection (top_k limits only the drawing): a random model gives many.
    assert len(dets) > 3
    d = dets[0]
    assert d["image_id"] == 0 and d["file_name"] == "in.png"
    assert set(d) >= {"category_id", "bbox", "score", "segmentation"}
    assert isinstance(d["segmentation"]["counts"], str)
    assert d["segmentation"]["size"] == [72, 96]
    x, y, w, h = d["bbox"]
    assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 72
    scores = [e["score"] for e in dets]
    assert scores == sorted(scores, reverse=True)


def test_score_threshold_filters_json(tmp_path, capsys, tiny_ckpt):
    src, js = tmp_path / "in.png", tmp_path / "d.json"
    cv2.imwrite(str(src), scene())
    drawn = f"--image={src}:{tmp_path}/o.png"
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", drawn, f"--output_json={js}")
    assert code == 0, err
    all_scores = [e["score"] for e in json.loads(js.read_text())]
    thr = float(np.median(all_scores))
    code, _, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", drawn, f"--output_json={js}",
        f"--score_threshold={thr}",
    )  # fmt: skip
    assert code == 0, err
    kept = [e["score"] for e in json.loads(js.read_text())]
    assert kept == [s for s in all_scores if s > thr]


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit"])
def test_image_formats_are_converted(tmp_path, capsys, tiny_ckpt, kind):
    img = scene()
    if kind == "gray":
        data = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif kind == "rgba":
        data = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    else:
        data = img.astype(np.uint16) * 257
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), data)
    assert cv2.imread(str(src), cv2.IMREAD_UNCHANGED).dtype == data.dtype
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--image={src}:{tmp_path}/o.png"
    )
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "o.png")).shape == (72, 96, 3)


def test_images_folder_skips_corrupt_file(tmp_path, capsys, tiny_ckpt):
    src, dst, js = tmp_path / "in", tmp_path / "out", tmp_path / "d.json"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"img{i}.jpg"), scene(seed=i))
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--images={src}:{dst}", f"--output_json={js}"
    )
    assert code == 0, err
    assert "broken.png" in err and "Traceback" not in err
    assert sorted(os.listdir(dst)) == ["img0.png", "img1.png", "img2.png"]
    assert "processed 3 images" in out and "skipped 1" in out
    assert {e["file_name"] for e in json.loads(js.read_text())} == {
        "img0.jpg",
        "img1.jpg",
        "img2.jpg",
    }


def test_images_folder_same_stem_different_formats(tmp_path, capsys, tiny_ckpt):
    """photo.jpg/.bmp/.tif/.webp/.png: five inputs, five drawings, none overwritten."""
    src, dst, js = tmp_path / "in", tmp_path / "out", tmp_path / "d.json"
    src.mkdir()
    exts = ["jpg", "bmp", "tif", "webp", "png"]
    for i, ext in enumerate(exts):
        assert cv2.imwrite(str(src / f"photo.{ext}"), scene(48 + 8 * i, 64, seed=i))
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--images={src}:{dst}", f"--output_json={js}",
        "--top_k=0", "--display_masks=False", "--display_bboxes=False", "--display_text=False",
    )  # fmt: skip
    assert code == 0, err
    assert "processed 5 images" in out
    expected = {"photo.png": "photo.png", **{f"photo_{e}.png": f"photo.{e}" for e in exts[:4]}}
    assert sorted(os.listdir(dst)) == sorted(expected)
    for output, source in expected.items():  # nothing drawn: each output is its input
        assert np.array_equal(cv2.imread(str(dst / output)), cv2.imread(str(src / source)))
    results = json.loads(js.read_text())
    names = {e["image_id"]: e["file_name"] for e in results}
    assert sorted(names.values()) == sorted(f"photo.{e}" for e in exts)  # one id per file
    assert len(set(names)) == 5


def test_images_folder_refuses_to_draw_over_its_inputs(tmp_path, capsys, tiny_ckpt):
    cv2.imwrite(str(tmp_path / "a.png"), scene())
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}",
                            f"--images={tmp_path}:{tmp_path}/.")  # fmt: skip
    assert_one_line_error(code, err, "--images: OUT_DIR must differ from IN_DIR")
    assert os.listdir(tmp_path) == ["a.png"]


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        (["a.jpg", "b.png"], ["a.png", "b.png"]),
        (["photo.bmp", "photo.png", "photo_bmp.png"],
         ["photo_bmp.png", "photo.png", "photo_bmp_2.png"]),
        (["x/Photo.JPG", "x/photo.png", "x/photo.PNG"],
         ["Photo_JPG.png", "photo.png", "photo_2.png"]),
        (["a.tif", "a.tiff", "a.webp"], ["a_tif.png", "a_tiff.png", "a_webp.png"]),
    ],
)  # fmt: skip
def test_output_names_are_distinct_and_stable(inputs, outputs):
    from yolact.io.images import output_names

    assert output_names(inputs) == outputs
    assert output_names(inputs) == output_names(list(inputs))


def write_video(path, n: int, size=(96, 72), fps: float = 12.0) -> None:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        writer.write(scene(h, w, seed=i))
    writer.release()


def video_props(path) -> tuple[int, int, int, float]:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return count, w, h, fps


@pytest.mark.parametrize("multiframe", [1, 4])
def test_video_file_round_trip(tmp_path, capsys, tiny_ckpt, multiframe):
    src, dst, js = tmp_path / "in.avi", tmp_path / "out.mp4", tmp_path / "v.json"
    write_video(src, 11)
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:{dst}",
        f"--video_multiframe={multiframe}", f"--output_json={js}", "--display_fps",
    )  # fmt: skip
    assert code == 0, err
    assert "processed 11 frames" in out
    count, w, h, fps = video_props(dst)
    assert (count, w, h) == (11, 96, 72)
    assert fps == pytest.approx(12.0, abs=0.01)
    ids = {e["image_id"] for e in json.loads(js.read_text())}
    assert ids == set(range(11))


def test_video_max_images(tmp_path, capsys, tiny_ckpt):
    src, dst = tmp_path / "in.avi", tmp_path / "out.avi"
    write_video(src, 9)
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--video={src}:{dst}", "--max_images=4"
    )
    assert code == 0, err
    assert video_props(dst)[0] == 4


def test_benchmark_prints_stages(capsys):
    code, out, err = run_main(capsys, "--config=yolact_tiny", "--benchmark", "--max_images=3",
                              "--benchmark_warmup=1")  # fmt: skip
    assert code == 0, err
    for stage in ("pre-processing", "network", "post-processing", "total", "FPS"):
        assert stage in out
    ms = {ln.split()[0]: float(ln.split()[-1]) for ln in out.splitlines()[2:6] if ln.split()}
    assert ms["total"] == pytest.approx(
        ms["pre-processing"] + ms["network"] + ms["post-processing"], abs=0.02
    )
    assert all(v > 0 for v in ms.values())


def test_real_script_runs(tmp_path, tiny_ckpt):
    """The real eval.py entry point in a subprocess (no display here: nothing opens)."""
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), scene())
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "eval.py", f"--trained_model={tiny_ckpt}", f"--image={src}",
         "--cuda=False", "--top_k=2"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "detections" in proc.stdout


# ---- bad input: one line, exit code 1, nothing lost -------------------------------------


def test_missing_image(tmp_path, capsys, tiny_ckpt):
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--image={tmp_path}/nope.png")
    assert_one_line_error(code, err, "not found")


def test_corrupt_image(tmp_path, capsys, tiny_ckpt):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(os.urandom(200))
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--image={bad}")
    assert_one_line_error(code, err, "cannot decode")


def test_missing_video(tmp_path, capsys, tiny_ckpt):
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video={tmp_path}/v.mp4")
    assert_one_line_error(code, err, "not found")


def test_corrupt_video(tmp_path, capsys, tiny_ckpt):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(5000))
    code, _, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--video={bad}:{tmp_path}/o.mp4"
    )
    assert_one_line_error(code, err, "bad.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_webcam_that_does_not_open(capsys, tiny_ckpt):
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--video=57")
    assert_one_line_error(code, err, "webcam 57")


def test_unknown_config(capsys, tiny_ckpt):
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--config=yolact_bas",
                            "--image=x.png")  # fmt: skip
    assert_one_line_error(code, err, "unknown config 'yolact_bas'")
    assert "yolact_base" in err


def test_checkpoint_that_does_not_fit(tmp_path, capsys, tiny_ckpt):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), scene())
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}", "--config=yolact_resnet50",
                            f"--image={img}")  # fmt: skip
    assert_one_line_error(code, err, "does not fit config 'yolact_resnet50'")


def test_truncated_checkpoint(tmp_path, capsys, tiny_ckpt):
    data = Path(tiny_ckpt).read_bytes()
    cut = tmp_path / "yolact_tiny_1_10.pth"
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = run_main(capsys, f"--trained_model={cut}", "--image=x.png")
    assert_one_line_error(code, err, "truncated")


def test_name_without_config(tmp_path, capsys, tiny_ckpt):
    other = tmp_path / "my_weights.pth"
    other.write_bytes(Path(tiny_ckpt).read_bytes())
    code, _, err = run_main(capsys, f"--trained_model={other}", "--image=x.png")
    assert_one_line_error(code, err, "pass --config")


def test_no_input_given(capsys, tiny_ckpt):
    code, _, err = run_main(capsys, f"--trained_model={tiny_ckpt}")
    assert_one_line_error(code, err, "--image")


def test_cuda_requested_without_gpu(capsys, tiny_ckpt, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["--no_bar", f"--trained_model={tiny_ckpt}", "--device=cuda", "--image=x.png"])
    err = capsys.readouterr().err
    assert_one_line_error(code, err, "CUDA is not available")


def test_http_stream_that_drops(tmp_path, capsys, tiny_ckpt, mjpeg_server):
    """An MJPEG stream from localhost read through eval.py's stream path; the server
    stops after 6 frames: eval ends cleanly and keeps the video written so far."""
    server = mjpeg_server(6, make_frame=lambda i: scene(seed=i))
    dst, js = tmp_path / "live.avi", tmp_path / "live.json"
    code, out, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--video={server.url}:{dst}", f"--output_json={js}"
    )
    assert code == 0, err
    assert "ended or dropped" in err and "Traceback" not in err
    count, w, h, _ = video_props(dst)
    assert 1 <= count <= 6 and (w, h) == (96, 72)
    assert f"processed {count} frames" in out
    ids = sorted({e["image_id"] for e in json.loads(js.read_text())})
    assert ids == sorted(set(ids)) and all(0 <= i < 6 for i in ids)


def test_unreachable_stream(capsys, tiny_ckpt):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run_main(
        capsys, f"--trained_model={tiny_ckpt}", f"--video=http://127.0.0.1:{port}/x"
    )
    assert_one_line_error(code, err, "cannot connect to stream")


def indexed_scene(index: int) -> np.ndarray:
    """The scene with its frame index in the first pixel."""
    frame = scene(seed=0)
    frame[0, 0] = (index % 256, index // 256, 0)
    return frame


def test_live_source_faster_than_model(tmp_path, capsys, tiny_ckpt, monkeypatch):
    """The camera gives 3 frames while the model handles one: each processed frame is
    the newest, the stale ones are dropped, and the run ends cleanly when the camera
    stops."""
    import yolact.cli.eval_cli as cli
    from yolact.io.sources import VideoSource
    from yolact.models.yolact.predictor import YolactPredictor

    camera = SteppedCamera(60, indexed_scene)
    monkeypatch.setattr(
        cli.VideoSource,
        "open",
        staticmethod(lambda spec, **kw: VideoSource(camera, "webcam", spec)),
    )
    lags = []
    real_pre = YolactPredictor.run_pre

    def slow_pre(self, images):
        newest = camera.latest
        for img in images:
            lags.append(newest - (int(img[0, 0, 0]) + 256 * int(img[0, 0, 1])))
        camera.step(3)  # three frames arrive while the model works on this one
        return real_pre(self, images)

    monkeypatch.setattr(YolactPredictor, "run_pre", slow_pre)
    dst = tmp_path / "cam.avi"
    code, out, err = run_main(capsys, f"--trained_model={tiny_ckpt}", f"--video=0:{dst}")
    assert code == 0, err
    assert lags and max(lags) == 0, lags
    assert len(lags) == 21  # frames 0, 3, 6, ..., 57 and the last, 59: the others stale
    assert "stale frames dropped" in out
    assert video_props(dst)[0] == len(lags)


def test_sigterm_while_stream_is_silent_ends_promptly(tmp_path, capsys, tiny_ckpt, mjpeg_server):
    """A stream that stops sending (read timeout 10 s): SIGTERM ends the run within about
    half a second, with the frames processed before it written."""
    import threading

    from yolact.models.yolact.predictor import YolactPredictor

    server = mjpeg_server(3, then="stall", make_frame=lambda i: scene(seed=i))
    dst, js = tmp_path / "live.avi", tmp_path / "live.json"
    real_call, sent = YolactPredictor.run_network, []

    def signal_when_silent() -> None:
        if server.stalled.wait(60):  # the server sent its frames and went silent
            os.kill(os.getpid(), signal.SIGTERM)

    def call_then_signal(self, batch):
        if not sent:
            sent.append(threading.Thread(target=signal_when_silent))
            sent[0].start()
        return real_call(self, batch)

    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # in case it fires late
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(YolactPredictor, "run_network", call_then_signal)
            code, out, err = run_main(
                capsys, f"--trained_model={tiny_ckpt}", f"--video={server.url}:{dst}",
                f"--output_json={js}",
            )  # fmt: skip
        sent[0].join(60)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and "stopped by SIGTERM" in err and "Traceback" not in err, err
    # The stop ended the run while the stream was still silent, not its read timeout.
    assert not server.stall_ended.is_set() and "ended or dropped" not in err
    count = video_props(dst)[0]
    assert 1 <= count <= 3 and f"processed {count} frames" in out
    assert {e["image_id"] for e in json.loads(js.read_text())} <= set(range(3))


# ---- the Python API's input checks (Predictor.__call__) ---------------------------------


@pytest.fixture(scope="module")
def predictor(tiny_ckpt):
    from yolact.predictor import Predictor

    return Predictor.from_checkpoint(tiny_ckpt, device="cpu")


def same_detections(a, b) -> bool:
    return (
        len(a) == len(b)
        and torch.equal(a.labels, b.labels)
        and torch.allclose(a.boxes, b.boxes)
        and torch.allclose(a.scores, b.scores)
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "image is None: cv2.imread could not read the file"),
        (np.zeros((72, 96, 3), np.int32), "image has unsupported dtype int32 (use uint8"),
        (np.zeros((72, 96, 3), bool), "image has unsupported dtype bool"),
        (np.zeros(96, np.uint8),
         "image must be [H, W] or [H, W, C], got a 1-D array of shape (96,)"),
        (np.zeros((2, 72, 96, 3), np.uint8),
         "got a 4-D array of shape (2, 72, 96, 3); pass several images as a list"),
        (np.zeros((72, 96, 2), np.uint8),
         "image must have 1, 3 or 4 channels (gray, BGR, BGRA), got 2"),
        (np.zeros((0, 0, 3), np.uint8), "image is empty: shape (0, 0, 3)"),
        (np.zeros((72, 0), np.uint8), "image is empty: shape (72, 0)"),
        ([scene(), None], "images[1] is None: cv2.imread could not read the file"),
        ([scene(), np.zeros((4, 4, 5), np.uint8)], "images[1] must have 1, 3 or 4 channels"),
        ("photo.jpg",
         "expected an image (numpy array [H, W, 3], BGR) or a list of them, got builtins.str"),
        (torch.zeros(3, 72, 96), "got torch.Tensor"),
        ([torch.zeros(72, 96, 3)],
         "images[0] must be a numpy array [H, W, 3] (BGR, as cv2.imread returns), got torch."),
    ],
)  # fmt: skip
def test_predictor_rejects_bad_input_in_one_line(predictor, bad, message):
    from yolact.io.images import InputError

    with pytest.raises(InputError) as info:
        predictor(bad)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_predictor_on_unreadable_path_says_why(predictor, tmp_path):
    """The README's snippet with a bad path: cv2.imread gives None."""
    from yolact.io.images import InputError

    with pytest.raises(InputError, match=r"^image is None: cv2\.imread could not read the file"):
        predictor(cv2.imread(str(tmp_path / "missing.jpg")))


def test_image_conversion_values():
    """16-bit divides by 257, float [0, 1] scales by 255 and rounds; alpha is dropped."""
    from yolact.io.images import to_bgr8

    v = np.arange(256, dtype=np.uint8)[None]  # [1, 256] gray
    bgr = np.repeat(v[..., None], 3, axis=2)
    assert np.array_equal(to_bgr8(v.astype(np.uint16) * 257), bgr)
    assert np.array_equal(to_bgr8(v.astype(np.float32) / 255), bgr)
    assert to_bgr8(np.array([[0.5, 0.499]], np.float32)).tolist() == [[[128] * 3, [127] * 3]]
    bgra = np.concatenate([bgr, np.zeros_like(bgr[..., :1])], axis=2)
    assert np.array_equal(to_bgr8(bgra), bgr)


def test_predictor_converts_gray_bgra_16bit_and_float(predictor):
    """Other image kinds are converted to 8-bit BGR as eval.py converts files."""
    bgr = scene()
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    reference = {
        "gray": predictor(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)),
        "bgr": predictor(bgr),
    }
    assert len(reference["bgr"]) > 0
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = 17  # alpha is dropped
    cases = {
        "gray": [gray, gray[..., None], gray.astype(np.uint16) * 257],
        "bgr": [bgra, bgr.astype(np.uint16) * 257, bgr.astype(np.float32) / 255.0],
    }
    for kind, images in cases.items():
        for image in images:
            assert same_detections(predictor(image), reference[kind]), (kind, image.dtype)
    batch = predictor((gray, bgra))
    assert same_detections(batch[0], reference["gray"])
    assert same_detections(batch[1], reference["bgr"])
    assert predictor([]) == []


# ---- --help states every flag and its default -------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("eval.py", ["--top_k TOP_K detections shown per image (default: 5)",
                     "detections at or below are hidden (default: 0.0)",
                     "--fast_nms FAST_NMS Fast NMS (False: torchvision NMS) (default: True)",
                     "130 stopped by SIGINT (Ctrl-C), 143 stopped by SIGTERM"]),
        ("train.py", ["total batch over all processes (default: 8)",
                      "config name (see yolact/models/*/config.py; default: the config stored in "
                      "the --resume file, else yolact_base)",
                      "--save_interval SAVE_INTERVAL iterations between checkpoints "
                      "(default: 10000)"]),
    ],
)  # fmt: skip
def test_help_shows_defaults(script, expected):
    proc = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # undo argparse's line wrapping
    for needle in expected:
        assert needle in text


@pytest.mark.parametrize("script", ["eval", "train"])
def test_every_flag_has_help_and_states_its_default(script):
    from yolact.cli import eval_args, train_cli

    parser = eval_args.build_parser() if script == "eval" else train_cli.build_parser()
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        assert action.help, action.option_strings
        default = action.default
        if action.nargs == 0 or default is None:
            continue
        assert f"(default: {default})" in text or "(default: " in action.help, action.dest


# ---- SIGINT / SIGTERM end long runs cleanly ---------------------------------------------

# eval.py's main with each network call announced on stdout and held until the test
# answers on stdin (end of input: no more holding), so that the test can signal the
# process in the middle of a run, after a known number of calls.
SLOW_EVAL = """
import sys
from yolact.models.yolact.predictor import YolactPredictor
call = YolactPredictor.run_network
def slow(self, batch):
    out = call(self, batch)
    print("predicted", flush=True)
    sys.stdin.readline()
    return out
YolactPredictor.run_network = slow
from yolact.cli.eval_cli import main
sys.exit(main(sys.argv[1:]))
"""


def signal_mid_run(argv: list[str], signum: int, after_calls: int = 8) -> tuple[int, str, str]:
    """Run eval.py (held after each network call) in a subprocess, send ``signum``
    while it is held after ``after_calls`` calls; returns (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_EVAL, "--no_bar", "--cuda=False", *argv],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if not line.startswith("predicted"):
                continue
            if sum(ln.startswith("predicted") for ln in lines) == after_calls:
                proc.send_signal(signum)
                break
            proc.stdin.write("go\n")
            proc.stdin.flush()
        out, err = proc.communicate(timeout=120)  # closes stdin: no call is held again
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, "".join(lines) + out, err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_video_keeps_playable_video_and_json(tmp_path, tiny_ckpt, signum, code):
    src, dst, js = tmp_path / "in.avi", tmp_path / "out.mp4", tmp_path / "v.json"
    write_video(src, 300, size=(64, 48))
    rc, out, err = signal_mid_run(
        [f"--trained_model={tiny_ckpt}", f"--video={src}:{dst}", f"--output_json={js}",
         "--video_multiframe=2"], signum,
    )  # fmt: skip
    assert rc == code, err
    assert "Traceback" not in err
    name = signal.Signals(signum).name
    assert f"stopped by {name}; kept what was processed" in err
    match = re.search(r"processed (\d+) frames", out)
    assert match, out
    processed = int(match.group(1))
    calls = out.count("predicted")
    # stopped early, every read frame kept (the last batch may hold the one frame read
    # before the stop was seen)
    assert 8 <= calls < 150 and processed in (2 * calls - 1, 2 * calls)
    assert f"wrote {dst} ({processed} frames)" in out
    assert video_props(dst) == (processed, 64, 48, pytest.approx(12.0, abs=0.01))
    ids = {e["image_id"] for e in json.loads(js.read_text())}
    assert ids == set(range(processed))


def test_sigterm_during_images_folder_keeps_what_was_drawn(tmp_path, tiny_ckpt):
    src, dst, js = tmp_path / "in", tmp_path / "out", tmp_path / "d.json"
    src.mkdir()
    for i in range(60):
        cv2.imwrite(str(src / f"img{i:02d}.png"), scene(48, 64, seed=i))
    rc, out, err = signal_mid_run(
        [f"--trained_model={tiny_ckpt}", f"--images={src}:{dst}", f"--output_json={js}"],
        signal.SIGTERM, after_calls=5,
    )  # fmt: skip
    assert rc == 143 and "Traceback" not in err, err
    processed = int(re.search(r"processed (\d+) images", out).group(1))
    assert 5 <= processed < 60 and processed == out.count("predicted")
    assert sorted(os.listdir(dst)) == [f"img{i:02d}.png" for i in range(processed)]
    assert all(cv2.imread(str(dst / f)).shape == (48, 64, 3) for f in os.listdir(dst))
    results = json.loads(js.read_text())
    assert {e["image_id"] for e in results} == set(range(processed))
