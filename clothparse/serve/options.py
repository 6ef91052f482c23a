"""The query options of ``cpt serve``: those of ``POST /v1/parse`` (as ``cpt parse``'s flags)
and those of the overlay views (``GET /v1/results/{id}/overlay.png``).

A request's parse options pick a ``Parser`` that shares the server's engines (``Refiners``):
the models run once per batch for every request, and each photo is refined with its own
fusion and SLIC settings. ``score_thresh``/``body_score_thresh`` filter the detections the
engines kept, so they can raise the server's thresholds (``--score-thresh``,
``--body-score-thresh``), never lower them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query

from clothparse.errors import ConfigError
from clothparse.parse.fusion_params import FusionParams
from clothparse.parse.pipeline import Detected, Parser
from clothparse.parse.superpixels import SlicParams
from clothparse.parse.views import OverlayOptions

#: Most distinct option sets whose ``Parser`` is kept (each is small: it shares the engines).
MAX_REFINERS = 32


@dataclass(frozen=True)
class ParseOptions:
    """One request's ``cpt parse`` options (None: the server's own threshold)."""

    score_thresh: float | None = None
    body_score_thresh: float | None = None
    vote: str = FusionParams.vote
    skin_rule: str = FusionParams.skin_rule
    soft_thresh: float = FusionParams.soft_thresh
    no_superpixel: bool = False
    n_segments: int = SlicParams.n_segments
    compactness: float = SlicParams.compactness
    sigma: float = SlicParams.sigma

    def refine_key(self) -> tuple[Any, ...]:
        """What the refining ``Parser`` depends on (not the thresholds: those filter detections)."""
        return (self.vote, self.skin_rule, self.soft_thresh, self.no_superpixel, self.n_segments, self.compactness,
                self.sigma)


def parse_options(
    score_thresh: Annotated[float | None, Query(ge=0.0, le=1.0, description="Keep clothing detections with score >= this (>= the server's --score-thresh).")] = None,
    body_score_thresh: Annotated[float | None, Query(ge=0.0, le=1.0, description="Keep person detections with score >= this (>= the server's --body-score-thresh).")] = None,
    vote: Annotated[Literal["area", "centroid", "soft"], Query(description="Superpixel vote, as `cpt parse --vote`.")] = FusionParams.vote,
    skin_rule: Annotated[Literal["growth", "all"], Query(description="As `cpt parse --skin-rule`.")] = FusionParams.skin_rule,
    soft_thresh: Annotated[float, Query(gt=0.0, le=1.0, description="--vote soft: the mean mask probability a superpixel needs.")] = FusionParams.soft_thresh,
    no_superpixel: Annotated[bool, Query(description="Pixel level only: pasted masks, no SLIC/fusion.")] = False,
    n_segments: Annotated[int, Query(ge=1, le=100_000, description="SLIC: about this many superpixels.")] = SlicParams.n_segments,
    compactness: Annotated[float, Query(gt=0.0, le=1e6, description="SLIC compactness.")] = SlicParams.compactness,
    sigma: Annotated[float, Query(ge=0.0, le=100.0, description="SLIC Gaussian smoothing sigma.")] = SlicParams.sigma,
) -> ParseOptions:
    """The FastAPI dependency of ``POST /v1/parse``'s query (a bad value: 422)."""
    return ParseOptions(score_thresh, body_score_thresh, vote, skin_rule, soft_thresh, no_superpixel, n_segments,
                        compactness, sigma)


def overlay_options(
    view: Annotated[Literal["parse", "clothing", "body"], Query(description="Superpixel Method (parse), Clothing or Body Segmentation.")] = "parse",
    superpixels: Annotated[bool, Query(description="Draw the SLIC superpixel boundaries (Apply Superpixel).")] = False,
    unpredicted_only: Annotated[bool, Query(description="Parse view: colour only the superpixels growth turned into clothing.")] = False,
    boxes: Annotated[bool, Query(description="Box each clothing region (Display Bounding Box).")] = False,
    detector_boxes: Annotated[bool, Query(description="Draw the detector boxes.")] = False,
) -> tuple[str, bool, bool, bool, bool]:
    """The overlay query, unchecked (``make_overlay_options`` checks it against the server's level)."""
    return view, superpixels, unpredicted_only, boxes, detector_boxes


def make_overlay_options(query: tuple[str, bool, bool, bool, bool], png_level: int) -> OverlayOptions:
    """``OverlayOptions`` of an ``overlay_options`` query; ConfigError (a 422) for unpredicted_only outside parse."""
    view, superpixels, unpredicted_only, boxes, detector_boxes = query
    return OverlayOptions(show_boxes=boxes, show_superpixels=superpixels, unpredicted_only=unpredicted_only,
                          png_level=png_level, view=view, detector_boxes=detector_boxes)


class Refiners:
    """The ``Parser`` of each option set, sharing ``base``'s engines and superpixel backend
    (``post_backend``: the backend the post-model threads use; ``base.superpixels`` if None)."""

    def __init__(self, base: Parser, post_backend: Any | None = None) -> None:
        self.base = base
        self.backend = post_backend if post_backend is not None else base.superpixels
        self._parsers: OrderedDict[tuple[Any, ...], Parser] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, opts: ParseOptions) -> None:
        """ConfigError (a 422) for thresholds below the server's, or without a superpixel backend."""
        floor = float(getattr(self.base.clothing, "score_thresh", 0.0))
        if opts.score_thresh is not None and opts.score_thresh < floor:
            raise ConfigError(f"score_thresh {opts.score_thresh} is below the server's clothing threshold {floor} "
                              "(detections under it are not kept; start cpt serve with a lower --score-thresh)")
        if opts.body_score_thresh is not None and opts.body_score_thresh < self.base.body_score_thresh:
            raise ConfigError(f"body_score_thresh {opts.body_score_thresh} is below the server's body threshold "
                              f"{self.base.body_score_thresh} (start cpt serve with a lower --body-score-thresh)")
        if not opts.no_superpixel and self.backend is None:
            raise ConfigError("this server parses at pixel level (started with --no-superpixel): pass no_superpixel=1")

    def get(self, opts: ParseOptions) -> Parser:
        """The refining ``Parser`` of ``opts`` (made once per option set, the last MAX_REFINERS kept)."""
        key = opts.refine_key()
        with self._lock:
            parser = self._parsers.get(key)
            if parser is not None:
                self._parsers.move_to_end(key)
                return parser
        fusion = FusionParams(vote=opts.vote, skin_rule=opts.skin_rule, soft_thresh=opts.soft_thresh)  # type: ignore[arg-type]
        slic = SlicParams(opts.n_segments, opts.compactness, opts.sigma)
        b = self.base
        parser = Parser(b.clothing, b.body, None if opts.no_superpixel else self.backend, fusion, slic,
                        body_score_thresh=b.body_score_thresh)
        with self._lock:
            self._parsers[key] = parser
            while len(self._parsers) > MAX_REFINERS:
                self._parsers.popitem(last=False)
        return parser


def filter_detected(detected: Detected, opts: ParseOptions) -> Detected:
    """``detected`` with the request's (higher) score thresholds applied."""
    clothing, body = detected.clothing, detected.body
    if opts.score_thresh is not None:
        clothing = clothing.filter_score(opts.score_thresh)
    if opts.body_score_thresh is not None:
        body = body.filter_score(opts.body_score_thresh)
    return Detected(clothing, body, dict(detected.timings))
