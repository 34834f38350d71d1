"""Statistics of the acoustic cues of neutral speech: the reference of `emovox explain`'s z-scores.

``emovox explain`` z-scores the cues it measures inside a recording's salient regions (the top
fifth of a 0.1 s grid, at least 0.8 s, often several disjoint pieces), so the reference
describes regions of that kind too: range cues, the F0 slope, the speech rate and jitter or
shimmer over few periods behave differently in short pieces than over whole recordings, and
statistics of whole recordings made ordinary salient regions look several SD away.

For every neutral recording of the default model's training corpora, RAVDESS (label 01
"neutral"; "calm", 02, is left out: the corpus portrays it as an emotion of its own, and the
default model does not know it) and EmoDB (N), read from disk at 16 kHz, the script

1. ``cues.prepare``s it (active speech level -26 dBFS, as the recognizer's conditioning; no
   trimming), so the intensity cues are relative to the recording's own speech level;
2. draws ``DRAWS`` random "salient regions" with explain's own functions and defaults: its
   occlusion (0.3 s stretches every 0.1 s, a cell's value the mean drop of the stretches over
   it) with a random score, where silencing a stretch that touches the recording's speech
   extent (as the conditioning trims it, ``vad.trim_span``) drops the score by a uniform
   random amount and silencing leading or trailing silence drops nothing (as with the real
   model); then ``explain.regions_of`` with ``TOP_SHARE`` and ``MIN_SALIENT_SECONDS``: a fifth
   of the grid's cells, at least 0.8 s, adjacent cells joined into spans. The occlusion's
   averaging makes the random regions come in a few runs (3 pieces in the median) as the real
   ones do, not as scattered single cells;
3. measures the cues inside each draw (``cues.measure_each``).

Writes per voice register (``low``/``high``: the recording's own mean F0, over the whole
prepared recording, below/above ``cues.REGISTER_BOUNDARY_HZ``) and for ``all`` each cue's mean,
standard deviation (ddof 1) and count of values (regions) to
``src/emovox/pretrained/cue_reference.json``, with a ``regions`` record of the procedure. A
z-score then says how unusual a recording's salient regions are against random regions of the
same size in neutral speech. How well the register split matches the speakers' sex (from the
corpora's metadata) is recorded beside it, with the boundary that would match it best, and each
corpus's mean intensity before and after ``prepare`` (before: it follows the recording gain). A
cue that hardly varies over these regions gets no standard deviation, so no z-scores.
Statistics only: no per-file values.

Usage: ``python benchmarks/cue_reference.py [--data DIR] [--out FILE]``
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox import audio, cues  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.explain import (  # noqa: E402
    MAX_STRETCHES,
    MIN_SALIENT_SECONDS,
    TOP_SHARE,
    explain_signal,
    occlusion,
    regions_of,
)
from emovox.files import provenance, write_text  # noqa: E402
from emovox.vad import active_level, trim_span  # noqa: E402

CORPORA = ("ravdess", "emodb")
SAMPLE_RATE = 16000
#: explain's grid step and occlusion stretch (seconds): ``explain_signal``'s defaults.
_DEFAULTS = inspect.signature(explain_signal).parameters
GRID_SECONDS = float(_DEFAULTS["hop"].default)
WINDOW_SECONDS = float(_DEFAULTS["window"].default)
#: Random regions drawn per recording, and the seed of the draws.
DRAWS = 8
SEED = 0


#: A cue whose value differs from its median in fewer than this share of the regions gets no
#: standard deviation (so no z-scores): a few outliers would set its scale.
MIN_VARYING = 0.1


def random_regions(signal: np.ndarray, sample_rate: int, rng: np.random.Generator,
                   extent: tuple[int, int] | None = None) -> tuple[tuple[float, float], ...]:
    """Random "salient regions" of ``signal``, drawn the way ``emovox explain`` picks them.

    explain's own occlusion (``explain.occlusion``, its default window, grid step and the
    coarser grid past ``MAX_STRETCHES``) with a random score: silencing a stretch that touches
    ``extent`` (samples; ``None``: the whole signal) drops it by a uniform (0, 1] amount,
    silencing one outside it by nothing; then explain's rule (``explain.regions_of``,
    ``TOP_SHARE``, ``MIN_SALIENT_SECONDS``). Returns ``(start, end)`` spans in seconds.
    """
    hop, window = GRID_SECONDS, WINDOW_SECONDS
    duration = len(signal) / sample_rate
    if duration / hop > MAX_STRETCHES:  # as explain_signal does
        hop = duration / MAX_STRETCHES
        window = max(window, 3 * hop)
    first, last = extent if extent is not None else (0, len(signal))
    speech = np.array(signal[first:last], copy=True)

    def score(x: np.ndarray) -> float:
        if x is signal:  # occlusion's base score
            return 0.0
        return -float(1.0 - rng.random()) if np.any(x[first:last] != speech) else 0.0

    saliency = occlusion(score, signal, sample_rate, window, hop)
    return regions_of(np.asarray(saliency.values), hop, TOP_SHARE, MIN_SALIENT_SECONDS)


def draw_regions(signal: np.ndarray, sample_rate: int, rng: np.random.Generator,
                 draws: int = DRAWS) -> list[tuple[tuple[float, float], ...]]:
    """``draws`` sets of random regions within the signal's speech extent (``trim_span``)."""
    extent = trim_span(signal, sample_rate)
    return [random_regions(signal, sample_rate, rng, extent) for _ in range(draws)]


def statistics(rows: Sequence[dict[str, float | None]]
               ) -> dict[str, dict[str, float | int | None]]:
    """Mean, standard deviation (ddof 1) and count of each cue over regions."""
    out: dict[str, dict[str, float | int | None]] = {}
    for cue in cues.CUES:
        values = np.array([r[cue.name] for r in rows if r[cue.name] is not None], dtype=float)
        varying = values.size > 1 and np.mean(values != np.median(values)) >= MIN_VARYING
        out[cue.name] = {
            "mean": round(float(values.mean()), 4) if values.size else None,
            "std": round(float(values.std(ddof=1)), 4) if varying else None,
            "n": int(values.size),
        }
    return out


def hz(semitones: float) -> float:
    return 100.0 * 2.0 ** (semitones / 12.0)


def best_boundary(f0_hz: np.ndarray, female: np.ndarray) -> dict[str, float]:
    """The boundaries (1 Hz grid) that agree best with the speakers' sex, and that agreement."""
    grid = np.arange(100.0, 260.0, 1.0)
    agreement = np.array([np.mean((f0_hz >= b) == female) for b in grid])
    best = grid[agreement == agreement.max()]
    return {"from_hz": float(best.min()), "to_hz": float(best.max()),
            "agreement": round(float(agreement.max()), 4)}


def main() -> None:
    """Measure, summarise, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path,
                        default=REPO / "src" / "emovox" / "pretrained" / "cue_reference.json")
    args = parser.parse_args()
    record = provenance()
    utts = [u for name in CORPORA for u in load_corpus(name, args.data / name)
            if u.label == "neutral"]
    rng = np.random.default_rng(SEED)
    wholes, raw_levels, registers, sexes, corpora = [], [], [], [], []
    regions: list[tuple[str, dict[str, float | None]]] = []  # (register, values) per region
    seconds, pieces = [], []
    for u in utts:
        signal = audio.load(u.path, SAMPLE_RATE, start=u.start, duration=u.duration)
        x = cues.prepare(signal, SAMPLE_RATE)
        draws = draw_regions(x, SAMPLE_RATE, rng)
        whole, *inside = cues.measure_each(x, SAMPLE_RATE, [None, *draws])
        gain = active_level(x, SAMPLE_RATE) - active_level(signal, SAMPLE_RATE)  # dB
        level = whole["intensity_mean"]
        raw_levels.append(None if level is None else level - gain)  # intensity is linear
        register = cues.register_of(whole)
        wholes.append(whole)
        registers.append(register)
        sexes.append(u.gender)
        corpora.append(u.corpus)
        regions += [(register, values) for values in inside]
        seconds += [sum(b - a for a, b in spans) for spans in draws]
        pieces += [len(spans) for spans in draws]
    measured = [i for i, r in enumerate(wholes) if r["f0_mean"] is not None]
    f0 = np.array([hz(wholes[i]["f0_mean"] or 0.0) for i in measured])
    female = np.array([sexes[i] == "female" for i in measured])

    def corpus_mean(levels: Sequence[float | None], name: str) -> float:
        return round(float(np.mean([v for v, c in zip(levels, corpora, strict=True)
                                    if c == name and v is not None])), 1)

    doc = {
        "description": "cue statistics of random regions (of the size emovox explain takes) "
                       "of neutral speech, level-normalised by cues.prepare, per voice register",
        "units": {c.name: c.unit for c in cues.CUES},
        "corpora": {
            name: {"labels": ["neutral"], "recordings": corpora.count(name)}
            for name in CORPORA
        },
        "excluded": "RAVDESS calm (02): portrayed as an emotion of its own; not a class of "
                    "the default model",
        "level": {"function": "emovox.cues.prepare", "active_level_dbfs": cues.LEVEL_DBFS,
                  "trimmed": False},
        "regions": {
            "rule": "per draw, emovox.explain.occlusion with a random score (silencing a "
                    "stretch that touches the recording's speech extent, emovox.vad.trim_span, "
                    "drops it by uniform (0, 1], any other by 0), then emovox.explain."
                    "regions_of: the top share of the grid's cells, at least min_seconds, "
                    "adjacent cells joined; cues measured inside (emovox.cues.measure)",
            "share": TOP_SHARE,
            "min_seconds": MIN_SALIENT_SECONDS,
            "grid_seconds": GRID_SECONDS,
            "window_seconds": WINDOW_SECONDS,
            "max_cells": MAX_STRETCHES,
            "draws": DRAWS,
            "seed": SEED,
            "seconds_percentiles_5_50_95": [round(float(v), 2)
                                            for v in np.percentile(seconds, [5, 50, 95])],
            "pieces_percentiles_5_50_95": [int(v) for v in np.percentile(pieces, [5, 50, 95])],
        },
        "no_std": f"a cue whose value differs from its median in fewer than "
                  f"{MIN_VARYING:.0%} of the regions has std null: no z-scores for it",
        "intensity_mean_by_corpus_db": {
            "as_recorded": {name: corpus_mean(raw_levels, name) for name in CORPORA},
            "prepared": {name: corpus_mean([w["intensity_mean"] for w in wholes], name)
                         for name in CORPORA},
        },
        "register_cue": "f0_mean",
        "register_boundary_hz": cues.REGISTER_BOUNDARY_HZ,
        "register_check": {
            "recordings_by_sex": {
                sex: {reg: sum(1 for s, r in zip(sexes, registers, strict=True)
                               if s == sex and r == reg) for reg in ("low", "high", "all")}
                for sex in ("male", "female")
            },
            "agreement_with_sex": round(float(np.mean((f0 >= cues.REGISTER_BOUNDARY_HZ)
                                                      == female)), 4),
            "best_boundary_for_sex": best_boundary(f0, female),
            "f0_hz_percentiles_5_50_95": {
                sex: [round(float(v), 1) for v in np.percentile(f0[mask], [5, 50, 95])]
                for sex, mask in (("male", ~female), ("female", female))
            },
        },
        "registers": {
            "all": statistics([values for _, values in regions]),
            "low": statistics([values for g, values in regions if g == "low"]),
            "high": statistics([values for g, values in regions if g == "high"]),
        },
        **record,
    }
    write_text(args.out, json.dumps(doc, indent=1) + "\n")
    print(json.dumps({k: doc[k] for k in ("corpora", "regions", "intensity_mean_by_corpus_db",
                                          "register_check")}, indent=1))
    for name, stats in doc["registers"].items():
        print(name, {c: (s["mean"], s["std"], s["n"]) for c, s in stats.items()})


if __name__ == "__main__":
    main()
