"""A self-contained HTML page for an explanation (no script, no network: one file to open).

The page holds the sentence, the probabilities, a spectrogram with the primary saliency laid
over it and the salient regions outlined, every method's curve over time, and the table of
acoustic cues inside and outside the salient regions against neutral speech.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from typing import Any

import numpy as np

#: Anchor colours of the spectrogram's colour map (dark blue to yellow).
_MAP = np.array([[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104],
                 [244, 136, 73], [254, 188, 43], [240, 249, 33]], dtype=np.float64)
WIDTH = 900  # pixels of the time axis


def png(rgb: np.ndarray) -> bytes:
    """A PNG file of an ``[H, W, 3]`` uint8 image (zlib, no other library)."""
    h, w, _ = rgb.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + np.ascontiguousarray(row).tobytes() for row in rgb)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def spectrogram(signal: np.ndarray, rate: int, columns: int = WIDTH,
                rows: int = 160) -> np.ndarray:
    """A log-power spectrogram (0 to 8 kHz or Nyquist) as ``[rows, columns, 3]`` colours.

    Low frequencies at the bottom, time left to right over the whole signal.
    """
    n_fft = int(2 ** np.ceil(np.log2(0.025 * rate)))
    hop = max(1, int(0.01 * rate))
    x = np.asarray(signal, dtype=np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    count = 1 + (len(x) - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:count]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    top = min(power.shape[1], int(8000 / (rate / n_fft)) + 1)
    db = 10 * np.log10(power[:, :top] + 1e-12)
    # time onto the page's columns (nearest frame), frequency onto the rows
    cols = np.minimum((np.arange(columns) + 0.5) * count / columns, count - 1).astype(int)
    bins = np.minimum((np.arange(rows) + 0.5) * top / rows, top - 1).astype(int)
    image = db[cols][:, bins].T[::-1]
    hi = float(np.percentile(image, 99.5))
    level = np.clip((image - (hi - 80.0)) / 80.0, 0.0, 1.0)
    pos = level * (len(_MAP) - 1)
    low = np.floor(pos).astype(int)
    frac = (pos - low)[..., None]
    up = np.minimum(low + 1, len(_MAP) - 1)
    return (_MAP[low] * (1 - frac) + _MAP[up] * frac).astype(np.uint8)


def _curve(times: Any, values: Any, duration: float, width: int, height: int) -> str:
    """An SVG polyline of values scaled to their largest magnitude (0 in the middle)."""
    v = np.asarray(values, dtype=np.float64)
    scale = float(np.abs(v).max()) or 1.0
    xs = np.asarray(times) / max(duration, 1e-9) * width
    ys = height / 2 - v / scale * (height / 2 - 2)
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def explanation_html(explanation: Any, signal: np.ndarray, rate: int) -> str:
    """The page for one :class:`~emovox.explain.Explanation` of ``signal`` (at ``rate``)."""
    e = explanation
    esc = html.escape
    duration = max(e.duration, 1e-9)
    image = base64.b64encode(png(spectrogram(signal, rate))).decode("ascii")
    height = 160
    primary = e.saliency[e.primary]
    values = np.asarray(primary.values, dtype=np.float64)
    peak = float(values.max()) if values.size and values.max() > 0 else 1.0
    hop = (primary.times[1] - primary.times[0]) if len(primary.times) > 1 else duration
    cells = "".join(
        f'<rect x="{(t - hop / 2) / duration * WIDTH:.1f}" y="0" '
        f'width="{hop / duration * WIDTH:.1f}" height="{height}" fill="#ff2a2a" '
        f'fill-opacity="{0.55 * max(0.0, v) / peak:.3f}"/>'
        for t, v in zip(primary.times, values, strict=True) if v > 0)
    regions = "".join(
        f'<rect class="region" x="{a / duration * WIDTH:.1f}" y="1" '
        f'width="{(b - a) / duration * WIDTH:.1f}" height="{height - 2}"/>' for a, b in e.regions)
    colours = {"occlusion": "#d62728", "gradient": "#1f77b4", "attention": "#2ca02c"}
    curves = "".join(
        f'<polyline class="curve" data-method="{esc(m)}" fill="none" '
        f'stroke="{colours.get(m, "#555")}" stroke-width="1.5" '
        f'points="{_curve(s.times, s.values, duration, WIDTH, 120)}"/>'
        for m, s in e.saliency.items())
    def measured(m: str) -> str:
        per = (e.faithfulness or {}).get(m) or {}
        parts = [f"{v['deletion_ratio_20']:.1f}x random on {esc(c)}" for c, v in per.items()
                 if v.get("deletion_ratio_20") is not None]
        return f" ({', '.join(parts)})" if parts else ""

    legend = " ".join(f'<span style="color:{colours.get(m, "#555")}">&#9632; {esc(m)}'
                      f'{measured(m)}</span>' for m in e.saliency)
    marks = np.round(np.linspace(0, duration, 7), 1)
    ticks = "".join(
        f'<text x="{t / duration * WIDTH:.1f}" y="{height + 14}" font-size="11" '
        f'text-anchor="{"start" if k == 0 else "end" if k == len(marks) - 1 else "middle"}">'
        f'{t:g} s</text>' for k, t in enumerate(marks))
    probs = "".join(f"<tr><td>{esc(k)}</td><td>{v:.3f}</td></tr>"
                    for k, v in sorted(e.probabilities.items(), key=lambda kv: -kv[1]))
    mark = {True: "&#10003; as expected", False: "&#10007; not as expected", None: ""}
    rows = "".join(
        f"<tr><td>{esc(c.name)}</td><td>{esc(c.unit)}</td><td>{_num(c.inside)}</td>"
        f"<td>{_num(c.outside)}</td><td>{_num(c.z)}</td><td>{esc(c.expected or '–')}</td>"
        f"<td>{mark[c.agrees]}</td></tr>" for c in e.cues)
    cue_table = (
        "<table id=\"cues\"><thead><tr><th>cue</th><th>unit</th><th>salient regions</th>"
        "<th>elsewhere</th><th>z vs neutral speech</th><th>expected for "
        f"{esc(e.label)}</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        if e.cues else "<p>No acoustic cues measured (run without --no-cues).</p>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in e.notes)
    region_text = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in e.regions)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>emovox explain: {esc(str(e.path or 'signal'))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 960px; }}
h1 {{ font-size: 1.3em; }} .sentence {{ font-size: 1.15em; background: #f4f4f8;
  padding: .6em .8em; border-left: 4px solid #d62728; }}
table {{ border-collapse: collapse; margin: .5em 0 1.2em; }}
td, th {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.region {{ fill: none; stroke: #fff; stroke-width: 2; stroke-dasharray: 5 3; }}
.muted {{ color: #666; font-size: .9em; }}
</style></head><body>
<h1>{esc(str(e.path or 'signal'))}: <span id="label">{esc(e.label)}</span>
({e.probabilities.get(e.label, 0.0):.2f})</h1>
<p class="sentence" id="sentence">{esc(e.sentence or e.label)}</p>
<h2>Where the model looked</h2>
<p class="muted">Spectrogram (0–8 kHz) with the {esc(e.primary)} saliency in red and the salient
regions ({esc(region_text)}) outlined.</p>
<svg id="overlay" width="{WIDTH}" height="{height + 20}" viewBox="0 0 {WIDTH} {height + 20}"
 xmlns="http://www.w3.org/2000/svg">
<image href="data:image/png;base64,{image}" x="0" y="0" width="{WIDTH}" height="{height}"
 preserveAspectRatio="none"/>
{cells}{regions}{ticks}
</svg>
<p class="muted">Each method's saliency over time (scaled to its largest value; higher = more
important; in brackets, how much more silencing its top 20 % lowered the emotion's probability
than silencing random 20 %, on test speakers): {legend}</p>
<svg id="curves" width="{WIDTH}" height="120" viewBox="0 0 {WIDTH} 120"
 xmlns="http://www.w3.org/2000/svg">
<line x1="0" y1="60" x2="{WIDTH}" y2="60" stroke="#bbb"/>{curves}
</svg>
<h2>What was heard there, against neutral speech</h2>
{cue_table}
<h2>Probabilities</h2>
<table id="probabilities"><tbody>{probs}</tbody></table>
{f'<h2>Notes</h2><ul>{notes}</ul>' if notes else ''}
<p class="muted">Made by emovox explain. Occlusion: the drop of the emotion's probability when
a stretch is silenced; gradient: integrated gradients of its score over the encoder frames;
attention: the model's own frame weights. z: standard deviations from the neutral speech of
the model's training corpora (register {esc(str(e.register or '–'))}).</p>
</body></html>
"""


def explanation_png(explanation: Any, signal: np.ndarray, rate: int, path: str) -> None:
    """Draw an explanation into a PNG file (atomically; needs matplotlib, extra ``plot``).

    Three panels: the spectrogram with the primary saliency and the salient regions over it,
    every method's curve, and the cues inside the regions as z-scores against neutral speech
    (green where the literature's direction for the emotion holds, red where it does not).
    """
    from .errors import require
    from .files import save_png

    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = explanation
    duration = max(e.duration, 1e-9)
    fig, (top, mid, low) = plt.subplots(
        3, 1, figsize=(10, 8.5), gridspec_kw={"height_ratios": [2.2, 1.2, 2.2]})
    top.imshow(spectrogram(signal, rate), aspect="auto", extent=(0, duration, 0, 8),
               interpolation="nearest")
    primary = e.saliency[e.primary]
    values = np.asarray(primary.values, dtype=np.float64)
    peak = float(values.max()) if values.size and values.max() > 0 else 1.0
    hop = (primary.times[1] - primary.times[0]) if len(primary.times) > 1 else duration
    for t, v in zip(primary.times, values, strict=True):
        if v > 0:
            top.axvspan(t - hop / 2, t + hop / 2, color="#ff2a2a", alpha=0.5 * v / peak, lw=0)
    for a, b in e.regions:
        top.axvspan(a, b, fill=False, edgecolor="white", linestyle="--", lw=1.5)
    top.set_ylabel("kHz")
    top.set_title(f"{e.path or 'signal'}: {e.label} ({e.probabilities.get(e.label, 0):.2f})",
                  fontsize=10)
    for m, s in e.saliency.items():
        v = np.asarray(s.values, dtype=np.float64)
        mid.plot(s.times, v / (float(np.abs(v).max()) or 1.0), label=m, lw=1.2)
    mid.axhline(0, color="#bbb", lw=0.8)
    mid.set_xlim(0, duration)
    mid.set_xlabel("seconds")
    mid.set_ylabel("saliency")
    mid.legend(fontsize=8, loc="upper right")
    shown = [c for c in e.cues if c.z is not None]
    if shown:
        colours = ["#2ca02c" if c.agrees else "#d62728" if c.agrees is False else "#999"
                   for c in shown]
        low.barh([c.name for c in shown], [c.z for c in shown], color=colours)
        low.axvline(0, color="#555", lw=0.8)
        low.set_xlabel("z against neutral speech, salient regions")
        low.invert_yaxis()
        low.tick_params(axis="y", labelsize=8)
    else:
        low.axis("off")
        low.text(0.5, 0.5, "no acoustic cues measured", ha="center", va="center")
    fig.suptitle(e.sentence, fontsize=9, wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save_png(fig, path)
