"""A ByteTrack-style multi-object tracker for the detections of one source.

Each frame goes through these steps:

1. High-score detections (score >= ``high_thresh``) are matched to every confirmed track,
   active or lost, by cost = 1 - IoU with the track's motion-predicted box (or its last
   mask shifted by the predicted motion), solved as an assignment problem.
2. Low-score detections (``low_thresh`` <= score < ``high_thresh``) are matched to the
   confirmed tracks left over from step 1 (with ``low_recovers_lost``; else only to the
   active ones, matched in the previous frame). They keep a track alive through a dip in
   confidence (occlusion, blur) but never start one.
3. Detections left over that overlap a detection tracked in this frame by more than
   ``duplicate_iou`` are set aside (a second detection of one object). Given the frame
   (``image``) and ``reid``, confirmed tracks still unmatched are offered the other
   detections left over (high and low score) by colour and distance
   (:mod:`yolact.tracking.reid`): an object back from an occlusion away from its
   predicted box keeps its id. Stages 1 and 2 then also leave out pairs whose colours
   differ by more than ``colour_gate``.
4. High-score detections left over are matched to tentative tracks (born in an earlier
   frame, not yet confirmed); a tentative track that misses a frame is dropped.
5. High-score detections still left over, scoring >= ``new_track_thresh``, start tracks.
6. Confirmed tracks unmatched for more than ``buffer_frames`` frames are removed.

A detection of another class than a track's costs ``class_cost`` more to associate
(classes kept apart with ``class_cost`` >= 1). Ids come from a counter that only grows,
so an id is never given to a second object.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from yolact.tracking.appearance import FrameColours
from yolact.tracking.mask_cost import CroppedMask, crop_masks, cropped_iou
from yolact.tracking.matching import assign, box_iou_np
from yolact.tracking.options import TrackerOptions
from yolact.tracking.reid import REID_MAX_COST, reid_cost
from yolact.tracking.track import GALLERY, Track, pair_distances, xyxy_to_cxcywh

_ArrayLike = torch.Tensor | np.ndarray
_COLOUR_WEIGHT = 0.3  # weight of a new trusted detection in a track's colour
_SURE_COST = 0.3  # a sole candidate this close (IoU >= 0.5) is not colour-checked
_COLOUR_EVERY = 4  # a matched track's colour is refreshed every this many hits,
_COLOUR_EVERY_FULL = 16  # and this many once its gallery is full


def _refresh_period(track: Track) -> int:
    """Hits between two colours a track takes: sparser once its gallery is full."""
    return _COLOUR_EVERY if track.colours_taken < GALLERY else _COLOUR_EVERY_FULL


def _to_numpy(x: _ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return np.asarray(x.detach().cpu().numpy())
    return np.asarray(x)


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [M, 4] with every box of ``b`` [N, 4] (xyxy), in numpy
    (the few boxes left over a frame: cheaper than a torch call)."""
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0.0, None) * np.clip(h, 0.0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: np.ndarray = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return out


class Tracker:
    """Gives the detections of consecutive frames of one source persistent track ids.

    Use one tracker per source, and call :meth:`update` once per processed frame, in order
    (also for frames without detections, so that lost tracks age).
    """

    def __init__(self, options: TrackerOptions | None = None) -> None:
        """Create a tracker with no tracks.

        Args:
            options: thresholds and buffer; the defaults of :class:`TrackerOptions` if None.
        """
        self.options = options if options is not None else TrackerOptions()
        self.tracks: list[Track] = []
        self.frame_count = 0
        self._next_id = 0
        self._mask_shape: tuple[int, ...] = ()

    def update(
        self,
        boxes: _ArrayLike,
        scores: _ArrayLike,
        labels: _ArrayLike,
        masks: _ArrayLike | None = None,
        image_size: tuple[int, int] | None = None,
        image: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Associate the detections of the next frame with the tracks.

        Args:
            boxes: [N, 4] (x1, y1, x2, y2) in pixels.
            scores: [N] detection scores.
            labels: [N] class indices.
            masks: [N, h, w] bool or float (> 0.5 is inside) at any resolution that stays
                fixed during the run; needed when ``options.iou == "mask"``.
            image_size: (H, W) of the frame in pixels, to scale box motion to mask cells;
                when None the masks are taken to be at pixel resolution.
            image: the frame, [H, W, 3] uint8 BGR, for the colour cue of ``options.reid``
                (sampled to the masks' grid with ``iou="mask"``); None: no colour cue.

        Returns:
            [N] int64 track ids on the CPU, -1 for detections not (yet) tracked: scores
            below ``low_thresh``, unmatched low-score detections and tentative tracks.

        Raises:
            ValueError: when the shapes disagree or mask IoU is asked for without masks.
        """
        opts = self.options
        box_np = _to_numpy(boxes).astype(np.float64).reshape(-1, 4)
        score_np = _to_numpy(scores).astype(np.float64).reshape(-1)
        label_np = _to_numpy(labels).astype(np.int64).reshape(-1)
        n = len(box_np)
        if len(score_np) != n or len(label_np) != n:
            raise ValueError(
                f"tracker got {n} boxes, {len(score_np)} scores and {len(label_np)} labels"
            )
        mask_np: np.ndarray | None = None
        if masks is not None:
            m = _to_numpy(masks)
            mask_np = m if m.dtype == np.bool_ else m > 0.5
            if mask_np.ndim != 3 or len(mask_np) != n:
                raise ValueError(f"tracker masks must be [{n}, h, w], got {list(m.shape)}")
        if opts.iou == "mask" and mask_np is None:
            raise ValueError("tracker iou='mask' needs the detections' masks")
        scale = self._mask_scale(mask_np, image_size)
        sy, sx = scale
        cropped: list[CroppedMask | None] = []
        if opts.iou == "mask" and mask_np is not None:
            windows = None  # without the frame size, each mask's own extent
            if image_size is not None:  # a mask lies in its box, widened by a cell
                windows = box_np * np.array([sx, sy, sx, sy]) + np.array([-1.0, -1.0, 1.0, 1.0])
            cropped = crop_masks(mask_np, windows)
            if mask_np.shape[1:] != self._mask_shape:  # masks of another size: forget
                for t in self.tracks:
                    t.mask = None
                self._mask_shape = mask_np.shape[1:]

        colours: FrameColours | None = None
        if opts.reid and image is not None and n:
            if opts.iou == "mask" and mask_np is not None:
                grid = (int(mask_np.shape[1]), int(mask_np.shape[2]))
                colours = FrameColours(image, box_np, cropped, grid)
            else:
                colours = FrameColours(image, box_np, None, None)

        def kept(d: int) -> CroppedMask | None:
            """Detection ``d``'s cropped mask, copied for a track to keep."""
            m = cropped[d] if cropped else None
            return None if m is None else CroppedMask(m.y, m.x, m.crop.copy(), m.area)

        self.frame_count += 1
        for t in self.tracks:
            t.mark_frame()
        ids = np.full(n, -1, dtype=np.int64)

        high = np.flatnonzero(score_np >= opts.high_thresh)
        low = np.flatnonzero((score_np >= opts.low_thresh) & (score_np < opts.high_thresh))
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]

        refresh: list[tuple[Track, int]] = []  # tracks to take their detection's colour

        def match(
            pool: list[Track],
            dets: np.ndarray,
            max_cost: float,
            by_colour: bool = False,
            gate: float = math.inf,
        ) -> tuple[list[Track], np.ndarray]:
            """Match ``pool`` with ``dets``; return the tracks and detections left over."""
            if by_colour:
                assert colours is not None
                frame_colours = colours
                cost = reid_cost(
                    pool, box_np[dets], label_np[dets], lambda k: frame_colours.get(dets[k]), opts
                )
            else:
                cost = self._cost(pool, dets, box_np, label_np, cropped, scale)
                if colours is not None and gate < math.inf and cost.size:
                    self._gate(cost, max_cost, pool, dets, colours, gate)
            used_tracks: set[int] = set()
            used_dets: set[int] = set()
            for r, c in assign(cost, max_cost):
                track, d = pool[r], int(dets[c])
                track.update(box_np[d], kept(d), opts.velocity_smoothing)
                if score_np[d] >= opts.high_thresh and (
                    track.colour is None or track.hits % _refresh_period(track) == 0
                ):
                    refresh.append((track, d))
                if not track.confirmed and track.hits >= opts.min_hits:
                    track.track_id = self._new_id()
                ids[d] = track.track_id
                used_tracks.add(r)
                used_dets.add(d)
            dets_left = np.array([d for d in dets if int(d) not in used_dets], np.int64)
            return [t for i, t in enumerate(pool) if i not in used_tracks], dets_left

        unmatched, high_left = match(confirmed, high, opts.match_thresh, gate=opts.colour_gate)
        # Active = matched in the previous frame (one frame old now).
        if not opts.low_recovers_lost:
            unmatched = [t for t in unmatched if t.frames_since_update == 1]
        _, low_left = match(unmatched, low, opts.low_match_thresh, gate=opts.colour_gate)
        dedup = opts.duplicate_threshold < 1.0
        if dedup:
            high_left = self._not_duplicates(high_left, ids, box_np, cropped)
        lost = []
        if colours is not None:
            lost = [t for t in confirmed if t.frames_since_update > 0 and t.colour is not None]
        if lost:
            if dedup:
                low_left = self._not_duplicates(low_left, ids, box_np, cropped)
            offered = np.concatenate([high_left, low_left])
            _, left = match(lost, offered, REID_MAX_COST, by_colour=True)
            if len(left) < len(offered):
                kept_high = set(left.tolist())
                high_left = np.array([d for d in high_left if d in kept_high], np.int64)
                if dedup:  # nor a second detection of a re-identified object
                    high_left = self._not_duplicates(high_left, ids, box_np, cropped)
        dropped, high_left = match(tentative, high_left, opts.match_thresh)
        for t in dropped:
            self.tracks.remove(t)

        first_frame = self.frame_count == 1
        for d in high_left:
            d = int(d)
            if score_np[d] < opts.new_track_thresh:
                continue
            track = Track(
                label=int(label_np[d]),
                state=xyxy_to_cxcywh(box_np[d]),
                mask=kept(d),
            )
            if colours is not None:
                track.take_colour(colours.get([d])[0], 1.0)
            if first_frame or opts.min_hits <= 1:
                track.track_id = self._new_id()
                ids[d] = track.track_id
            self.tracks.append(track)

        if colours is not None and refresh:  # one read for all stages' matches
            values = colours.get([d for _, d in refresh])
            for (track, _), value in zip(refresh, values):
                track.take_colour(value, _COLOUR_WEIGHT)
        self.tracks = [t for t in self.tracks if t.frames_since_update <= opts.buffer_frames]
        return torch.from_numpy(ids)

    @staticmethod
    def _gate(
        cost: np.ndarray,
        max_cost: float,
        pool: list[Track],
        dets: np.ndarray,
        colours: FrameColours,
        gate: float,
    ) -> None:
        """Rule out (in place) the pairs of ``cost`` whose colours differ by more than
        ``gate``. Only pairs in doubt are looked at: a track (not lost) and a detection
        that are each other's only close candidate (cost <= ``_SURE_COST``) are taken as
        they are, and the other pairs of their row and column are left alone, so a
        frame of objects that each overlap their track well reads no colours."""
        sure = cost <= _SURE_COST  # _SURE_COST < every max_cost: sure pairs are feasible
        best = sure.argmax(1)
        # sole sure candidates both ways (a row without one has best 0 and sums to 0)
        unique = (sure.sum(1) == 1) & (sure.sum(0)[best] == 1)
        doubt = np.flatnonzero(~unique)
        if len(unique) > len(doubt):  # lost tracks are checked even with a sure pair
            lost = [i for i in np.flatnonzero(unique).tolist() if pool[i].frames_since_update > 1]
            if lost:
                unique[lost] = False
                doubt = np.flatnonzero(~unique)
        # only the rows in doubt of tracks with a colour are checked
        coloured = [i for i in doubt.tolist() if pool[i].refs is not None]
        if not coloured:
            return
        open_rows = np.zeros(len(pool), bool)
        open_rows[coloured] = True
        open_cols = np.ones(cost.shape[1], bool)
        open_cols[best[unique]] = False
        check = (cost <= max_cost) & open_rows[:, None] & open_cols[None, :]
        rows, cols = np.nonzero(check)
        if len(rows):
            dist = pair_distances([pool[r] for r in rows], colours.get(dets[cols]))
            far = dist > gate
            cost[rows[far], cols[far]] = np.inf

    def _not_duplicates(
        self,
        dets: np.ndarray,
        ids: np.ndarray,
        boxes: np.ndarray,
        cropped: list[CroppedMask | None],
    ) -> np.ndarray:
        """``dets`` less those overlapping a detection tracked in this frame.

        The overlap is box IoU, or mask IoU with ``iou="mask"``; more than
        ``duplicate_iou`` (:attr:`TrackerOptions.duplicate_threshold`) makes a detection a
        second one of a tracked object.
        """
        tracked = np.flatnonzero(ids >= 0)
        if not len(dets) or not len(tracked):
            return dets
        if self.options.iou == "mask" and cropped:
            iou = cropped_iou([cropped[int(d)] for d in dets], [cropped[int(d)] for d in tracked])
        else:
            iou = _box_iou(boxes[dets], boxes[tracked])
        keep = iou.max(axis=1) <= self.options.duplicate_threshold
        out: np.ndarray = dets[keep]
        return out

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    @staticmethod
    def _mask_scale(
        masks: np.ndarray | None, image_size: tuple[int, int] | None
    ) -> tuple[float, float]:
        if masks is None or image_size is None:
            return 1.0, 1.0
        H, W = image_size
        return masks.shape[1] / max(H, 1), masks.shape[2] / max(W, 1)

    def _cost(
        self,
        pool: list[Track],
        dets: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        cropped: list[CroppedMask | None],
        scale: tuple[float, float],
    ) -> np.ndarray:
        """Cost 1 - IoU of every track in ``pool`` with every detection in ``dets``.

        Pairs whose labels differ cost ``class_cost`` more; with ``class_cost`` >= 1
        (or more than every threshold) they never match and are not computed.
        """
        if not pool or len(dets) == 0:
            return np.zeros((len(pool), len(dets)), dtype=np.float64)
        same = np.array([t.label for t in pool])[:, None] == labels[dets][None, :]
        class_cost = self.options.class_cost
        apart = class_cost >= 1.0
        if self.options.iou == "mask" and cropped:
            shape = (int(self._mask_shape[0]), int(self._mask_shape[1]))
            predicted = [self._predicted_mask(t, shape, scale) for t in pool]
            pairs = same if apart else None
            iou = cropped_iou(predicted, [cropped[int(d)] for d in dets], pairs)
        else:
            predicted_boxes = np.stack([t.predicted_box() for t in pool])
            iou = box_iou_np(predicted_boxes, boxes[dets])
        if apart:
            out: np.ndarray = np.where(same, 1.0 - iou, 2.0)
        else:
            out = np.where(same, 1.0 - iou, 1.0 - iou + class_cost)
        return out

    @staticmethod
    def _predicted_mask(
        track: Track, shape: tuple[int, int], scale: tuple[float, float]
    ) -> CroppedMask | None:
        """The track's last mask moved by its predicted motion (None: no mask)."""
        if track.mask is None:
            return None
        shift = track.predicted_state() - track.state
        dy = int(round(float(shift[1]) * scale[0]))
        dx = int(round(float(shift[0]) * scale[1]))
        return track.mask.shifted(dy, dx, shape)
