"""The helpers of eval.py's many-source video runs: which sources the window shows,
the rate each OUT is written at, the event lines and the stream keywords."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from yolact.cli.eval_args import EvalOptions
from yolact.cli.eval_streams import (
    event_printer,
    grid_window,
    note_not_shown,
    open_writers,
    stream_options,
)
from yolact.cli.video_list import VideoItem


@dataclass
class FakeSource:
    width: int = 64
    height: int = 48
    fps: float = 30.0
    is_live: bool = True


ITEMS = [
    VideoItem("0", "cam.avi"),
    VideoItem("rtsp://u:secret@h/s", None),
    VideoItem("b.mp4", None),
]


def test_window_shows_the_sources_without_out() -> None:
    sources = [FakeSource(), FakeSource(80, 60), FakeSource(32, 24, is_live=False)]
    window = grid_window(ITEMS, sources, display=False, possible=True)
    assert window is not None and window.title == "yolact: 3 sources"
    assert [window.shows(k) for k in range(3)] == [False, True, True]
    assert window.size == (80, 60)  # the largest sides of the sources it shows
    every = grid_window(ITEMS, sources, display=True, possible=True)
    assert every is not None and all(every.shows(k) for k in range(3))
    assert grid_window(ITEMS, sources, display=True, possible=False) is None
    assert grid_window(ITEMS[:1], sources[:1], display=False, possible=True) is None


def test_one_source_window_is_named_after_it_without_credentials() -> None:
    window = grid_window(ITEMS[1:2], [FakeSource()], display=False, possible=True)
    assert window is not None and window.title == "yolact: rtsp://u:***@h/s"


def test_note_names_the_sources_neither_written_nor_shown(capsys) -> None:
    note_not_shown(ITEMS, None)
    assert capsys.readouterr().err == (
        "note: no display here and no OUT for rtsp://u:***@h/s, b.mp4; their detections "
        "are only counted\n"
    )
    window = grid_window(ITEMS, [FakeSource()] * 3, display=False, possible=True)
    note_not_shown(ITEMS, window)
    note_not_shown(ITEMS[:1], None)
    assert capsys.readouterr().err == ""
    note_not_shown([VideoItem("a.mp4", None)], None)
    assert capsys.readouterr().err == (
        "note: no display here and no output file given; detections are only counted\n"
    )


def test_writers_rate_is_the_source_s_or_the_live_cap() -> None:
    made: list[tuple[str, float, tuple[int, int]]] = []

    def make(path: str, fps: float, size: tuple[int, int]) -> str:
        made.append((path, fps, size))
        return path

    items = [VideoItem("0", "cam.avi"), VideoItem("a.mp4", "a.avi"), VideoItem("1", None),
             VideoItem("rtsp://h/s", "s.avi")]  # fmt: skip
    sources = [FakeSource(fps=30.0), FakeSource(32, 24, fps=25.0, is_live=False),
               FakeSource(), FakeSource(fps=8.0)]  # fmt: skip
    assert open_writers(items, sources, 10.0, make) == ["cam.avi", "a.avi", None, "s.avi"]
    # The cap lowers a live source's rate only; a file keeps its own.
    assert made == [
        ("cam.avi", 10.0, (64, 48)),
        ("a.avi", 25.0, (32, 24)),
        ("s.avi", 8.0, (64, 48)),
    ]
    made.clear()
    open_writers(items, sources, None, make)
    assert [fps for _, fps, _ in made] == [30.0, 25.0, 8.0]


def test_writers_opened_are_closed_when_one_fails() -> None:
    closed: list[str] = []

    class Writer:
        def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
            if path == "bad.avi":
                raise OSError("cannot open bad.avi")
            self.path = path

        def close(self) -> None:
            closed.append(self.path)

    items = [VideoItem("0", "a.avi"), VideoItem("1", "bad.avi")]
    with pytest.raises(OSError, match="bad.avi"):
        open_writers(items, [FakeSource(), FakeSource()], None, Writer)
    assert closed == ["a.avi"]


def test_events_are_one_note_line_each(capsys) -> None:
    on_event = event_printer()
    on_event(1, "rtsp://h/s ended; reconnecting in 0.5 s (attempt 1 of 3)")
    on_event(0, "webcam 0 did not reopen\n(details)")
    assert capsys.readouterr().err.splitlines() == [
        "note: source 1: rtsp://h/s ended; reconnecting in 0.5 s (attempt 1 of 3)",
        "note: source 0: webcam 0 did not reopen",
    ]


def test_stream_keywords_of_the_flags() -> None:
    options = stream_options(EvalOptions(video="0,1", detect_fps=12.5, batch_wait_ms=20.0,
                                         reconnect=3))  # fmt: skip
    assert {k: v for k, v in options.items() if k != "on_event"} == {
        "detect_fps": 12.5,
        "batch_wait": 0.02,
        "reconnect": 3,
    }
    assert callable(options["on_event"])
    defaults = stream_options(EvalOptions(video="0"))
    assert (defaults["detect_fps"], defaults["batch_wait"], defaults["reconnect"]) == (
        None,
        0.005,
        0,
    )
