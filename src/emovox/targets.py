"""Targets beyond one label: label distributions and valence / arousal / dominance.

Where they live: a corpus loader (or a manifest) puts them in :attr:`Utterance.extra`:

- ``"label_distribution"``: canonical emotion -> probability, the shares of raters' votes
  (IEMOCAP's evaluators, CREMA-D's tabulated votes, MSP's per-rater files, EM2LDL's
  distributions) or a declared spread of a listening test (EmoDB's recognition rates). Always
  checked by :func:`check_distribution`: known emotions, no negative share, sums to 1.
- ``"valence"``, ``"arousal"``, ``"dominance"``: floats on the scale ``"vad_scale"`` declares
  (``[low, high]``, the same for the three; e.g. ``[1.0, 5.0]`` for IEMOCAP's ratings). Checked
  by :func:`check_vad`.

How training reads them: :func:`distribution_matrix` turns utterances into soft targets over a
model's classes (``data.targets = "distribution"``), :func:`vad_matrix` into a ``[N, 3]``
array with NaN where a dimension is missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import CorpusError, EmovoxError
from .labels import canonical

__all__ = [
    "DIMENSIONS", "check_distribution", "check_vad", "distribution_from_votes",
    "distribution_matrix", "has_vad", "parse_scale", "spread_rate", "vad_matrix", "vad_scale",
]

#: The dimensional targets, in the order of a regression head's outputs.
DIMENSIONS: tuple[str, ...] = ("valence", "arousal", "dominance")

#: How far from 1 a distribution's sum may be (rounded shares in published files).
SUM_TOLERANCE = 0.011


def check_distribution(distribution: Mapping[str, Any], where: str) -> dict[str, float]:
    """Validate a label distribution; return it over canonical names (zero shares dropped).

    Args:
        distribution: Emotion name or alias -> share.
        where: ``<file>:<row>`` (or ``<file>: <item>``) for the error message.

    Raises:
        CorpusError: One line naming ``where``: an unknown emotion, a share that is not a finite
            number, a negative share, two names for one emotion, or shares that do not sum to 1
            (within :data:`SUM_TOLERANCE`).
    """
    if not distribution:
        raise CorpusError(f"{where}: empty label distribution")
    out: dict[str, float] = {}
    for name, value in distribution.items():
        try:
            emotion = canonical(str(name))
        except ValueError as exc:
            raise CorpusError(f"{where}: label distribution: {exc}") from None
        try:
            share = float(value)
        except (TypeError, ValueError):
            raise CorpusError(f"{where}: share of '{name}' is '{value}', not a number") from None
        if not math.isfinite(share):
            raise CorpusError(f"{where}: share of '{name}' is not a finite number")
        if share < 0:
            raise CorpusError(f"{where}: share of '{name}' is negative ({share:g})")
        if emotion in out:
            raise CorpusError(f"{where}: '{emotion}' is given twice in the label distribution")
        out[emotion] = share
    total = sum(out.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise CorpusError(f"{where}: the label distribution sums to {total:.4g}, not 1")
    return {name: share / total for name, share in out.items() if share > 0}


def distribution_from_votes(votes: Mapping[str, float], where: str) -> dict[str, float]:
    """Votes (counts or weights per emotion) -> a checked distribution (shares of the total).

    Raises:
        CorpusError: A negative or non-numeric count, an unknown emotion, or no vote at all.
    """
    clean: dict[str, float] = {}
    for name, count in votes.items():
        try:
            value = float(count)
        except (TypeError, ValueError):
            raise CorpusError(f"{where}: vote count of '{name}' is '{count}', not a number") \
                from None
        if not math.isfinite(value) or value < 0:
            raise CorpusError(f"{where}: vote count of '{name}' is {count}, not a count")
        clean[name] = value
    total = sum(clean.values())
    if total <= 0:
        raise CorpusError(f"{where}: no votes")
    return check_distribution({name: n / total for name, n in clean.items()}, where)


def spread_rate(intended: str, rate: float, others: Sequence[str]) -> dict[str, float]:
    """A listening test's recognition rate as a distribution.

    ``rate`` goes to the intended emotion, the rest spread evenly over ``others`` (a declared
    choice: such tests publish only the rate of the intended emotion, not what listeners
    chose instead).

    Args:
        intended: The emotion the speaker was asked to portray.
        rate: Share of listeners who recognised it, in [0, 1].
        others: The other emotions listeners could choose (the test's answer set minus
            ``intended``).
    """
    if not 0.0 <= rate <= 1.0:
        raise EmovoxError(f"recognition rate {rate:g} is outside [0, 1]")
    rest = [o for o in others if o != intended]
    if not rest:
        return {intended: 1.0}
    spread = {name: (1.0 - rate) / len(rest) for name in rest}
    return {intended: rate, **spread} if rate > 0 else spread


_SCALE = re.compile(r"^\s*\[?\s*(-?[0-9.]+)\s*(?:\.\.|,|:|\s-\s|\s+|-)\s*(-?[0-9.]+)\s*\]?\s*$")


def parse_scale(text: str | Sequence[float], where: str = "vad_scale") -> tuple[float, float]:
    """``"1..5"``, ``"1-5"``, ``"[1, 5]"``, ``"-1:1"`` or a pair -> ``(low, high)``.

    Raises:
        CorpusError: Not two numbers, or ``high <= low``.
    """
    if isinstance(text, str):
        match = _SCALE.match(text)
        if not match:
            raise CorpusError(f"{where}: scale '{text}' is not 'low..high' (e.g. 1..5)")
        values = [match.group(1), match.group(2)]
    else:
        values = list(text)
    try:
        low, high = (float(v) for v in values)
    except (TypeError, ValueError):
        raise CorpusError(f"{where}: scale {text!r} is not two numbers") from None
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        raise CorpusError(f"{where}: scale {text!r}: the high end must be above the low end")
    return low, high


def check_vad(values: Mapping[str, float], scale: tuple[float, float], where: str) -> None:
    """Every given dimension lies on the declared scale.

    Raises:
        CorpusError: One line naming ``where``, the dimension, the value and the scale.
    """
    low, high = scale
    for name in DIMENSIONS:
        value = values.get(name)
        if value is None:
            continue
        if not math.isfinite(float(value)) or not low <= float(value) <= high:
            raise CorpusError(f"{where}: {name} {float(value):g} is outside the declared scale "
                              f"{low:g}..{high:g}")


def has_vad(utterance: Any) -> bool:
    """Whether the utterance carries at least one of valence, arousal, dominance."""
    return any(utterance.extra.get(name) is not None for name in DIMENSIONS)


def vad_scale(utterances: Sequence[Any]) -> tuple[float, float] | None:
    """The scale the utterances declare (``extra["vad_scale"]``), or ``None`` if none does.

    Raises:
        EmovoxError: When they declare different scales (mixing corpora rated on other scales
            needs rescaling first, which emovox does not guess).
    """
    scales = {parse_scale(u.extra["vad_scale"], u.id) for u in utterances
              if u.extra.get("vad_scale") is not None}
    if len(scales) > 1:
        raise EmovoxError(f"the recordings declare different valence/arousal/dominance scales "
                          f"({', '.join(f'{lo:g}..{hi:g}' for lo, hi in sorted(scales))}); "
                          f"rescale them to one first")
    if not scales:
        return None
    low, high = next(iter(scales))
    return float(low), float(high)


def vad_matrix(utterances: Sequence[Any]) -> np.ndarray:
    """``[N, 3]`` float32 (valence, arousal, dominance); NaN where a value is missing."""
    out = np.full((len(utterances), len(DIMENSIONS)), np.nan, dtype=np.float32)
    for i, utt in enumerate(utterances):
        for j, name in enumerate(DIMENSIONS):
            value = utt.extra.get(name)
            if value is not None:
                out[i, j] = float(value)
    return out


def distribution_matrix(utterances: Sequence[Any], classes: Sequence[str],
                        soft: bool = True, allow_unlabelled: bool = False) -> np.ndarray:
    """Soft targets ``[N, C]`` (rows sum to 1) over ``classes``.

    An utterance with ``extra["label_distribution"]`` (and ``soft``) gets it, restricted to
    ``classes`` and renormalised (shares of emotions the model does not have are dropped: a
    declared choice; the other one, an extra "other" class, is the user's to make in the
    class list). Otherwise, or when nothing of it falls on ``classes``, its label one-hot.
    With ``allow_unlabelled``, an utterance with neither label nor distribution gets a row of
    zeros (dimensional-only data).

    Raises:
        EmovoxError: An utterance with neither a usable distribution nor a label in
            ``classes``.
    """
    index = {name: k for k, name in enumerate(classes)}
    out = np.zeros((len(utterances), len(classes)), dtype=np.float32)
    for i, utt in enumerate(utterances):
        distribution = utt.extra.get("label_distribution") if soft else None
        if distribution:
            for name, share in distribution.items():
                if name in index:
                    out[i, index[name]] = float(share)
            total = out[i].sum()
            if total > 0:
                out[i] /= total
                continue
        if utt.label in index:
            out[i, index[utt.label]] = 1.0
        elif allow_unlabelled and utt.label is None and not distribution:
            continue  # a row of zeros: no category (dimensional-only), left out of those terms
        else:
            raise EmovoxError(f"{utt.id}: no label among the model's classes "
                              f"({', '.join(classes)}) and no distribution over them")
    return out


def to_sphere(unit: np.ndarray) -> np.ndarray:
    """Centred VAD points -> spherical coordinates.

    ``[N, 3]`` (valence, arousal, dominance in [-1, 1]) -> ``[N, 3]``: radius, azimuth (in
    the valence-arousal plane, from +valence towards +arousal, radians in (-pi, pi]) and
    elevation (towards +dominance, [-pi/2, pi/2]).
    """
    v, a, d = unit[:, 0], unit[:, 1], unit[:, 2]
    radius = np.sqrt(v * v + a * a + d * d)
    azimuth = np.arctan2(a, v)
    elevation = np.arcsin(np.clip(d / np.maximum(radius, 1e-12), -1.0, 1.0))
    return np.stack([radius, azimuth, elevation], axis=1)


def sphere_regions(unit: np.ndarray, radius_edges: Sequence[float] = ()) -> np.ndarray:
    """The EmoSphere region of each centred VAD point, one-hot ``[N, 8 * (len(edges) + 1)]``.

    Regions: the azimuth's quadrant x the elevation's sign (the eight octants of the VAD
    space around its centre: e.g. +valence +arousal +dominance), times the radius band
    (``radius_edges`` cut the intensity; none: octants only). Rows with a missing (NaN)
    dimension are all zero. EmoSphere-SER divides the sphere into regions the same way in
    spirit; the exact partition it uses is not published in a form checked here, so this one
    is a declared choice.
    """
    sphere = to_sphere(np.nan_to_num(unit))
    quadrant = np.floor((sphere[:, 1] % (2 * np.pi)) / (np.pi / 2)).astype(int) % 4
    upper = (sphere[:, 2] >= 0).astype(int)
    band = np.searchsorted(np.asarray(radius_edges, dtype=float), sphere[:, 0], side="right")
    bands = len(radius_edges) + 1
    index = (quadrant * 2 + upper) * bands + band
    out = np.zeros((len(unit), 8 * bands), dtype=np.float32)
    out[np.arange(len(unit)), index] = 1.0
    out[np.isnan(unit).any(axis=1)] = 0.0
    return out
