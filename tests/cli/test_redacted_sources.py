"""Issue 16 item 8 (part): stream credentials never appear in what eval.py shows.

The password of a source URL (``rtsp://user:pass@host/...``) is hidden in every
message, in ``--output_json`` and in the window title, as the reader already
hides it in its own errors.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import REPO, free_port

import yolact.cli.eval_cli as cli
from yolact.io.sources import redact

WEIGHTS = str(REPO / "weights" / "yolact_tiny_synthetic.pth")
SECRET = "s3cret-pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://user:pass@cam:554/live", "rtsp://user:***@cam:554/live"),
        ("rtsp://user:p@ss@cam/live", "rtsp://user:***@cam/live"),  # "@" in the password
        ("http://user:pass@cam", "http://user:***@cam"),
        ("https://token@cam/x.m3u8", "https://***@cam/x.m3u8"),  # a user name alone
        ("rtsp://cam:554/live", "rtsp://cam:554/live"),
        ("http://cam/a@b.mjpg", "http://cam/a@b.mjpg"),  # "@" in the path only
        ("videos/a@b.mp4", "videos/a@b.mp4"),
        ("0", "0"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def frame(i: int) -> np.ndarray:
    img = np.full((72, 96, 3), 60, np.uint8)
    cv2.circle(img, (40, 30), 15, (0, 200, 0), -1)
    return img


def test_stream_password_is_hidden_in_output_json_and_window(
    tmp_path, capsys, monkeypatch, mjpeg_server
):
    server = mjpeg_server(4, make_frame=frame)
    port = server.httpd.server_address[1]
    url = f"http://viewer:{SECRET}@127.0.0.1:{port}"  # no path: the JSON file_name is the host
    titles: list[str] = []
    monkeypatch.setattr(cli, "open_window_possible", lambda: True)
    monkeypatch.setattr(cv2, "imshow", lambda title, image: titles.append(title))
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: -1)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    js = tmp_path / "d.json"
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", f"--video={url}",
                     f"--output_json={js}"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    shown = f"http://viewer:***@127.0.0.1:{port}"
    assert f"{shown}: processed " in out
    assert f"note: the stream {shown} ended or dropped" in err
    assert titles and set(titles) == {f"yolact: {shown}"}
    results = js.read_text()
    assert {r["file_name"] for r in json.loads(results)} == {f"viewer:***@127.0.0.1:{port}"}
    assert SECRET not in out + err + results + "".join(titles)


def test_stream_password_is_hidden_when_it_cannot_connect(capsys):
    url = f"http://viewer:{SECRET}@127.0.0.1:{free_port()}/live"
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", f"--video={url}"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: cannot connect to stream http://viewer:***@127.0.0.1:{url.split(':')[-1]} "
        "(refused, unreachable or no answer in time)"
    ]
    assert SECRET not in out + err


def test_image_url_password_is_hidden_in_the_error(capsys):
    url = f"http://viewer:{SECRET}@127.0.0.1:{free_port()}/photo.jpg"
    code = cli.main(["--no_bar", "--cuda=False", f"--trained_model={WEIGHTS}", f"--image={url}"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines() == [
        f"error: image not found: http://viewer:***@127.0.0.1:{url.split(':')[-1]}"
    ]
    assert SECRET not in out + err


class _SilentCapture:
    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def read(self):
        return False, None

    def get(self, prop_id: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


def test_a_source_built_with_a_url_name_hides_the_password():
    from yolact.io.sources import SourceError, VideoSource

    with pytest.raises(SourceError) as info:
        VideoSource(_SilentCapture(), "stream", f"rtsp://cam:{SECRET}@10.0.0.1/live")
    message = "stream rtsp://cam:***@10.0.0.1/live connected but sent no frame in time"
    assert str(info.value) == message
