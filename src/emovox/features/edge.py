"""The edge model's frontend: its spectrum (numpy) and its network's ONNX graph (onnxruntime).

What runs without PyTorch when ``emovox predict --model edge`` does: :func:`power_frames` of
the conditioned signal, then the graph :func:`emovox.edge.export_edge` wrote (mel bands and
the network inside), one :data:`DIM`-wide frame per 40 ms. Training and export are in
:mod:`emovox.edge`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import AudioError, ConfigError, EmovoxError

__all__ = ["DIM", "FRAME_SECONDS", "HOP", "MIN_SAMPLES", "N_FFT", "N_MELS", "SAMPLE_RATE",
           "STRIDE", "WIN", "EdgeFrontend", "edge_frames", "power_frames"]

SAMPLE_RATE = 16000
N_FFT = 512
WIN = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 64
#: Width of the network's output frames.
DIM = 128
#: Time stride of the network (two stride-2 stages): one output frame per 40 ms.
STRIDE = 4
FRAME_SECONDS = STRIDE * HOP / SAMPLE_RATE
#: The shortest signal the graph takes (one analysis window).
MIN_SAMPLES = WIN
_FORMAT = "1"
_PREFIX = "emovox."


def _window() -> np.ndarray:
    """A periodic Hann window of :data:`WIN` samples, zero-padded to :data:`N_FFT`, centred."""
    n = np.arange(WIN)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)
    left = (N_FFT - WIN) // 2
    return np.pad(hann, (left, N_FFT - WIN - left)).astype(np.float32)


_WINDOW = _window()


def power_frames(signal: np.ndarray) -> np.ndarray:
    """The power spectrum of a mono 16 kHz signal: ``[1 + samples // 160, 257]`` float32.

    Frames are centred (frame ``t`` on sample ``160 t``), the left edge reflected and the
    signal followed by zeros, as :mod:`emovox.features.mel` frames signals.

    Raises:
        AudioError: If the signal is not mono, is shorter than 25 ms or holds NaN/inf.
    """
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 1:
        raise AudioError(f"expected a mono signal [samples], got shape {x.shape}")
    if len(x) < MIN_SAMPLES:
        raise AudioError(f"signal too short for the edge model ({len(x)} samples; at least "
                         f"{MIN_SAMPLES})")
    if not np.isfinite(x).all():
        raise AudioError("signal holds NaN or infinite samples")
    half = N_FFT // 2
    padded = np.concatenate([x[half:0:-1], x, np.zeros(half, dtype=np.float32)])
    count = 1 + len(x) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    spec = np.fft.rfft(frames * _WINDOW, axis=1)
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)


def edge_frames(mel_frames: int) -> int:
    """How many output frames the network gives for ``mel_frames`` input frames."""
    t = int(mel_frames)
    for _ in range(2):  # two stride-2 stages (kernel 3, padding 1)
        t = (t - 1) // 2 + 1
    return t


# --- the torch-free runtime ----------------------------------------------------------------


class EdgeFrontend:
    """The edge network's frames from its ONNX graph (onnxruntime and numpy only).

    Args:
        path: The graph (:func:`export_edge`).
        model: Expected digest of the network (a checkpoint's frontend config ``"model"``);
            ``None`` skips the check.
        sample_rate: Must be 16000.
        threads: Threads of the ONNX Runtime session (``None``: its default).

    Raises:
        ConfigError: For another sample rate, or a graph of another network than ``model``.
        EmovoxError: If the file is missing or not an emovox edge graph.
    """

    name = "edge"

    def __init__(self, path: str | os.PathLike[str], model: str | None = None,
                 sample_rate: int = SAMPLE_RATE, threads: int | None = None,
                 **_: Any) -> None:
        from .onnx import _session

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise EmovoxError(f"{self.path}: edge graph not found")
        if int(sample_rate) != SAMPLE_RATE:
            raise ConfigError(f"the edge frontend works at {SAMPLE_RATE} Hz, not {sample_rate}")
        self.threads = threads
        self._session = _session(self.path, threads)
        raw = self._session.get_modelmeta().custom_metadata_map
        meta = {k[len(_PREFIX):]: v for k, v in raw.items() if k.startswith(_PREFIX)}
        if meta.get("format") != _FORMAT or meta.get("kind") != "edge":
            raise EmovoxError(f"{self.path}: not an emovox edge graph (made by another tool?)")
        inputs = [i.name for i in self._session.get_inputs()]
        if inputs != ["power"]:
            raise EmovoxError(f"{self.path}: expected one input 'power', the graph has {inputs}")
        self.network = meta.get("network", "")
        if model is not None and model != self.network:
            raise ConfigError(f"{self.path}: holds another edge network (digest "
                              f"{self.network}, the model needs {model})")
        self.int8 = meta.get("int8") == "true"
        self.sample_rate = SAMPLE_RATE
        self.dim = int(meta.get("dim", DIM))
        self.frame_seconds = FRAME_SECONDS
        self.num_layers = None

    def config(self) -> dict[str, Any]:
        """What determines the frames: the network's digest."""
        return {"name": self.name, "model": self.network, "sample_rate": self.sample_rate}

    def set_threads(self, threads: int) -> None:
        """Run the session on ``threads`` threads from now on."""
        from .onnx import _session

        if threads != self.threads:
            self.threads = int(threads)
            self._session = _session(self.path, self.threads)

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Frames ``[T, DIM]`` float32 of one mono 16 kHz signal (``T`` = one per 40 ms)."""
        power = power_frames(signal)
        return np.asarray(self._session.run(None, {"power": power[None]})[0], dtype=np.float32)

    def __repr__(self) -> str:
        return f"EdgeFrontend({self.path!r}, int8={self.int8})"
