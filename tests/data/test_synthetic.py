"""Synthetic scenes, their COCO export and the demo video."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from yolact.data import (
    SYNTHETIC_CLASSES,
    CocoDataset,
    Shape,
    make_scene,
    render,
    write_coco_dataset,
    write_synthetic_video,
)
from yolact.data.synthetic import (
    MIN_VISIBLE_PIXELS,
    VARIED,
    SceneOptions,
    main,
    mask_to_polygons,
    shape_mask,
)

BLACK = np.zeros((64, 96, 3), dtype=np.uint8)


def _label(name: str) -> int:
    return SYNTHETIC_CLASSES.index(name)


def test_scene_is_deterministic_for_a_seed() -> None:
    a = make_scene(np.random.default_rng(7), (64, 80))
    b = make_scene(np.random.default_rng(7), (64, 80))
    c = make_scene(np.random.default_rng(8), (64, 80))
    for key in ("image", "boxes", "labels", "masks"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], c["image"])


def test_scene_format_and_invariants() -> None:
    H, W = 72, 96
    seen = set()
    for seed in range(40):
        s = make_scene(np.random.default_rng(seed), (H, W), max_objects=5)
        N = len(s["labels"])
        assert 1 <= N <= 5
        assert s["image"].shape == (H, W, 3) and s["image"].dtype == np.uint8
        assert s["masks"].shape == (N, H, W) and s["masks"].dtype == np.uint8
        assert s["boxes"].shape == (N, 4) and s["boxes"].dtype == np.float32
        assert s["labels"].dtype == np.int64
        assert s["crowd_boxes"].shape == (0, 4) and s["crowd_masks"].shape == (0, H, W)
        assert (s["height"], s["width"]) == (H, W)
        assert set(np.unique(s["masks"])) <= {0, 1}
        # Occlusion removes covered pixels from the lower object: masks are disjoint.
        assert s["masks"].sum(axis=0).max() <= 1
        assert (s["masks"].reshape(N, -1).sum(axis=1) >= MIN_VISIBLE_PIXELS).all()
        for mask, (x1, y1, x2, y2) in zip(s["masks"], s["boxes"].astype(int)):
            ys, xs = np.nonzero(mask)
            assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        seen.update(s["labels"].tolist())
    assert seen == set(range(len(SYNTHETIC_CLASSES)))


_STAR_EDGE = math.sqrt(1 + 0.42**2 - 2 * 0.42 * math.cos(math.radians(36)))


@pytest.mark.parametrize(
    "name, area, perimeter",
    [
        ("circle", math.pi, 2 * math.pi),
        ("square", 2.0, 4 * math.sqrt(2)),
        ("triangle", 3 * math.sqrt(3) / 4, 3 * math.sqrt(3)),
        ("star", 10 * 0.5 * 0.42 * math.sin(math.radians(36)), 10 * _STAR_EDGE),
        ("cross", 8 * 0.34 - 4 * 0.34**2, 4 * 0.68 + 8 * 0.66),
    ],
)
def test_each_class_draws_its_own_shape(name: str, area: float, perimeter: float) -> None:
    """Areas for a unit circumradius; OpenCV fills boundary pixels too (about half the
    perimeter more)."""
    r = 25.0
    mask = shape_mask(Shape(_label(name), (48.0, 32.0), r, angle=0.3), (64, 96))
    expected = area * r * r + perimeter * r / 2
    assert abs(mask.sum() / expected - 1) < 0.04


def test_render_occlusion_masks_are_visible_pixels() -> None:
    square = Shape(_label("square"), (40.0, 32.0), 20.0, 0.0, (200, 100, 50))
    circle = Shape(_label("circle"), (55.0, 32.0), 12.0, 0.0, (30, 220, 90))
    image, masks, labels = render(BLACK, [square, circle])
    alone_square, alone_circle = shape_mask(square, (64, 96)), shape_mask(circle, (64, 96))
    assert (alone_square & alone_circle).sum() > 100  # they overlap
    assert labels.tolist() == [_label("square"), _label("circle")]
    np.testing.assert_array_equal(masks[0], alone_square & ~alone_circle)
    np.testing.assert_array_equal(masks[1], alone_circle)
    # Drawn pixels are exactly the union of the masks.
    np.testing.assert_array_equal(image.any(axis=2), masks.any(axis=0))
    # The circle is drawn on top with its own colour (shaded within +-20%).
    ratio = image[masks[1].astype(bool)][:, 1] / 220
    assert ratio.min() >= 0.8 - 1e-6 and ratio.max() <= 1.2


def test_render_drops_hidden_objects_and_paints_them_as_background() -> None:
    small = Shape(_label("triangle"), (40.0, 30.0), 6.0, 0.0, (255, 255, 255))
    sliver = Shape(_label("square"), (40.0, 39.5), 10.0, 0.0, (255, 0, 255))
    big = Shape(_label("square"), (40.0, 30.0), 22.0, 0.0, (0, 0, 255))
    # The sliver keeps a few pixels below the big square, fewer than the minimum.
    left = shape_mask(sliver, (64, 96)) & ~shape_mask(big, (64, 96))
    assert 0 < left.sum() < MIN_VISIBLE_PIXELS
    image, masks, labels = render(BLACK, [small, sliver, big])
    only_big, only_big_masks, _ = render(BLACK, [big])
    assert labels.tolist() == [_label("square")]
    np.testing.assert_array_equal(masks, only_big_masks)
    np.testing.assert_array_equal(image, only_big)
    empty_image, empty_masks, empty_labels = render(BLACK, [])
    assert empty_masks.shape == (0, 64, 96) and empty_labels.shape == (0,)
    np.testing.assert_array_equal(empty_image, BLACK)


# pycocotools' annToMask trips a numpy 2 deprecation inside its Cython code.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_export_round_trip(tmp_path: Path) -> None:
    size = (48, 64)
    paths = write_coco_dataset(str(tmp_path / "a"), num_train=4, num_val=2, size=size, seed=3)
    again = write_coco_dataset(str(tmp_path / "b"), num_train=4, num_val=2, size=size, seed=3)
    for key in ("train_ann_file", "val_ann_file"):
        assert Path(paths[key]).read_bytes() == Path(again[key]).read_bytes()
    assert (tmp_path / "a/train/000004.png").read_bytes() == (
        tmp_path / "b/train/000004.png"
    ).read_bytes()

    for split_index, split, count in ((0, "train", 4), (1, "val", 2)):
        ds = CocoDataset(paths[f"{split}_ann_file"], paths[f"{split}_image_dir"])
        assert ds.class_names == SYNTHETIC_CLASSES and len(ds) == count
        assert ds.label_to_category_id == list(range(1, len(SYNTHETIC_CLASSES) + 1))
        assert ds.skipped == {}
        rng = np.random.default_rng([3, split_index])
        for i in range(count):
            scene, loaded = make_scene(rng, size), ds[i]
            assert loaded["file_name"] == f"{i + 1:06d}.png"
            for key in ("image", "masks", "labels", "boxes"):
                np.testing.assert_array_equal(loaded[key], scene[key], err_msg=key)

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(paths["train_ann_file"])
    ds = CocoDataset(paths["train_ann_file"], paths["train_image_dir"])
    assert sorted(coco.getImgIds()) == [1, 2, 3, 4]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SYNTHETIC_CLASSES)
    for i, image_id in enumerate(ds.image_ids):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        masks = np.stack([coco.annToMask(a) for a in anns])
        np.testing.assert_array_equal(masks, ds[i]["masks"])
        assert [a["area"] for a in anns] == masks.reshape(len(anns), -1).sum(axis=1).tolist()


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_video_has_requested_frames_and_size(tmp_path: Path, ext: str) -> None:
    path = write_synthetic_video(str(tmp_path / f"v{ext}"), num_frames=12, size=(48, 64), fps=10)
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 12
    assert frames[0].shape == (48, 64, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # things move


def test_video_rejects_unknown_container(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.mp4"):
        write_synthetic_video(str(tmp_path / "v.gif"))


def test_cli_writes_dataset_and_video(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "syn"
    argv = ["--out", str(out), "--train", "2", "--val", "1", "--size", "40", "56"]
    assert main([*argv, "--video", str(out / "demo.avi"), "--frames", "5"]) == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["000001.png", "000002.png"]
    assert cv2.imread(str(out / "val" / "000001.png")).shape == (40, 56, 3)
    assert (out / "annotations" / "val.json").is_file() and (out / "demo.avi").is_file()
    assert "train_ann_file" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--size", "1", "2", "3"])


@pytest.mark.parametrize("radius", [(0.05, 0.05), (0.3, 0.3)])
def test_radius_range_bounds_object_size(radius: tuple[float, float]) -> None:
    """A lone shape of circumradius r fits in a 2r box and (all five classes) spans > r."""
    S = 100
    rng = np.random.default_rng(3)
    for _ in range(25):
        scene = make_scene(rng, (S, S), max_objects=1, radius_range=radius)
        (x1, y1, x2, y2), r = scene["boxes"][0], radius[0] * S
        side = max(x2 - x1, y2 - y1)
        cut = min(x1, y1) == 0 or max(x2, y2) == S  # part of it outside the image
        assert side <= 2 * r + 2
        assert cut or side > r


def test_bad_radius_range_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="0 < low <= high"):
        make_scene(np.random.default_rng(0), radius_range=(0.3, 0.1))
    with pytest.raises(ValueError, match="0 < low <= high"):
        write_synthetic_video("v.mp4", radius_range=(0.0, 0.1))
    with pytest.raises(SystemExit):
        main(["--radius", "0.3", "0.1"])
    assert "--radius takes LOW HIGH" in capsys.readouterr().err


# ---- data like users' data ---------------------------------------------------------------

# Rich enough that a dozen small images hold every kind of data.
RICH = SceneOptions(sizes=(64, 128), holes=0.3, splits=0.4, polygons=True, empty=0.2, crowd=0.5)


def _digest(ann_file: str, image_dir: str) -> tuple[str, str]:
    """sha256 of the annotation file and of the decoded pixels of its images."""
    pixels = hashlib.sha256()
    for name in sorted(os.listdir(image_dir)):
        pixels.update(cv2.imread(os.path.join(image_dir, name)).tobytes())
    return hashlib.sha256(Path(ann_file).read_bytes()).hexdigest(), pixels.hexdigest()


def test_default_options_keep_the_demo_val_split(tmp_path: Path) -> None:
    """The first 12 images of the shipped demo model's val split, as written before the
    options existed (the val split does not depend on the number of training images)."""
    paths = write_coco_dataset(str(tmp_path), 0, 12, (160, 160), 0, 3, (0.14, 0.3))
    assert sorted(paths) == ["val_ann_file", "val_image_dir"]  # no empty training split
    assert not (tmp_path / "train").exists()
    assert _digest(paths["val_ann_file"], paths["val_image_dir"]) == (
        "dfcaaea7e5da3321053c07518905860646483a95afcd5f73e6a9e24646b97ccc",
        "19474a4a6c8c6215aa9905d508b7915c1ad0c986a363e920522d0555eb88d02f",
    )


def test_mask_to_polygons_is_exact_and_refuses_holes() -> None:
    two = np.zeros((20, 30), np.uint8)
    two[2:6, 3:9] = 1
    two[10:18, 20:25] = 1
    rings = mask_to_polygons(two)
    assert rings is not None and len(rings) == 2
    decoded = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(rings, 20, 30)))
    np.testing.assert_array_equal(decoded, two)
    xs = sorted(min(ring[0::2]) for ring in rings)
    assert xs == [3.125, 20.125]  # an eighth of a pixel inside the pixels' edges
    ring = two.copy()
    ring[12:16, 22:23] = 0
    assert mask_to_polygons(ring) is None


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_varied_dataset_has_every_kind_of_data(tmp_path: Path) -> None:
    paths = write_coco_dataset(str(tmp_path), 16, 0, seed=2, options=RICH)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(paths["train_ann_file"])
    sizes = {(im["height"], im["width"]) for im in coco.dataset["images"]}
    assert len(sizes) > 8 and all(64 <= s <= 128 for hw in sizes for s in hw)
    assert any(h > w for h, w in sizes) and any(h < w for h, w in sizes)
    annotated = {a["image_id"] for a in coco.dataset["annotations"]}
    assert len(annotated) < 16  # images without annotations
    crowds = [a for a in coco.dataset["annotations"] if a["iscrowd"]]
    assert crowds and all(isinstance(a["segmentation"]["counts"], str) for a in crowds)
    multi = [a for a in coco.dataset["annotations"] if isinstance(a["segmentation"], list)
             and len(a["segmentation"]) > 1]  # fmt: skip
    assert multi
    for ann in multi:  # the union of disjoint, non-empty parts
        info = coco.imgs[ann["image_id"]]
        H, W = info["height"], info["width"]
        parts = mask_utils.decode(mask_utils.frPyObjects(ann["segmentation"], H, W))  # [H, W, P]
        assert (parts.reshape(-1, parts.shape[2]).sum(axis=0) > 0).all()
        assert parts.sum(axis=2).max() == 1
        np.testing.assert_array_equal(coco.annToMask(ann), parts.max(axis=2))
    rle = [a for a in coco.dataset["annotations"] if not a["iscrowd"]
           and isinstance(a["segmentation"], dict)]  # fmt: skip
    assert rle  # the masks with holes
    assert json.loads(Path(paths["train_ann_file"]).read_text())["info"]["options"]["crowd"] == 0.5


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_dataset_reads_the_varied_data_exactly(tmp_path: Path) -> None:
    """Replaying the generator gives what CocoDataset reads: every polygon decodes to
    its rendered mask, crowd regions become the crowd (ignore) targets."""
    paths = write_coco_dataset(str(tmp_path), 10, 0, seed=4, max_objects=4, options=RICH)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = CocoDataset(paths["train_ann_file"], paths["train_image_dir"])
    assert len(ds) == 10 and ds.skipped == {}
    rng = np.random.default_rng([4, 0])
    crowds = 0
    for i in range(10):
        H, W = (int(v) for v in rng.integers(64, 129, 2))
        scene, loaded = make_scene(rng, (H, W), 4, options=RICH), ds[i]
        for key in ("image", "masks", "labels", "boxes", "crowd_masks", "crowd_boxes"):
            np.testing.assert_array_equal(loaded[key], scene[key], err_msg=f"{i} {key}")
        crowds += len(loaded["crowd_masks"])
    assert crowds > 0


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_rings_keep_their_holes(tmp_path: Path) -> None:
    """Every object a ring: a whole circle's RLE mask is background at its centre and
    object on the four rays out of it, in the file and as CocoDataset reads it."""
    rings = SceneOptions(holes=1.0, polygons=True)
    paths = write_coco_dataset(str(tmp_path), 30, 0, (96, 96), seed=1, max_objects=1,
                               radius_range=(0.25, 0.3), options=rings)  # fmt: skip
    ds = CocoDataset(paths["train_ann_file"], paths["train_image_dir"])
    anns = json.loads(Path(paths["train_ann_file"]).read_text())["annotations"]
    checked = 0
    for a in anns:
        x, y, w, h = a["bbox"]
        if min(x, y) <= 0 or max(x + w, y + h) >= 96:
            continue  # cut by the border: the hole may open onto it
        assert isinstance(a["segmentation"], dict)  # a hole needs RLE
        if a["category_id"] != 1:
            continue  # not a circle
        mask = mask_utils.decode({"size": [96, 96], "counts": a["segmentation"]["counts"]})
        loaded = ds[ds.image_ids.index(a["image_id"])]["masks"][0]
        np.testing.assert_array_equal(loaded, mask)
        cx, cy = int(x + w / 2), int(y + h / 2)
        assert mask[cy, cx] == 0
        assert mask[cy, :cx].any() and mask[cy, cx:].any()
        assert mask[:cy, cx].any() and mask[cy:, cx].any()
        checked += 1
    assert checked >= 2


def test_cli_options_and_both_splits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "v"
    argv = ["--out", str(out), "--train", "3", "--val", "2", "--varied", "--crowd", "0",
            "--sizes", "64", "80"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train_ann_file" in printed and "val_ann_file" in printed
    info = json.loads((out / "annotations" / "train.json").read_text())["info"]
    assert info["options"] == {**asdict(VARIED), "crowd": 0.0, "sizes": [64, 80]}
    assert len(list((out / "val").iterdir())) == 2
    for bad, message in (
        (["--holes", "1.5"], "a probability in [0, 1], got 1.5"),
        (["--sizes", "80", "64"], "--sizes takes LOW HIGH with 8 <= LOW <= HIGH"),
        (["--train", "0", "--val", "0"], "nothing to write"),
    ):
        with pytest.raises(SystemExit):
            main(["--out", str(tmp_path / "x"), *bad])
        assert message in capsys.readouterr().err


def test_shape_hole_and_gap() -> None:
    """A ring: one part, the centre and a disc around it empty; a cut: two parts."""
    disc = Shape(_label("circle"), (48.0, 32.0), 20.0, 0.0)
    full = shape_mask(disc, (64, 96))
    ring = shape_mask(replace(disc, hole=0.5), (64, 96))
    inner = shape_mask(replace(disc, radius=9.0), (64, 96))
    assert not ring[inner].any() and (ring | inner).sum() <= full.sum()
    assert cv2.connectedComponents(ring.astype(np.uint8))[0] == 2  # background + one ring
    assert cv2.connectedComponents((~ring).astype(np.uint8))[0] == 3  # outside + the hole
    cut = shape_mask(replace(disc, gap=0.1, angle=math.pi / 2), (64, 96))  # a vertical cut
    count, parts = cv2.connectedComponents(cut.astype(np.uint8))
    assert count == 3 and not cut[:, 47:50].any() and cut[:, 45].any() and cut[:, 51].any()
    halves = np.bincount(parts.ravel())[1:]
    assert abs(int(halves[0]) - int(halves[1])) <= 0.05 * halves.sum()
