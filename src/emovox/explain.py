"""Why a recording got its emotion: where the model looked and what was heard there.

And whether what was heard is what the literature expects of that emotion (issue #17). An
:class:`Explanation` of one recording holds

- **where**: saliency curves over the recording's time, one per method, on a common grid
  (``times`` are the centres of its cells, in seconds of the file; higher = more important):

  - ``occlusion`` (any model): each stretch of ``window`` seconds (every ``hop``) is silenced
    and the recording classified again, as :meth:`~emovox.inference.Recognizer.predict_signal`
    does; a cell's value is the mean drop of the explained emotion's probability over the
    stretches that cover it. Silencing is deletion here: the conditioning's frame gate leaves
    silent frames out of what the model pools.
  - ``gradient`` (models with a linear head on pooled frame statistics, as the bundled ones):
    integrated gradients of the explained emotion's logit (minus the mean logit) with respect
    to the encoder frames the head pools, from the training mean frame. For this head the
    logit is linear along that path, so the integral is exact: gradient x input, summed over
    each frame's features and over the frames of each cell.
  - ``attention`` (neural models with frame weights, e.g. FLAM): the weight the pooling gave
    each frame, summed per cell.

  A recording longer than the recognizer's ``whole_seconds`` is classified as the mean of its
  speech windows: occlusion then classifies again only the windows a stretch touches
  (:class:`WindowedScore`, exact for encoders that encode each window alone), and gradient
  and attention add up each speech window's frame values, weighted by how much the window
  moves the mean. So any recording the recognizer takes can be explained; the grid gets
  coarser past :data:`MAX_STRETCHES` cells (a one-hour recording: 30 s cells).
- **what**: acoustic cues (:mod:`emovox.cues`) measured inside the salient regions (the top
  ``top`` share of the grid's cells by the ``primary`` method, joined into spans) and outside
  them;
- **why**: each cue inside as a z-score against the neutral speech of the model's training
  corpora, beside the direction the literature expects for the emotion, and a sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError, EmovoxError

#: Saliency methods, in the order they are reported.
METHODS = ("occlusion", "gradient", "attention")
#: Share of the recording's grid cells taken as the salient regions.
TOP_SHARE = 0.2
#: The salient regions cover at least this many seconds (when the recording has them): the
#: cues need some speech to be measured at all (F0 range and slope, speech rate, jitter).
MIN_SALIENT_SECONDS = 0.8
#: A cue this many standard deviations from neutral speech is mentioned in the sentence.
NOTABLE_Z = 1.0
#: Occlusion silences at most this many stretches: a recording longer than this many hops
#: gets a coarser grid (and stretches at least three cells wide).
MAX_STRETCHES = 120


@dataclass(frozen=True)
class Saliency:
    """One method's importance over time.

    ``values[k]`` is the importance of the grid cell centred on ``times[k]`` (seconds of the
    file); higher = more important.
    """

    method: str
    times: tuple[float, ...]
    values: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"times": [...], "values": [...]}``."""
        return {"times": [round(t, 4) for t in self.times],
                "values": [float(f"{v:.6g}") for v in self.values]}


@dataclass(frozen=True)
class Cue:
    """An acoustic cue inside and outside the salient regions, and what it says."""

    name: str
    unit: str
    inside: float | None
    outside: float | None
    z: float | None
    expected: str | None  # "+", "-", "0" or None (the literature says nothing reliable)

    @property
    def agrees(self) -> bool | None:
        """Whether the inside z-score goes the way the literature expects.

        ``None``: no expectation, no value, or a typical value (|z| < :data:`NOTABLE_Z`).
        """
        if self.z is None or self.expected is None or abs(self.z) < NOTABLE_Z:
            return None
        if self.expected == "0":
            return False
        return (self.z > 0) == (self.expected == "+")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (names kept stable for other tools)."""

        def num(v: float | None) -> float | None:
            return None if v is None else float(f"{v:.5g}")

        return {"name": self.name, "unit": self.unit, "inside": num(self.inside),
                "outside": num(self.outside), "z": None if self.z is None else round(self.z, 3),
                "expected": self.expected, "agrees": self.agrees}


@dataclass(frozen=True)
class Explanation:
    """Why a recording got its emotion (see the module docstring)."""

    path: str | None
    label: str
    probabilities: dict[str, float]
    duration: float
    saliency: dict[str, Saliency]
    primary: str
    regions: tuple[tuple[float, float], ...]
    cues: tuple[Cue, ...] = ()
    register: str | None = None
    sentence: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: Per method, what the faithfulness benchmark measured (None: not measured).
    faithfulness: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (names kept stable for other tools)."""
        return {"path": self.path, "label": self.label,
                "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
                "duration": round(self.duration, 4), "primary": self.primary,
                "saliency": {m: s.to_dict() for m, s in self.saliency.items()},
                "regions": [[round(a, 3), round(b, 3)] for a, b in self.regions],
                "register": self.register,
                "cues": [c.to_dict() for c in self.cues], "sentence": self.sentence,
                "faithfulness": self.faithfulness, "notes": list(self.notes)}


# --- where ------------------------------------------------------------------------------------


def occlusion(score: Callable[[np.ndarray], float], signal: np.ndarray, sample_rate: int,
              window: float, hop: float, base: float | None = None) -> Saliency:
    """Occlusion saliency: the drop of ``score`` when each stretch is silenced.

    Each ``window``-second stretch (every ``hop``) is silenced in turn and ``score`` (the
    explained emotion's probability) measured again; a grid cell of ``hop`` seconds gets the
    mean drop of the stretches covering it. ``base``: ``score(signal)``, when the caller has
    it already.
    """
    base = score(signal) if base is None else base
    return occlude(lambda span: base - score(silence(signal, sample_rate, [span])),
                   len(signal), sample_rate, window, hop)


def occlude(drop: Callable[[tuple[int, int]], float], n: int, sample_rate: int,
            window: float, hop: float) -> Saliency:
    """Occlusion saliency from ``drop(span)``: how much silencing the sample span costs.

    The grid and stretches of :func:`occlusion`, for callers that need not build the
    silenced signal (:class:`WindowedScore`).
    """
    step = max(1, int(round(hop * sample_rate)))
    width = max(step, int(round(window * sample_rate)))
    cells = max(1, math.ceil(n / step))
    total = np.zeros(cells)
    count = np.zeros(cells)
    for first in range(-(width - step), n, step):
        a, b = max(0, first), min(n, first + width)
        if b <= a:
            continue
        d = drop((a, b))
        c0, c1 = a // step, min(cells, -(-b // step))
        total[c0:c1] += d
        count[c0:c1] += 1
    values = total / np.maximum(count, 1)
    times = (np.arange(cells) + 0.5) * step / sample_rate
    return Saliency("occlusion", tuple(times.tolist()), tuple(values.tolist()))


class WindowedScore:
    """The explained emotion's probability for a recording classified in windows.

    A recording longer than the recognizer's ``whole_seconds`` gets the mean of its speech
    windows' probabilities (:mod:`emovox.inference`). Silencing a stretch changes only the
    windows it overlaps, and which windows count as speech (the activity threshold is the
    whole recording's); so :meth:`drop` classifies again only the windows the stretch touches,
    decides speech for every window from the recording's block levels with the stretch's
    blocks measured again, and takes every other window's probability from a cache. For
    frontends that encode each window alone (Whisper, the default) this is exactly what
    :meth:`~emovox.inference.Recognizer.predict_signal` gives for the silenced signal; for
    frontends with local frames (log-mel), whose windows ``predict`` cuts from a chunk's
    features, the touched windows are encoded alone, which differs at the window's edges.
    Cost: about ``(stretch + window) / hop`` window classifications per stretch.

    Args:
        recognizer: The :class:`~emovox.inference.Recognizer`.
        signal: The recording (mono float32 at the recognizer's rate).
        label: The explained emotion.
        known: Window start sample -> the label's probability, where already known (the
            timeline of the prediction that is explained).
    """

    def __init__(self, recognizer: Any, signal: np.ndarray, label: str,
                 known: dict[int, float] | None = None) -> None:
        self.recognizer = recognizer
        self.signal = signal
        self.rate = recognizer.sample_rate
        self.vad = recognizer.vad
        self.block = self.vad.block_samples(self.rate)
        self.levels = self.vad.levels(signal, self.rate)
        n, w, h = len(signal), recognizer.window_samples, recognizer.hop_samples
        count = 1 if n <= w else int(math.ceil((n - w) / h)) + 1
        self.spans = [(k * h, min(k * h + w, n)) for k in range(count)]
        self.target = list(recognizer.labels).index(label)
        self.known = {k: known[a] for k, (a, _) in enumerate(self.spans)
                      if known and a in known}
        self.speech = self._speech(self.levels)
        self.base = self._mean(self.speech, {})

    def _speech(self, levels: np.ndarray) -> list[bool]:
        vad, block = self.vad, self.block
        threshold = vad.threshold(levels)
        return [vad.is_speech(levels[a // block : max(a // block + 1, -(-b // block))],
                              threshold, (b - a) / self.rate) for a, b in self.spans]

    def _probabilities(self, pieces: list[np.ndarray]) -> list[float]:
        if not pieces:
            return []
        rec = self.recognizer
        said = rec.assess(rec.encode(pieces), [None] * len(pieces))
        return [float(p) for p in said.probabilities[:, self.target]]

    def _mean(self, speech: list[bool], fresh: dict[int, float]) -> float:
        voiced = [k for k, s in enumerate(speech) if s]
        if not voiced:
            return 0.0
        missing = [k for k in voiced if k not in fresh and k not in self.known]
        found = self._probabilities([self.signal[slice(*self.spans[k])] for k in missing])
        self.known.update(zip(missing, found, strict=True))
        return float(np.mean([fresh[k] if k in fresh else self.known[k] for k in voiced]))

    def drop(self, span: tuple[int, int]) -> float:
        """How much silencing the sample ``span`` lowers the explained emotion's probability."""
        a, b = span
        touched = [k for k, (wa, wb) in enumerate(self.spans) if wa < b and wb > a]
        if not touched:
            return 0.0
        n, block = len(self.signal), self.block
        lo = min(a, self.spans[touched[0]][0]) // block * block
        hi = min(n, -(-max(b, self.spans[touched[-1]][1]) // block) * block)
        part = silence(self.signal[lo:hi], self.rate, [(a - lo, b - lo)])
        if np.array_equal(part, self.signal[lo:hi]):  # silent already: exactly no change
            return 0.0  # (re-averaging the same windows would leave rounding noise)
        levels = self.levels.copy()
        local = self.vad.levels(part, self.rate)
        levels[lo // block : lo // block + len(local)] = local
        speech = self._speech(levels)
        voiced = [k for k in touched if speech[k]]
        found = self._probabilities(
            [part[self.spans[k][0] - lo : self.spans[k][1] - lo] for k in voiced])
        return self.base - self._mean(speech, dict(zip(voiced, found, strict=True)))


def silence(signal: np.ndarray, sample_rate: int, spans: Sequence[tuple[int, int]]
            ) -> np.ndarray:
    """A copy of ``signal`` with the sample ``spans`` silenced.

    Each span fades out over its first 5 ms and in over its last 5 ms (no click where the
    silence starts and ends); nothing outside the spans changes, so silencing what is silent
    already changes nothing.
    """
    x = np.array(signal, dtype=np.float32, copy=True)
    n = len(x)
    fade = int(0.005 * sample_rate)
    down = np.linspace(1.0, 0.0, fade + 2, dtype=np.float32)[1:-1]  # strictly inside (1, 0)
    for a, b in spans:
        a, b = max(0, int(a)), min(n, int(b))
        if b <= a:
            continue
        k = min(fade, (b - a) // 4)
        x[a:b] = 0.0
        if k and a > 0:
            x[a : a + k] = signal[a : a + k] * down[:k]
        if k and b < n:
            x[b - k : b] = signal[b - k : b] * down[:k][::-1]
    return x


def cell_spans(mask: np.ndarray, hop_samples: int) -> list[tuple[int, int]]:
    """The sample spans of the chosen cells of a grid (adjacent cells joined)."""
    out: list[tuple[int, int]] = []
    for k in np.flatnonzero(mask):
        a, b = int(k) * hop_samples, (int(k) + 1) * hop_samples
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def frame_times(n_frames: int, conditioned_len: int, start: int, sample_rate: int) -> np.ndarray:
    """Centres, in seconds of the input, of frames spread evenly over a conditioned signal.

    The conditioned signal has ``conditioned_len`` samples and began at sample ``start`` of
    the input.
    """
    centres = start + (np.arange(n_frames) + 0.5) * conditioned_len / max(1, n_frames)
    return centres / sample_rate


def to_grid(times: np.ndarray, values: np.ndarray, grid: np.ndarray, hop: float) -> np.ndarray:
    """Sum ``values`` at ``times`` into the cells of width ``hop`` centred on ``grid``."""
    out = np.zeros(len(grid))
    index = np.clip(np.floor(times / hop).astype(int), 0, len(grid) - 1)
    np.add.at(out, index, values)
    return out


def linear_head_attribution(model: Any, feats: np.ndarray, target: int) -> np.ndarray:
    """Integrated gradients, per frame, of a linear head on pooled frame statistics.

    ``feats``: the frames the head pools (``[T, D]`` or ``[L, T, D]``, as trained). The
    explained score is the target's logit minus the mean logit (the softmax ignores a common
    shift). The baseline is the training mean frame (for a model without standardisation,
    the mean of its training recordings' mean frames); along the straight path from it the
    pooled mean moves linearly and the pooled standard deviation scales linearly, so the
    score is linear along the path and integrated gradients equal gradient x input, and the
    attributions add up to the score's change from the baseline (completeness).

    Returns:
        ``[T]``: each frame's share of the score.
    """
    head = model.network
    x, mean, scale = _head_frames(model, feats)
    if x.ndim == 2:
        x, mean, scale = x[None], mean[None], scale[None]
    n_layers, t, d = x.shape
    w = head.coef[target] - head.coef.mean(axis=0)
    w = (w / head.scale).reshape(n_layers, 2, d)  # per layer: [centre, spread] weights
    a = w[:, 0] / scale  # d score / d mean_t(x)
    b = w[:, 1] / scale  # d score / d std_t(x)
    mu = x.mean(axis=1, keepdims=True)
    sigma = x.std(axis=1, keepdims=True)
    grad = (a[:, None, :] + b[:, None, :] * (x - mu) / np.maximum(sigma, 1e-12)) / t
    return (grad * (x - mean[:, None, :])).sum(axis=(0, 2))


#: Steps of the integrated-gradients path for networks (midpoint rule).
IG_STEPS = 32


def network_attribution(model: Any, feats: np.ndarray, target: int,
                        steps: int = IG_STEPS) -> np.ndarray:
    """Integrated gradients, per frame, of a frame-level network (the MLL models).

    ``feats``: the frames the network reads (``[T, D]`` or ``[L, T, D]``, as trained), put
    through the model's standardisation. The explained score is the target's logit minus the
    mean logit; the baseline is the training data's mean frame everywhere (zeros once
    standardised with the training statistics, which a recording explained alone is
    standardised with also when the model can standardise per speaker; for a model without
    standardisation, the recording's own mean frame).
    The path integral uses ``steps`` midpoint samples, so the attributions add up to the
    score's change from the baseline up to that approximation (completeness).

    Returns:
        ``[T]``: each frame's share of the score.

    Raises:
        EmovoxError: For a model that standardises by the recording itself (no fixed
            baseline) or fine-tunes its frontend.
    """
    import torch

    from .layers import pad_frames

    norm = model.normalizer
    if norm.mode == "utterance" or (norm.mode != "none" and "*" not in norm.stats):
        raise EmovoxError(f"not for models that standardise by {norm.mode!r} (the statistics "
                          "depend on the recording itself)")
    if model.finetuned:
        raise EmovoxError("not for models that fine-tune their frontend")
    x = np.asarray(norm.apply(np.asarray(feats, dtype=np.float32)), dtype=np.float32)
    base = np.zeros_like(x) if norm.mode != "none" else \
        np.broadcast_to(x.mean(axis=-2, keepdims=True), x.shape).astype(np.float32)
    network = model.network
    network.eval()
    device = next(iter(network.parameters())).device
    alphas = (np.arange(steps) + 0.5) / steps
    total = torch.zeros(x.shape, dtype=torch.float64)
    delta = torch.from_numpy(x - base)
    with torch.enable_grad():
        for start in range(0, steps, 8):
            chunk = alphas[start:start + 8]
            batch, mask = pad_frames([base + a * (x - base) for a in chunk])
            batch = batch.to(device).requires_grad_(True)
            logits = network(batch, mask.to(device)).logits.float()
            score = logits[:, target] - logits.mean(dim=-1)
            (grad,) = torch.autograd.grad(score.sum(), batch)
            total += grad.detach().cpu().double().sum(dim=0)
    attributions = (total / steps) * delta
    return attributions.sum(dim=tuple(i for i in range(attributions.ndim)
                                      if i != attributions.ndim - 2)).numpy()


def _head_frames(model: Any, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frames a linear head pools, its baseline frame and the frames' scale.

    The frames are ``feats`` with the head's layer picked; the scale is what they are
    standardised by (ones without standardisation).
    """
    norm = model.normalizer
    layer = model.config.classic.layer
    x = np.asarray(feats, dtype=np.float64)
    if x.ndim == 3 and layer != "all":
        x = x[int(layer)]
    if norm.mode == "global":  # frames standardised with the training statistics
        mean, std = norm.stats["*"]
        mean = np.asarray(mean, dtype=np.float64)[..., 0, :]
        scale = np.asarray(std, dtype=np.float64)[..., 0, :]
        if np.ndim(feats) == 3 and layer != "all":
            mean, scale = mean[int(layer)], scale[int(layer)]
    elif norm.mode == "none":  # raw frames: the training recordings' mean frame
        mean = np.asarray(model.network.mean, dtype=np.float64).reshape(-1, 2, x.shape[-1])
        mean = mean[0, 0] if x.ndim == 2 else mean[:, 0]
        scale = np.ones_like(mean)
    else:
        raise EmovoxError(f"not for models that standardise by {norm.mode!r} (the statistics "
                          "depend on the recording itself)")
    return x, mean, scale


def baseline_frames(model: Any, feats: np.ndarray) -> np.ndarray:
    """Frames shaped as ``feats``, every one the baseline of :func:`linear_head_attribution`.

    When the head pools one layer of many, the other layers are zeros (they do not count).
    """
    _, mean, _ = _head_frames(model, feats)
    out = np.empty(np.shape(feats), dtype=np.float64)
    if np.ndim(feats) == 3 and mean.ndim == 1:  # one layer pooled: the others do not matter
        out[:] = 0.0
        out[int(model.config.classic.layer)] = mean[None, :]
    elif np.ndim(feats) == 3:
        out[:] = mean[:, None, :]
    else:
        out[:] = mean[None, :]
    return out


# --- the explanation --------------------------------------------------------------------------


def regions_of(values: np.ndarray, hop: float, top: float,
               least: float = 0.0) -> tuple[tuple[float, float], ...]:
    """The most salient cells joined into ``(start, end)`` spans, in seconds.

    The top ``top`` share of cells, only those above zero when any is; then, when that is
    under ``least`` seconds, the cells with the largest values either way up to that.
    """
    values = np.asarray(values, dtype=np.float64)
    k = max(1, int(round(top * len(values))))
    enough = min(len(values), max(1, int(math.ceil(least / hop - 1e-9))))
    order = np.argsort(-values, kind="stable")[:k]
    order = order[values[order] > 0]  # cells that lowered the score do not count ...
    if not len(order):
        enough = max(enough, k)
    if len(order) < enough:  # ... unless the regions would be too short to measure: then
        # the cells the score is most sensitive to either way (silence, where nothing
        # changes, comes last)
        rest = [int(c) for c in np.argsort(-np.abs(values), kind="stable")
                if int(c) not in set(order.tolist())]
        order = np.concatenate([order, rest[: enough - len(order)]]).astype(int)
    chosen = np.zeros(len(values), dtype=bool)
    chosen[order] = True
    spans: list[tuple[float, float]] = []
    k = 0
    while k < len(chosen):
        if chosen[k]:
            j = k
            while j + 1 < len(chosen) and chosen[j + 1]:
                j += 1
            spans.append((round(k * hop, 6), round((j + 1) * hop, 6)))
            k = j + 1
        else:
            k += 1
    return tuple(spans)


def complement(spans: Sequence[tuple[float, float]], duration: float
               ) -> tuple[tuple[float, float], ...]:
    """The parts of ``[0, duration]`` outside ``spans`` (sorted, disjoint)."""
    out, at = [], 0.0
    for a, b in spans:
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < duration:
        out.append((at, duration))
    return tuple(out)


def measured_faithfulness() -> dict[str, Any]:
    """What ``benchmarks/explain_faithfulness.py`` measured, as the package ships it.

    From ``data/explain_faithfulness.json``: per method and corpus, how much more silencing
    the method's top 20 % lowers the emotion's probability than silencing random 20 %, and the
    methods from most to least faithful; ``{}`` when it is not there.
    """
    import json
    from importlib import resources

    try:
        text = resources.files("emovox").joinpath("data/explain_faithfulness.json").read_text()
    except (FileNotFoundError, OSError):
        return {}
    return dict(json.loads(text))


def explain_signal(recognizer: Any, signal: np.ndarray, *, path: str | None = None,
                   methods: Sequence[str] | None = None, primary: str = "auto",
                   window: float = 0.3, hop: float = 0.1, top: float = TOP_SHARE,
                   cues: bool = True) -> Explanation:
    """Explain one prepared signal (mono float32 at the recognizer's rate).

    Args:
        recognizer: The :class:`~emovox.inference.Recognizer` whose decision is explained.
        signal: The recording, as :func:`emovox.audio.prepare` returns it.
        path: Its name, for the record.
        methods: Saliency methods to run (one the model cannot give is left out with a
            note); ``None``: every method the model and recording allow.
        primary: The method whose top cells are the salient regions; ``"auto"``: the most
            faithful the model gives, as measured (:func:`measured_faithfulness`; occlusion
            when nothing was measured).
        window: Occlusion stretch, seconds.
        hop: Grid cell and occlusion step, seconds.
        top: Share of cells taken as salient.
        cues: Measure the acoustic cues (needs ``emovox[explain]``).
    """
    asked = methods is not None
    methods = tuple(methods) if methods is not None else METHODS
    unknown = [m for m in methods if m not in METHODS]
    if unknown or primary not in (*METHODS, "auto"):
        bad = ", ".join(unknown or [primary])
        raise ConfigError(f"unknown saliency method {bad} (use {', '.join(METHODS)})")
    measured = measured_faithfulness()
    if primary != "auto" and primary not in methods:
        raise ConfigError(f"the primary method {primary!r} is not among the methods run")
    if not (0 < hop <= window):
        raise ConfigError(f"need 0 < hop <= window, got hop {hop:g}, window {window:g}")
    if not 0 < top < 1:
        raise ConfigError(f"the salient share must be in (0, 1), got {top:g}")
    rate = recognizer.sample_rate
    duration = len(signal) / rate
    if duration / hop > MAX_STRETCHES:  # long recordings: a coarser grid, same cost bound
        hop = duration / MAX_STRETCHES
        window = max(window, 3 * hop)
    windowed = len(signal) > recognizer.whole_seconds * rate
    prediction = recognizer.predict_signal(signal, rate, timeline=windowed)
    if not prediction.speech:
        raise EmovoxError("no speech to explain (the recording is silent)")
    label = prediction.label
    target = list(recognizer.labels).index(label)
    long = None
    if windowed:  # classified in windows: silencing a stretch re-classifies the ones it touches
        known = {int(round(seg.start * rate)): float(seg.probabilities[label])
                 for seg in prediction.timeline or () if seg.speech}
        long = WindowedScore(recognizer, signal, label, known)

    def score(x: np.ndarray) -> float:
        try:
            result = recognizer.predict_signal(x, rate, timeline=False)
        except EmovoxError:
            return 0.0
        return float(result.probabilities.get(label, 0.0)) if result.speech else 0.0

    notes: list[str] = []
    saliency: dict[str, Saliency] = {}
    if "occlusion" in methods:
        saliency["occlusion"] = (
            occlude(long.drop, len(signal), rate, window, hop) if long is not None else
            occlusion(score, signal, rate, window, hop, float(prediction.probabilities[label])))
    grid = (np.arange(max(1, math.ceil(len(signal) / max(1, round(hop * rate))))) + 0.5) * hop
    for method in ("gradient", "attention"):
        if method not in methods:
            continue
        try:
            values = _frame_method(recognizer, signal, target, method, grid, hop, long)
        except EmovoxError as exc:
            if asked or method == primary:
                notes.append(f"{method}: {exc}")
            continue
        saliency[method] = Saliency(method, tuple(grid.tolist()), tuple(values.tolist()))
    if primary == "auto":
        order = [m for m in measured.get("order", []) if m in saliency]
        primary = (order or [m for m in METHODS if m in saliency] or ["occlusion"])[0]
    if primary not in saliency:
        raise EmovoxError(f"the primary method {primary!r} cannot explain this model or "
                          f"recording ({'; '.join(notes)})")
    regions = regions_of(np.asarray(saliency[primary].values), hop, top, MIN_SALIENT_SECONDS)
    found: tuple[Cue, ...] = ()
    register = None
    sentence = ""
    if cues:
        found, register = measure_cues(signal, rate, regions, duration, label)
        sentence = describe(label, float(prediction.probabilities[label]), regions, found)
    faithful = {m: measured.get("methods", {}).get(m) for m in saliency}
    return Explanation(path, label, dict(prediction.probabilities), duration, saliency, primary,
                       regions, found, register, sentence, tuple(notes), faithful)


def _frame_method(recognizer: Any, signal: np.ndarray, target: int, method: str,
                  grid: np.ndarray, hop: float, long: WindowedScore | None = None) -> np.ndarray:
    """Gradient or attention values on the grid.

    A recording classified whole gets its frames' values. A long one (``long``: its windows)
    gets each speech window's frame values, placed at the window's time and weighted by how
    much the window moves the overall probability (the mean over the speech windows): for
    gradients ``p (1 - p) / N``, the slope of a window's probability against its explained
    score (a first-order chain rule); for attention ``1 / N``.
    """
    if not getattr(recognizer.frontend, "frame_seconds", 0.0):
        raise EmovoxError("the model's frontend has no frames over time")
    if method == "attention" and recognizer.model.config.method != "neural":
        raise EmovoxError("the model pools without attention weights")
    if long is None:
        times, values = _frame_values(recognizer, signal, target, method)
        return to_grid(times, values, grid, hop)
    out = np.zeros(len(grid))
    voiced = [k for k, s in enumerate(long.speech) if s]
    rate = recognizer.sample_rate
    for k in voiced:
        a, b = long.spans[k]
        times, values = _frame_values(recognizer, signal[a:b], target, method)
        p = long.known.get(k, 0.0)
        weight = (p * (1.0 - p) if method == "gradient" else 1.0) / len(voiced)
        out += weight * to_grid(times + a / rate, values, grid, hop)
    return out


def _frame_values(recognizer: Any, signal: np.ndarray, target: int,
                  method: str) -> tuple[np.ndarray, np.ndarray]:
    """A signal's pooled frames' times (seconds of the signal) and their gradient or attention."""
    from .features import Conditioned

    frontend = recognizer.frontend
    model = recognizer.model
    if isinstance(frontend, Conditioned):
        x, start = frontend.condition_span(signal)
        raw = np.asarray(frontend.inner(x))
        n = raw.shape[-2]
        keep = np.ones(n, dtype=bool)
        if frontend.gate_db is not None:
            from .vad import frame_gate

            keep = frame_gate(x, recognizer.sample_rate, n, frontend.gate_db,
                              band=frontend._band)
    else:
        x, start = signal, 0
        raw = np.asarray(frontend(x))
        keep = np.ones(raw.shape[-2], dtype=bool)
    feats = model.as_trained(raw[..., keep, :])
    times = frame_times(raw.shape[-2], len(x), start, recognizer.sample_rate)[keep]
    if method == "gradient":
        values = (network_attribution(model, feats, target) if model.config.method == "neural"
                  else linear_head_attribution(model, feats, target))
    else:
        out = model.classify([feats], rounded=True)
        weights = out.frame_weights[0] if out.frame_weights else np.zeros(0)
        if len(weights) != len(times):
            raise EmovoxError("the model's pooling gives no weight per frame")
        values = np.asarray(weights, dtype=np.float64)
    return times, values


def measure_cues(signal: np.ndarray, rate: int, regions: Sequence[tuple[float, float]],
                 duration: float, label: str) -> tuple[tuple[Cue, ...], str | None]:
    """The cues inside and outside the regions, and the voice's reference register.

    The inside values are z-scored against the reference register the recording's voice
    belongs to.
    """
    from . import cues as acoustic

    x = acoustic.prepare(signal, rate)  # the level the reference was measured at
    whole, inside, outside = acoustic.measure_each(
        x, rate, [None, list(regions), list(complement(regions, duration))])
    reference = acoustic.load_reference()
    register = acoustic.register_of(whole)
    z = acoustic.z_scores(inside, reference, register)
    out = tuple(Cue(c.name, c.unit, inside.get(c.name), outside.get(c.name), z.get(c.name),
                    acoustic.expected(label, c.name)) for c in acoustic.CUES)
    return out, register


_WORDS = {"f0_mean": "F0", "f0_range": "F0 range", "f0_slope": "F0 slope",
          "intensity_mean": "loudness against the recording's",
          "intensity_range": "loudness range",
          "jitter": "jitter", "shimmer": "shimmer", "hnr": "HNR",
          "spectral_slope": "spectral slope", "alpha_ratio": "alpha ratio",
          "hammarberg": "Hammarberg index", "speech_rate": "speech rate",
          "pause_ratio": "pauses"}


def describe(label: str, probability: float, regions: Sequence[tuple[float, float]],
             cues: Sequence[Cue], most: int = 3) -> str:
    """A sentence a person can read.

    It names the salient time, the cues furthest from neutral speech there, and whether they
    go the way the literature expects for the emotion.
    """
    seconds = sum(b - a for a, b in regions)
    # the cues the literature has a direction for come first: they are the "why"; one other
    # cue far from neutral speech may follow
    ranked = sorted((c for c in cues if c.z is not None and abs(c.z) >= NOTABLE_Z),
                    key=lambda c: (c.expected not in ("+", "-"), -abs(c.z or 0.0)))
    notable = [c for c in ranked if c.expected in ("+", "-")][:most]
    notable += [c for c in ranked if c.expected not in ("+", "-")
                and abs(c.z or 0.0) >= 2 * NOTABLE_Z][: max(1, most - len(notable))]
    head = f"{label} ({probability:.2f}): the salient {seconds:.1f} s"
    if not notable:
        typical = [c for c in cues if c.z is not None]
        return (head + (" sound like neutral speech on every cue measured" if typical
                        else ": no cue could be measured there") + ".")
    parts = [f"{_WORDS.get(c.name, c.name)} {c.z:+.1f} SD" for c in notable]
    text = head + " have " + _join(parts) + " against neutral speech"
    agree = [c for c in notable if c.agrees]
    disagree = [c for c in notable if c.agrees is False]
    if agree and not disagree:
        text += f", as expected for {label}"
    elif agree:
        text += (f"; {_join([_WORDS.get(c.name, c.name) for c in agree])} as expected for "
                 f"{label}, {_join([_WORDS.get(c.name, c.name) for c in disagree])} not")
    elif disagree:
        text += f", not what is expected for {label}"
    typical = [c for c in cues if c.expected in ("+", "-") and c.z is not None
               and abs(c.z) < NOTABLE_Z and c not in notable]
    if typical:
        text += f"; {_join([_WORDS.get(c.name, c.name) for c in typical[:2]])} typical"
    return text + "."


def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
