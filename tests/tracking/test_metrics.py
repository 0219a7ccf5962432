"""Tracking metrics (issue 18, item 2): hand-computed values and agreement with TrackEval."""

from __future__ import annotations

import numpy as np
import pytest
import trackeval

from yolact.tracking.metrics import (
    box_iou,
    clear_mot,
    evaluate_sequence,
    hota,
    identity,
    mask_iou,
    rle_iou,
)

_QUIET = {"PRINT_CONFIG": False}
Frames = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]


def _frames(rows: list[tuple[list[int], list[int], list[list[float]]]]) -> Frames:
    gt = [np.array(g, dtype=np.int64) for g, _, _ in rows]
    tr = [np.array(t, dtype=np.int64) for _, t, _ in rows]
    sim = [np.array(s, dtype=np.float64).reshape(len(g), len(t)) for g, t, s in rows]
    return gt, tr, sim


def _trackeval_data(gt: list[np.ndarray], tr: list[np.ndarray], sim: list[np.ndarray]) -> dict:
    gt_labels = np.unique(np.concatenate(gt))
    tr_labels = np.unique(np.concatenate(tr))
    return {
        "num_timesteps": len(gt),
        "num_gt_ids": len(gt_labels),
        "num_tracker_ids": len(tr_labels),
        "gt_ids": [np.searchsorted(gt_labels, g) for g in gt],
        "tracker_ids": [np.searchsorted(tr_labels, t) for t in tr],
        "similarity_scores": sim,
        "num_gt_dets": int(sum(len(g) for g in gt)),
        "num_tracker_dets": int(sum(len(t) for t in tr)),
    }


def _assert_same_as_trackeval(gt: list, tr: list, sim: list) -> None:
    data = _trackeval_data(gt, tr, sim)
    ref_clear = trackeval.metrics.CLEAR(_QUIET).eval_sequence(data)
    ref_id = trackeval.metrics.Identity(_QUIET).eval_sequence(data)
    ref_hota = trackeval.metrics.HOTA(_QUIET).eval_sequence(data)
    ours = evaluate_sequence(gt, tr, sim)
    assert ours.clear.mota == pytest.approx(ref_clear["MOTA"], abs=1e-6)
    assert ours.clear.motp == pytest.approx(ref_clear["MOTP"], abs=1e-6)
    assert ours.clear.id_switches == ref_clear["IDSW"]
    assert (ours.clear.tp, ours.clear.fp, ours.clear.fn) == (
        ref_clear["CLR_TP"],
        ref_clear["CLR_FP"],
        ref_clear["CLR_FN"],
    )
    assert ours.identity.idf1 == pytest.approx(ref_id["IDF1"], abs=1e-6)
    assert (ours.identity.idtp, ours.identity.idfp, ours.identity.idfn) == (
        ref_id["IDTP"],
        ref_id["IDFP"],
        ref_id["IDFN"],
    )
    assert ours.hota.hota == pytest.approx(float(np.mean(ref_hota["HOTA"])), abs=1e-6)
    assert ours.hota.deta == pytest.approx(float(np.mean(ref_hota["DetA"])), abs=1e-6)
    assert ours.hota.assa == pytest.approx(float(np.mean(ref_hota["AssA"])), abs=1e-6)
    np.testing.assert_allclose(ours.hota.hota_per_alpha, ref_hota["HOTA"], atol=1e-6)


def _perfect() -> Frames:
    return _frames([([1, 2], [7, 9], [[1.0, 0.0], [0.1, 1.0]])] * 4)


def _one_switch() -> Frames:
    # gt 1 is tracked as 7 for two frames, then as 8.
    return _frames(
        [
            ([1, 2], [7, 9], [[0.9, 0.0], [0.0, 0.8]]),
            ([1, 2], [7, 9], [[0.9, 0.0], [0.0, 0.8]]),
            ([1, 2], [8, 9], [[0.9, 0.0], [0.0, 0.8]]),
            ([1, 2], [8, 9], [[0.9, 0.0], [0.0, 0.8]]),
        ]
    )


def _missed() -> Frames:
    # gt 2 is never found: its only overlap is below the threshold.
    return _frames([([1, 2], [7, 9], [[0.9, 0.0], [0.0, 0.3]])] * 3)


def _false_positive() -> Frames:
    # tracker 5 overlaps nothing in frames 1 and 2.
    return _frames(
        [
            ([1], [7], [[0.9]]),
            ([1], [7, 5], [[0.9, 0.0]]),
            ([1], [7, 5], [[0.9, 0.1]]),
        ]
    )


def _random(seed: int) -> Frames:
    """Objects with noisy overlaps, tracker ids that sometimes change, misses and extras."""
    rng = np.random.default_rng(seed)
    n_frames, n_obj = 30, 6
    alive = rng.random((n_frames, n_obj)) < 0.8
    track_of = np.arange(n_obj) + 100
    gt, tr, sim = [], [], []
    for f in range(n_frames):
        if rng.random() < 0.1:
            track_of[rng.integers(n_obj)] = 200 + f  # identity change
        g = np.flatnonzero(alive[f])
        found = g[rng.random(len(g)) < 0.85]
        extra = 500 + rng.choice(20, size=rng.integers(0, 3), replace=False)
        t = np.concatenate([track_of[found], extra])
        if len(g) == 0 or len(t) == 0:
            g, found, t = np.array([0]), np.array([0]), np.array([track_of[0]])
        s = rng.random((len(g), len(t))) * 0.3  # background clutter
        for j, obj in enumerate(found):
            s[np.flatnonzero(g == obj)[0], j] = rng.uniform(0.3, 1.0)
        perm = rng.permutation(len(t))
        gt.append(g)
        tr.append(t[perm])
        sim.append(s[:, perm])
    return gt, tr, sim


def test_perfect_tracking_scores_one() -> None:
    gt, tr, sim = _perfect()
    scores = evaluate_sequence(gt, tr, sim)
    assert scores.clear.mota == 1.0
    assert scores.identity.idf1 == 1.0
    assert scores.clear.id_switches == 0
    assert (scores.hota.hota, scores.hota.deta, scores.hota.assa) == (1.0, 1.0, 1.0)
    # IoU 0.9 is a TP at alpha 0.05..0.90 (18 of 19) and none at 0.95.
    loose = hota(*_frames([([1, 2], [7, 9], [[0.9, 0.0], [0.0, 0.9]])] * 4))
    assert loose.deta == pytest.approx(18 / 19)
    assert loose.assa == pytest.approx(18 / 19)
    _assert_same_as_trackeval(gt, tr, sim)


@pytest.mark.parametrize("case", [_one_switch, _missed, _false_positive])
def test_hand_made_cases_match_trackeval(case) -> None:
    _assert_same_as_trackeval(*case())


def test_single_switch_counts() -> None:
    scores = clear_mot(*_one_switch())
    assert scores.id_switches == 1
    assert scores.mota == pytest.approx(7 / 8)


def test_missed_and_false_positive_counts() -> None:
    missed = clear_mot(*_missed())
    assert (missed.tp, missed.fn, missed.fp) == (3, 3, 3)
    extra = clear_mot(*_false_positive())
    assert (extra.tp, extra.fn, extra.fp) == (3, 0, 2)
    assert extra.mota == pytest.approx(1 / 3)


def test_three_frame_case_by_hand() -> None:
    # gt 1: frames 0-2, tracked as 10, 10, then 11 (one switch).
    # gt 2: frames 0-1, tracked as 13 in frame 0, missed in frame 1.
    # tracker 12 in frame 1 overlaps nothing (a false positive).
    gt, tr, sim = _frames(
        [
            ([1, 2], [10, 13], [[0.8, 0.0], [0.0, 0.7]]),
            ([1, 2], [10, 12], [[0.9, 0.0], [0.0, 0.0]]),
            ([1], [11], [[0.6]]),
        ]
    )
    clear = clear_mot(gt, tr, sim)
    # 5 gt detections; FN 1, FP 1, IDSW 1 -> MOTA = 1 - 3/5.
    assert (clear.tp, clear.fn, clear.fp, clear.id_switches) == (4, 1, 1, 1)
    assert clear.mota == pytest.approx(0.4)
    assert clear.motp == pytest.approx((0.8 + 0.7 + 0.9 + 0.6) / 4)
    ident = identity(gt, tr, sim)
    # Best pairing 1<->10 (2 frames), 2<->13 (1 frame): IDTP 3, IDFN 2, IDFP 2.
    assert (ident.idtp, ident.idfn, ident.idfp) == (3, 2, 2)
    assert ident.idf1 == pytest.approx(0.6)
    _assert_same_as_trackeval(gt, tr, sim)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_random_sequences_match_trackeval(seed: int) -> None:
    _assert_same_as_trackeval(*_random(seed))


@pytest.mark.parametrize(
    "rows",
    [
        [([1], [7], [[0.9]]), ([1], [], []), ([1], [8], [[0.9]]), ([1], [7], [[0.9]])],
        [([1], [7], [[0.9]]), ([], [7], []), ([1], [7], [[0.9]])],
        [([1], [], []), ([1, 2], [], [])],
    ],
    ids=["tracker-gap", "gt-gap", "no-tracker"],
)
def test_empty_frames_match_trackeval(rows: list) -> None:
    _assert_same_as_trackeval(*_frames(rows))


def test_sequence_without_ground_truth_counts_false_positives() -> None:
    # TrackEval returns its initial 0 for MOTA here; the formula gives -FP / max(1, 0).
    scores = evaluate_sequence(*_frames([([], [3], []), ([], [3, 4], [])]))
    assert (scores.clear.fp, scores.clear.mota, scores.identity.idfp) == (3, -3.0, 3)
    assert (scores.hota.hota, scores.hota.deta) == (0.0, 0.0)


def test_ids_need_not_be_contiguous() -> None:
    gt, tr, sim = _one_switch()
    shifted = hota([g * 1000 + 5 for g in gt], [t - 50 for t in tr], sim)
    assert shifted.hota == pytest.approx(hota(gt, tr, sim).hota)


def test_duplicate_id_in_a_frame_is_rejected() -> None:
    with pytest.raises(ValueError, match="frame 0: an id appears twice"):
        clear_mot([np.array([1, 1])], [np.array([2])], [np.zeros((2, 1))])


def test_similarity_of_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"frame 1: similarity is \(1, 2\), expected \(2, 1\)"):
        gt = [np.array([1]), np.array([1, 2])]
        hota(gt, [np.array([3])] * 2, [np.ones((1, 1)), np.ones((1, 2))])


def test_empty_mask_stacks_give_empty_similarity() -> None:
    assert mask_iou(np.zeros((0, 4, 4), bool), np.ones((2, 4, 4), bool)).shape == (0, 2)
    assert box_iou(np.zeros((3, 4)), np.zeros((0, 4))).shape == (3, 0)
    assert rle_iou([], []).shape == (0, 0)


def test_similarity_helpers_agree() -> None:
    masks_gt = np.zeros((2, 8, 8), dtype=bool)
    masks_gt[0, :4, :4] = True
    masks_gt[1, 4:, 4:] = True
    masks_tr = np.zeros((3, 8, 8), dtype=bool)
    masks_tr[0, :4, :2] = True  # half of gt 0
    masks_tr[1, 4:, 4:] = True  # gt 1 exactly
    masks_tr[2, :2, 6:] = True  # nothing
    expected = np.array([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(mask_iou(masks_gt, masks_tr), expected)

    from pycocotools import mask as mask_utils

    def rles(m: np.ndarray) -> list[dict]:
        return [mask_utils.encode(np.asfortranarray(x.astype(np.uint8))) for x in m]

    np.testing.assert_allclose(rle_iou(rles(masks_gt), rles(masks_tr)), expected)
    boxes_gt = np.array([[0, 0, 4, 4], [4, 4, 8, 8]])
    boxes_tr = np.array([[0, 0, 2, 4], [4, 4, 8, 8], [6, 0, 8, 2]])
    np.testing.assert_allclose(box_iou(boxes_gt, boxes_tr), expected)
