"""One tracked object: its state and its constant-velocity motion model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from yolact.tracking.mask_cost import CroppedMask

GALLERY = 8  # colours a track keeps besides its average
_FAR = 1e6  # a gallery slot not filled yet: far from every colour
_NO_REFS = np.full((GALLERY + 1, 3), _FAR)


def xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) as (cx, cy, w, h)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dtype=np.float64)


def cxcywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) as (x1, y1, x2, y2), with width and height kept >= 1 pixel."""
    cx, cy, w, h = (float(v) for v in state)
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


@dataclass(eq=False)
class Track:
    """A tracked object.

    Motion model: constant velocity on (cx, cy, w, h). The velocity is measured per frame
    between consecutive observations (a gap of k frames divides the displacement by k).
    The first measurement is taken as is; later ones are blended exponentially,
    ``v = a * measured + (1 - a) * v`` with ``a = velocity_smoothing``. The predicted
    state ``frames_since_update`` frames after the last observation is
    ``last + v * frames_since_update``.

    Attributes:
        label: class of the object (the one it started with); a detection of another class
            costs ``TrackerOptions.class_cost`` more to associate.
        state: last observed (cx, cy, w, h) in pixels.
        velocity: estimated change of ``state`` per frame.
        mask: last observed mask (cropped to its extent), or None.
        track_id: the public id, -1 while tentative.
        hits: consecutive frames with a match (counting the first).
        frames_since_update: frames since the last match (0 in a frame where it matched).
        has_velocity: whether a velocity has been measured yet.
        colour: mean Lab colour of its high-score detections (exponentially averaged),
            or None when the tracker was given no frames.
        refs: [GALLERY + 1, 3]: ``colour`` and the last :data:`GALLERY` colours taken
            (each as measured, a gallery slot not filled yet far from every colour),
            which a returning detection is compared with; None without a colour.
    """

    label: int
    state: np.ndarray
    mask: CroppedMask | None
    track_id: int = -1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.float64))
    hits: int = 1
    frames_since_update: int = 0
    has_velocity: bool = False
    colour: np.ndarray | None = None
    refs: np.ndarray | None = None
    _taken: int = 0

    def take_colour(self, colour: np.ndarray, weight: float) -> None:
        """Blend a trusted detection's ``colour`` into the track's, ``weight`` for the new,
        and keep it in the gallery."""
        if self.colour is None or self.refs is None:
            self.colour = colour.copy()
            self.refs = np.full((GALLERY + 1, 3), _FAR)
        else:
            self.colour = weight * colour + (1.0 - weight) * self.colour
        self.refs[0] = self.colour
        if GALLERY > 0:
            self.refs[1 + (self._taken % GALLERY)] = colour
        self._taken += 1

    @property
    def confirmed(self) -> bool:
        """Whether the track has a public id."""
        return self.track_id >= 0

    def predicted_state(self) -> np.ndarray:
        """(cx, cy, w, h) expected in the current frame."""
        out: np.ndarray = self.state + self.velocity * self.frames_since_update
        return out

    def predicted_box(self) -> np.ndarray:
        """(x1, y1, x2, y2) expected in the current frame."""
        return cxcywh_to_xyxy(self.predicted_state())

    def update(self, box: np.ndarray, mask: CroppedMask | None, smoothing: float) -> None:
        """Take the detection ``box`` (xyxy) and ``mask`` matched in this frame.

        Call it after :meth:`mark_frame` for this frame.
        """
        new = xyxy_to_cxcywh(box)
        gap = max(self.frames_since_update, 1)
        measured = (new - self.state) / gap
        if self.has_velocity:
            self.velocity = smoothing * measured + (1.0 - smoothing) * self.velocity
        else:
            self.velocity = measured
            self.has_velocity = True
        self.state = new
        self.mask = mask
        self.frames_since_update = 0
        self.hits += 1

    @property
    def colours_taken(self) -> int:
        """How many colours the track has taken."""
        return self._taken

    def mark_frame(self) -> None:
        """Advance one frame: the track is one frame older than its last observation."""
        self.frames_since_update += 1


def colour_distances(tracks: list[Track], colours: np.ndarray) -> np.ndarray:
    """[T, D]: the smallest Lab distance of each of ``colours`` [D, 3] to each track's
    colour or any colour of its gallery (about 1e6 for a track without a colour)."""
    refs = np.stack([t.refs if t.refs is not None else _NO_REFS for t in tracks])
    diff = refs[:, :, None, :] - colours[None, None, :, :]
    out: np.ndarray = np.sqrt((diff * diff).sum(-1)).min(axis=1)
    return out


def pair_distances(tracks: list[Track], colours: np.ndarray) -> np.ndarray:
    """[P]: the distance of ``colours[p]`` to ``tracks[p]`` as :func:`colour_distances`."""
    refs = np.stack([t.refs if t.refs is not None else _NO_REFS for t in tracks])
    diff = refs - colours[:, None, :]
    out: np.ndarray = np.sqrt((diff * diff).sum(-1)).min(axis=1)
    return out
