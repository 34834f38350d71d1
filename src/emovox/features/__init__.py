"""Frontends: waveform -> frame features ``[time, feat]``, behind one interface, with a cache.

A frontend has ``name``, ``sample_rate``, ``dim``, ``frame_seconds``, ``config()`` (plain JSON
values that fully determine its output: the cache key) and ``__call__(signal) -> [time, feat]``
(functionals have time = 1). Frontends that can run inside training (waveform augmentation,
fine-tuning) also have ``torch_module()``: ``(wave[B, N], lengths[B]) -> (features[B, T, D],
mask[B, T])``.

``FRONTENDS`` maps each name to a builder; :func:`build_frontend` makes one from a config dict.
:class:`FeatureCache` stores extracted features on disk, keyed by the frontend config and by the
file's path, size, modification time and segment, so an edited file is never served stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import CONDITIONING_STEPS
from ..errors import ConfigError
from ..types import Utterance


class Frontend(Protocol):
    """What every frontend provides (see the module docstring)."""

    name: str
    sample_rate: int
    dim: int
    frame_seconds: float

    def config(self) -> dict[str, Any]:
        """Return the JSON-able values that fully determine the output."""
        ...

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Map a float32 mono signal at ``sample_rate`` to features ``[time, feat]``."""
        ...


def _logmel(**kw: Any) -> Frontend:
    from .logmel import LogMel

    return LogMel(**kw)


def _whisper(**kw: Any) -> Frontend:
    from .whisper import WhisperFrontend

    return WhisperFrontend(**kw)


def _opensmile(**kw: Any) -> Frontend:
    from .opensmile import OpenSmile

    return OpenSmile(**kw)


def _ssl(**kw: Any) -> Frontend:
    from .ssl import HFEncoder

    if "model" in kw:  # the recipe key; the constructor's argument is name_or_path
        kw["name_or_path"] = kw.pop("model")
    return HFEncoder(**kw)


def _edge(**kw: Any) -> Frontend:
    raise ConfigError("the edge frontend runs on its network's ONNX graph only: load the model "
                      "from its .npz file (emovox predict --model edge)")


#: Frontend name -> builder taking the frontend's keyword options.
FRONTENDS: dict[str, Callable[..., Frontend]] = {
    "logmel": _logmel,
    "whisper": _whisper,
    "opensmile": _opensmile,
    "ssl": _ssl,
    "edge": _edge,
}

#: Frontends that run on an exported graph (a model's ``encoder`` file), and their class.
GRAPH_FRONTENDS = ("whisper", "edge")


#: Options of every frontend that condition the signal before it (see :class:`Conditioned`).
CONDITIONING_OPTIONS = (*CONDITIONING_STEPS, "conditioning")

#: The conditioning rules this emovox applies: 1 trims by the loudest block alone; 2 (new
#: models) also stays above the noise floor, so noise-filled silence is cut too; 3 measures
#: every level (trim, active level, frame gate) in the telephone band only
#: (:data:`~emovox.vad.SPEECH_BAND`), so a channel that removes the rest changes none of them.
CONDITIONING_VERSIONS = (1, 2, 3)


class Conditioned:
    """A frontend whose input signal is conditioned first: level normalised, silence trimmed.

    ``level_db`` scales each signal to that active speech level (:func:`~emovox.vad.
    normalize_level`), ``trim_db`` cuts leading and trailing blocks more than that many dB
    below the loudest (:func:`~emovox.vad.trim_silence`); ``None`` leaves a step out.
    ``gate_db`` keeps, of the features, only the frames within that many dB of the voice's
    level (:func:`~emovox.vad.frame_gate`), so pauses and whatever fills them (babble, noise)
    are left out of what the model pools (frame-level frontends only). All are part of
    :meth:`config` (so of the cache key and of every checkpoint; ``gate_db`` only when set),
    with the rule's ``conditioning`` version (:data:`CONDITIONING_VERSIONS`; absent: the
    newest), so training and prediction condition alike. Everything else is the wrapped
    frontend's.

    :meth:`condition` and :meth:`gate` are the steps alone, for callers that run the
    frontend's ``torch_module()`` themselves (the module does neither).
    """

    def __init__(self, frontend: Frontend, level_db: float | None = None,
                 trim_db: float | None = None, conditioning: int = 2,
                 gate_db: float | None = None) -> None:
        if conditioning not in CONDITIONING_VERSIONS:
            raise ConfigError(f"frontend.conditioning {conditioning!r} is not one this emovox "
                              f"knows ({', '.join(map(str, CONDITIONING_VERSIONS))}): a model "
                              "from a newer emovox?")
        for key, value in (("level_db", level_db), ("trim_db", trim_db), ("gate_db", gate_db)):
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                raise ConfigError(f"frontend.{key} must be a number or absent, got {value!r}")
        if level_db is not None and not -60.0 <= float(level_db) <= 0.0:
            raise ConfigError(f"frontend.level_db must be in [-60, 0] dBFS, got {level_db}")
        if trim_db is not None and not float(trim_db) > 0:
            raise ConfigError(f"frontend.trim_db must be > 0 dB, got {trim_db}")
        if gate_db is not None and not 0 < float(gate_db) <= 120:
            raise ConfigError(f"frontend.gate_db must be in (0, 120] dB, got {gate_db}")
        if gate_db is not None and getattr(frontend, "frame_seconds", None) == 0.0:
            raise ConfigError("frontend.gate_db selects frames: this frontend returns one row "
                              "per recording (functionals or pooled); leave gate_db out")
        self.inner = frontend
        self.level_db = None if level_db is None else float(level_db)
        self.trim_db = None if trim_db is None else float(trim_db)
        self.conditioning = int(conditioning)
        self.gate_db = None if gate_db is None else float(gate_db)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def config(self) -> dict[str, Any]:
        """The wrapped frontend's config plus the conditioning options."""
        config = {**self.inner.config(), "level_db": self.level_db, "trim_db": self.trim_db,
                  "conditioning": self.conditioning}
        if self.gate_db is not None:
            config["gate_db"] = self.gate_db
        return config

    def condition(self, signal: np.ndarray) -> np.ndarray:
        """The conditioned signal (float32, at the frontend's rate)."""
        return self.condition_span(signal)[0]

    def condition_span(self, signal: np.ndarray) -> tuple[np.ndarray, int]:
        """The conditioned signal and the sample of ``signal`` it starts at.

        The start is what trimming cut from the front, so that frames of the conditioned
        signal can be placed in the input's time.
        """
        from ..vad import normalize_level, trim_span

        x = np.asarray(signal, dtype=np.float32)
        rate = int(self.inner.sample_rate)
        start = 0
        if self.trim_db is not None:
            start, end = trim_span(x, rate, self.trim_db,
                                   floor_margin_db=6.0 if self.conditioning >= 2 else None,
                                   band=self._band)
            x = x[start:end]
        if self.level_db is not None:
            x = normalize_level(x, rate, self.level_db, band=self._band)
        return x, start

    @property
    def _band(self) -> tuple[float, float] | None:
        from ..vad import SPEECH_BAND

        return SPEECH_BAND if self.conditioning >= 3 else None

    def gate(self, conditioned: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``features`` of the ``conditioned`` signal without the frames the gate leaves out.

        Frames are the second-to-last axis (``[T, D]`` or ``[L + 1, T, D]``); without
        ``gate_db`` the features are returned as they are.
        """
        if self.gate_db is None:
            return features
        from ..vad import frame_gate

        keep = frame_gate(conditioned, int(self.inner.sample_rate), features.shape[-2],
                          self.gate_db, band=self._band)
        return features[..., keep, :]

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """The wrapped frontend's features of the conditioned signal (gated frames only)."""
        x = self.condition(signal)
        return self.gate(x, self.inner(x))

    def __repr__(self) -> str:
        gate = "" if self.gate_db is None else f", gate_db={self.gate_db}"
        return (f"Conditioned({self.inner!r}, level_db={self.level_db}, trim_db={self.trim_db}"
                f"{gate})")


def condition_signal(frontend: Any, signal: np.ndarray) -> np.ndarray:
    """``frontend.condition(signal)`` for a :class:`Conditioned` frontend, else the signal."""
    return frontend.condition(signal) if isinstance(frontend, Conditioned) else signal


def gate_frames(frontend: Any, conditioned: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The frames a :class:`Conditioned` frontend's gate keeps (other frontends: all of them).

    For callers that run ``torch_module()`` on :func:`condition_signal`'s output.
    """
    return frontend.gate(conditioned, features) if isinstance(frontend, Conditioned) else features


def build_frontend(config: Mapping[str, Any], encoder: str | os.PathLike[str] | None = None,
                   threads: int | None = None) -> Frontend:
    """Build a frontend from ``{"name": ..., **options}``.

    ``level_db`` and ``trim_db`` (any frontend; absent or ``None``: off) wrap it in
    :class:`Conditioned`.

    Args:
        config: The frontend's config (as its ``config()`` returns it).
        encoder: An exported graph to run the frontend on, with ONNX Runtime instead of
            PyTorch: a Whisper encoder (:func:`emovox.export.export_encoder`,
            :class:`~emovox.features.onnx.OnnxWhisper`) or the edge model's network
            (:func:`emovox.edge.export_edge`, :class:`~emovox.features.edge.EdgeFrontend`).
        threads: Threads of the encoder graph's session (``None``: ONNX Runtime's default).

    Raises:
        ConfigError: On an unknown frontend name or option, or an encoder graph for another
            frontend.
    """
    options = dict(config)
    name = options.pop("name", None)
    conditioning = {k: options.pop(k) for k in CONDITIONING_OPTIONS if k in options}
    if name not in FRONTENDS:
        raise ConfigError(f"unknown frontend '{name}' (known: {', '.join(FRONTENDS)})")
    if encoder is not None and name not in GRAPH_FRONTENDS:
        raise ConfigError(f"an encoder graph runs Whisper or edge frontends only, not '{name}'")
    try:
        if encoder is not None and name == "edge":
            from .edge import EdgeFrontend

            frontend: Frontend = EdgeFrontend(encoder, threads=threads, **options)
        elif encoder is not None:
            from .onnx import OnnxWhisper

            frontend = OnnxWhisper(encoder, threads=threads, **options)
        else:
            frontend = FRONTENDS[str(name)](**options)
    except TypeError as exc:
        raise ConfigError(f"frontend '{name}': {exc}") from None
    if any(conditioning.get(k) is not None for k in CONDITIONING_STEPS):
        return Conditioned(frontend, **conditioning)
    return frontend


def config_key(config: Mapping[str, Any]) -> str:
    """A short stable hash of a frontend config (the cache folder name)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$EMOVOX_CACHE`` or ``~/.cache/emovox``."""
    env = os.environ.get("EMOVOX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "emovox"


class FeatureCache:
    """An on-disk cache of one frontend's features, one ``.npy`` file per utterance.

    Args:
        root: Cache root; features go to ``root/features/<name>-<config hash>/``.
        frontend_config: The frontend's ``config()``; written beside the files for audit.
        dtype: Storage dtype (``"float16"`` halves the size of large encoder features).
    """

    def __init__(
        self, root: str | os.PathLike[str], frontend_config: Mapping[str, Any],
        dtype: str = "float32",
    ) -> None:
        name = str(frontend_config.get("name", "frontend"))
        self.folder = Path(root) / "features" / f"{name}-{config_key(frontend_config)}-{dtype}"
        self.dtype = np.dtype(dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "frontend.json"
        if not meta.exists():
            meta.write_text(json.dumps(dict(frontend_config), indent=1, default=str))

    def key(self, utt: Utterance, variant: str = "") -> str:
        """The cache key of an utterance: its file identity, its segment and a variant tag.

        ``variant`` names a deterministic transformation of the audio (e.g. ``"speed0.9"``);
        the empty string is the audio as it is.
        """
        try:
            st = os.stat(utt.path)
            ident = f"{os.path.realpath(utt.path)}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            ident = f"{utt.path}|missing"
        ident += f"|{utt.start}|{utt.duration}"
        if variant:
            ident += f"|{variant}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def get(self, utt: Utterance, variant: str = "") -> np.ndarray | None:
        """Return the cached features of ``utt`` (and variant), or ``None``."""
        path = self.folder / f"{self.key(utt, variant)}.npy"
        try:
            return np.load(path)
        except (OSError, ValueError, EOFError):
            return None

    def put(self, utt: Utterance, features: np.ndarray, variant: str = "") -> None:
        """Store features atomically (a killed run never leaves a half-written file)."""
        path = self.folder / f"{self.key(utt, variant)}.npy"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, np.asarray(features, dtype=self.dtype))
        os.replace(tmp, path)
