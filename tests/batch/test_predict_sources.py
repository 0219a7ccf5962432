"""Issue 20 item 3: the image list of ``yolact predict`` and its split into shards."""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import exactly

from yolact.batch.jsonl import resume
from yolact.batch.sources import ImageEntry, Shard, SourceError, list_source
from yolact.io.outputs import OutputError


def test_every_image_falls_in_exactly_one_shard_and_stays_there():
    keys = [f"photos/{i:04d}.jpg" for i in range(1000)]
    for n in (1, 2, 3, 7):
        shards = [Shard(i, n) for i in range(n)]
        owners = [[s.index for s in shards if s.takes(k)] for k in keys]
        assert all(len(o) == 1 for o in owners)
        sizes = [sum(o == [i] for o in owners) for i in range(n)]
        assert min(sizes) > 1000 / n * 0.8  # the hash spreads the keys
        # Adding images to the list moves no image to another shard.
        assert [[s.index for s in shards if s.takes(k)] for k in keys[::3]] == owners[::3]
    # The rule, computed by hand: SHA-1's first 8 bytes, big-endian, modulo N.
    key = "photos/0042.jpg"
    expected = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") % 5
    assert [Shard(i, 5).takes(key) for i in range(5)].index(True) == expected


@pytest.mark.parametrize("spec", ["0/0", "-1/2", "3/3", "1/2/3", "x", "", "1.0/2"])
def test_bad_shard_specs(spec):
    with pytest.raises(SourceError, match=exactly(
        f"--shard must be i/N with 0 <= i < N (like 0/4), got {spec!r}"
    )):  # fmt: skip
        Shard.parse(spec)


def test_a_list_file_resolves_relative_paths_from_its_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    listing = tmp_path / "sub" / "list.txt"
    listing.write_text("# comment\n b.png \n../a.jpg\n/abs/c.png\nb.png\n")
    assert list_source(str(listing)) == [
        ImageEntry("/abs/c.png", 0, "c.png"),
        ImageEntry(str(tmp_path / "a.jpg"), 1, "a.jpg"),
        ImageEntry(str(tmp_path / "sub" / "b.png"), 2, "b.png"),
    ]


def test_a_glob_keeps_image_files_only(tmp_path):
    for name in ("b.PNG", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()
    assert [e.file_name for e in list_source(str(tmp_path / "*"))] == ["a.jpg", "b.PNG"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not JSON"),
        ('{"annotations": []}', "has no COCO 'images' list"),
        ('{"images": [{"id": "1", "file_name": "a.jpg"}]}',
         "images[0] needs an integer 'id' and a 'file_name'"),
        ('{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}]}',
         "image id 1 appears twice"),
        ('{"images": []}', "no images in"),
    ],
)  # fmt: skip
def test_bad_coco_json_is_one_line(tmp_path, content, message):
    path = tmp_path / "ann.json"
    path.write_text(content)
    with pytest.raises(SourceError) as err:
        list_source(str(path))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_image_dir_goes_with_a_coco_json(tmp_path):
    with pytest.raises(SourceError, match=exactly("--image_dir goes with a COCO .json --source")):
        list_source(str(tmp_path), image_dir=str(tmp_path))
    with pytest.raises(SourceError, match=exactly(f"no such list file: {tmp_path}/l.txt")):
        list_source(str(tmp_path / "l.txt"))


def test_resume_reads_done_keys_and_refuses_a_folder(tmp_path):
    out = tmp_path / "r.jsonl"
    lines = [json.dumps({"path": p, "detections": []}) + "\n" for p in ("a", "b")]
    out.write_text("".join(lines))
    assert resume(str(out)) == ({"a", "b"}, 0)
    assert out.read_text() == "".join(lines)
    with pytest.raises(OutputError, match="is a folder"):
        resume(str(tmp_path))
