"""The sources of ``--video=SRC1,SRC2,...`` and ``--streams=FILE``: the comma rule,
the file format and the bad lists (one line each)."""

from __future__ import annotations

import pytest

from yolact.cli.predictors import UsageError
from yolact.cli.video_list import VideoItem, read_streams_file, split_video_list, video_items
from yolact.io.images import InputError


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("a.mp4", ["a.mp4"]),
        ("a.mp4,b.mp4", ["a.mp4", "b.mp4"]),
        ("a.mp4:x.avi,b.mp4:y.avi", ["a.mp4:x.avi", "b.mp4:y.avi"]),
        ("0,1", ["0", "1"]),
        ("0:cam0.mp4,1:cam1.mp4", ["0:cam0.mp4", "1:cam1.mp4"]),
        # Commas inside a URL stay there ...
        ("rtsp://u:p@cam:554/s?res=640x480,q=hi", ["rtsp://u:p@cam:554/s?res=640x480,q=hi"]),
        (
            "http://h:8080/a?x=1,y=2:o.avi,rtsp://c/b",
            ["http://h:8080/a?x=1,y=2:o.avi", "rtsp://c/b"],
        ),
        ("rtsp://cam/s?res=640,480", ["rtsp://cam/s?res=640,480"]),
        ("rtsp://a/1?p=x,2:cam.avi", ["rtsp://a/1?p=x,2:cam.avi"]),
        # ... unless another URL, or a webcam index outside the query, follows.
        ("rtsp://a/1,rtsp://b/2,0", ["rtsp://a/1", "rtsp://b/2", "0"]),
        ("rtsp://a/x,y/1,2:cam.avi", ["rtsp://a/x,y/1", "2:cam.avi"]),
        ("rtsp://a/1?p=x,rtsp://b/2?q=1,2", ["rtsp://a/1?p=x", "rtsp://b/2?q=1,2"]),
        # A URL with its OUT given ends at the next comma.
        ("rtsp://a/1:o.avi,b.mp4", ["rtsp://a/1:o.avi", "b.mp4"]),
    ],
)
def test_comma_rule(value: str, items: list[str]) -> None:
    assert split_video_list(value) == items


def test_an_existing_path_after_a_url_starts_a_source(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    assert split_video_list("rtsp://a/s?k=v,clip.mp4:o.avi") == ["rtsp://a/s?k=v", "clip.mp4:o.avi"]
    assert split_video_list("rtsp://a/s?k=v,other.mp4") == ["rtsp://a/s?k=v,other.mp4"]


def test_a_file_whose_name_has_commas_is_one_source(tmp_path) -> None:
    odd = tmp_path / "a,b.mp4"
    odd.write_bytes(b"x")
    assert split_video_list(f"{odd}:out.avi") == [f"{odd}:out.avi"]
    assert split_video_list(f"{tmp_path / 'a'},{tmp_path / 'b.mp4'}") == [
        str(tmp_path / "a"),
        str(tmp_path / "b.mp4"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a.mp4,,b.mp4", "--video: item 2 of 3 is empty in 'a.mp4,,b.mp4'"),
        ("a.mp4,", "--video: item 2 of 2 is empty in 'a.mp4,'"),
        (",a.mp4", "--video: item 1 of 2 is empty in ',a.mp4'"),
        ("a.mp4, ,b.mp4", "--video: item 2 of 3 is empty in 'a.mp4, ,b.mp4'"),
    ],
)
def test_empty_items(value: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        split_video_list(value)
    assert str(err.value) == message


def test_streams_file_lines_comments_and_blanks(tmp_path) -> None:
    path = tmp_path / "list.streams"
    path.write_text(
        "# cameras of the yard\n\n  rtsp://u:p@cam:554/a?x=1,2  \n0:cam.avi\n\t\n  # off\nb.mp4\n"
    )
    assert read_streams_file(str(path)) == ["rtsp://u:p@cam:554/a?x=1,2", "0:cam.avi", "b.mp4"]
    assert video_items(None, str(path)) == [
        VideoItem("rtsp://u:p@cam:554/a?x=1,2", None),
        VideoItem("0", "cam.avi"),
        VideoItem("b.mp4", None),
    ]


def test_streams_file_without_a_final_newline_and_crlf(tmp_path) -> None:
    path = tmp_path / "list.txt"
    path.write_bytes(b"a.mp4\r\nb.mp4")
    assert read_streams_file(str(path)) == ["a.mp4", "b.mp4"]


def test_bad_streams_files(tmp_path) -> None:
    missing = tmp_path / "none.streams"
    with pytest.raises(InputError) as err:
        read_streams_file(str(missing))
    assert str(err.value) == f"--streams: file not found: {missing}"
    empty = tmp_path / "empty.streams"
    empty.write_text("# nothing yet\n\n   \n")
    with pytest.raises(InputError) as err:
        read_streams_file(str(empty))
    assert str(err.value) == f"--streams: {empty} lists no source (only blank or # lines)"
    with pytest.raises(InputError) as err:
        read_streams_file(str(tmp_path))
    assert str(err.value) == f"--streams: expected a text file, got a folder: {tmp_path}"
    binary = tmp_path / "bin.streams"
    binary.write_bytes(b"\xff\xfe\x00a")
    with pytest.raises(InputError) as err:
        read_streams_file(str(binary))
    assert str(err.value) == f"--streams: {binary} is not UTF-8 text"


def test_items_split_in_and_out() -> None:
    assert video_items("a.mp4:x.avi,http://u:p@h:81/s", None) == [
        VideoItem("a.mp4", "x.avi"),
        VideoItem("http://u:p@h:81/s", None),
    ]
    assert video_items(None, None) == []


def test_items_bad_ones() -> None:
    with pytest.raises(UsageError) as usage:
        video_items("a.mp4", "list.streams")
    assert str(usage.value) == "give --video or --streams, not both"
    with pytest.raises(InputError) as err:
        video_items("a.mp4,:x.avi", None)
    assert str(err.value) == "--video: missing input before ':' in ':x.avi'"


def test_commas_only_after_an_existing_input_still_split(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.avi").write_bytes(b"x")
    assert split_video_list("a.avi:o.avi,b.avi:p.avi") == ["a.avi:o.avi", "b.avi:p.avi"]


def test_a_url_with_a_comma_list_in_its_query_stays_whole() -> None:
    items = video_items("rtsp://u:p@cam:554/s?res=640,480:out.avi", None)
    assert items == [VideoItem("rtsp://u:p@cam:554/s?res=640,480", "out.avi")]
