"""The Whisper frontend on ONNX Runtime: no PyTorch needed.

:class:`OnnxWhisper` runs an encoder graph written by :func:`emovox.export.export_encoder`
(log-mel + Whisper encoder, every hidden state) with onnxruntime and numpy only. It has the
interface and the :meth:`~OnnxWhisper.config` of the PyTorch
:class:`~emovox.features.whisper.WhisperFrontend` it was exported from (the model file's
digest included), so a model trained on the PyTorch frontend classifies its features through
the same classify path; the bundled default model runs this way
(:meth:`emovox.inference.Recognizer.default`).

Differences from the PyTorch frontend: an int8 graph's matrix multiplications use int8
weights, except the first layer's attention projections (:data:`emovox.export.FLOAT_SCOPES`;
how often labels still agree: ``benchmarks/onnx_parity.py``, ``onnx_held_out.py``); a
signal over 30 s is encoded in consecutive 30 s pieces, each with its own log-mel range (the
recognizer never encodes more than 30 s at once).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..errors import AudioError, ConfigError, EmovoxError

__all__ = ["OnnxWhisper", "encoder_metadata"]

_PREFIX = "emovox."
_MIN_SAMPLES = 400  # one analysis window (25 ms at 16 kHz): the graph's smallest input


def _session(path: str, threads: int | None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise EmovoxError("onnxruntime is missing, a dependency of emovox itself: "
                          "pip install onnxruntime (or reinstall emovox)") from None
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any load failure means "not a usable graph"
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise EmovoxError(f"{path}: not a usable ONNX model ({type(exc).__name__}"
                          f"{': ' + reason if reason else ''})") from None


def encoder_metadata(session: Any, path: str) -> dict[str, Any]:
    """The emovox metadata of an encoder graph's session (frontend config decoded).

    Raises:
        EmovoxError: If the graph is not an emovox encoder (another tool's, or a classifier).
    """
    raw = session.get_modelmeta().custom_metadata_map
    meta = {k[len(_PREFIX):]: v for k, v in raw.items() if k.startswith(_PREFIX)}
    if meta.get("format") != "1" or meta.get("kind") != "encoder" or "frontend" not in meta:
        raise EmovoxError(f"{path}: not an emovox encoder graph (made by another tool, or a "
                          "whole-model export?); write one with `emovox export --npz`")
    inputs = [i.name for i in session.get_inputs()]
    if inputs != ["wave"]:
        raise EmovoxError(f"{path}: expected one input 'wave', the graph has {inputs}")
    return {**meta, "frontend": json.loads(meta["frontend"]),
            "num_layers": int(meta["num_layers"]), "dim": int(meta["dim"])}


class OnnxWhisper:
    """Whisper features from an exported encoder graph (see the module docstring).

    Args:
        path: The encoder ONNX file (:func:`emovox.export.export_encoder`).
        layer: Hidden state to return: an int in ``[-(L + 1), L]`` or ``"all"``.
        pooled: Return mean and std over frames instead of frames.
        model: Expected digest of the Whisper model file the graph was made from (the
            ``"model"`` value of a checkpoint's frontend config); ``None`` skips the check.
        model_path: Accepted so that a checkpoint's config round-trips (not used).
        sample_rate: Must be the graph's (16000).
        finetune: Accepted for the same reason; only ``"none"`` runs here.
        threads: Threads of the ONNX Runtime session (``None``: its default).
        depth: The encoder cut the config asks for (``None``: the whole encoder); must be the
            graph's (an encoder graph holds only the layers it was exported with).

    Raises:
        ConfigError: For a bad ``layer`` or ``sample_rate``, a fine-tuned frontend, a graph
            made from another Whisper model than ``model`` or with another ``depth``.
        EmovoxError: If the file is missing or not an emovox encoder graph.
    """

    name = "whisper"

    def __init__(self, path: str | os.PathLike[str], layer: int | str = -1,
                 pooled: bool = False, model: str | None = None,
                 model_path: str | None = None, sample_rate: int = 16000,
                 finetune: str = "none", threads: int | None = None,
                 depth: int | None = None) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise EmovoxError(f"{self.path}: encoder graph not found")
        if finetune != "none":
            raise ConfigError("a fine-tuned Whisper frontend cannot run on an encoder graph")
        self.threads = threads
        self._session = _session(self.path, threads)
        meta = encoder_metadata(self._session, self.path)
        self._frontend = dict(meta["frontend"])
        self.num_layers = int(meta["num_layers"])
        self.sample_rate = int(meta.get("sample_rate", 16000))
        self.int8 = meta.get("int8") == "true"
        self.max_samples = int(float(meta.get("max_seconds", 30)) * self.sample_rate)
        if int(sample_rate) != self.sample_rate:
            raise ConfigError(f"the Whisper frontend works at {self.sample_rate} Hz, "
                              f"not {sample_rate}")
        if model is not None and model != self._frontend.get("model"):
            raise ConfigError(f"{self.path}: made from another Whisper model (digest "
                              f"{self._frontend.get('model')}, the model needs {model})")
        self.depth = self._frontend.get("depth")
        if depth != self.depth:
            def whole(d: int | None) -> str:
                return "the whole encoder" if d is None else f"depth {d}"
            raise ConfigError(f"{self.path}: holds {whole(self.depth)}; the model needs "
                              f"{whole(depth)}")
        if isinstance(layer, bool) or not (isinstance(layer, int) or layer == "all"):
            raise ConfigError(f"layer must be an int or 'all' here, got {layer!r}")
        if isinstance(layer, int) and not -(self.num_layers + 1) <= layer <= self.num_layers:
            raise ConfigError(f"layer must be in [{-(self.num_layers + 1)}, "
                              f"{self.num_layers}], got {layer}")
        self.layer = layer
        self.pooled = bool(pooled)
        self.model_path = model_path
        d_model = int(meta["dim"])
        self.dim = 2 * d_model if self.pooled else d_model
        self.frame_seconds = 0.0 if self.pooled else 0.02

    @property
    def layer_index(self) -> int | None:
        """The chosen hidden-state index in ``[0, L]``, or ``None`` for ``"all"``."""
        return None if isinstance(self.layer, str) else self.layer % (self.num_layers + 1)

    def config(self) -> dict[str, Any]:
        """The config of the PyTorch frontend this one stands for (same keys and values)."""
        index = self.layer_index
        config: dict[str, Any] = {
            "name": self.name, "layer": self.layer if index is None else index,
            "pooled": self.pooled, "model_path": self.model_path,
            "model": self._frontend.get("model"), "sample_rate": self.sample_rate}
        if self.depth is not None:
            config["depth"] = self.depth
        return config

    def set_threads(self, threads: int) -> None:
        """Run the session on ``threads`` threads from now on."""
        if threads != self.threads:
            self.threads = int(threads)
            self._session = _session(self.path, self.threads)

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Encode one mono signal at :attr:`sample_rate`.

        Returns:
            float32 ``[T, D]`` for an int layer, ``[L + 1, T, D]`` for ``"all"``
            (``T = ceil((samples // 160) / 2)``); ``[1, 2D]`` / ``[L + 1, 1, 2D]`` when pooled.

        Raises:
            AudioError: If the signal is not mono, shorter than 25 ms, or holds NaN/inf.
        """
        x = np.asarray(signal)
        if x.ndim != 1:
            raise AudioError(f"expected a mono signal [samples], got shape {x.shape}")
        if len(x) < _MIN_SAMPLES:
            raise AudioError(f"signal too short for the Whisper encoder ({len(x)} samples; "
                             f"at least {_MIN_SAMPLES})")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise AudioError("signal holds NaN or infinite samples")
        pieces = []
        for start in range(0, len(x), self.max_samples):
            piece = x[start : start + self.max_samples]
            if len(piece) < _MIN_SAMPLES:  # a tail too short to encode on its own
                piece = np.pad(piece, (0, _MIN_SAMPLES - len(piece)))
            pieces.append(self._session.run(None, {"wave": piece[None, :]})[0])
        states = np.concatenate(pieces, axis=1) if len(pieces) > 1 else pieces[0]
        index = self.layer_index
        feats = states if index is None else states[index]
        if self.pooled:
            pooled = np.concatenate([feats.mean(axis=-2), feats.std(axis=-2)], axis=-1)
            feats = pooled[..., None, :]
        return np.asarray(feats, dtype=np.float32)

    def __repr__(self) -> str:
        return f"OnnxWhisper({self.path!r}, layer={self.layer!r}, int8={self.int8})"
