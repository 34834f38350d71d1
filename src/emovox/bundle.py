"""What a trained model is: the bundle a checkpoint holds, and the one classify path.

A :class:`Bundle` carries everything needed to use a model: the resolved training config, the
labels, the sample rate and frontend config, the normalisation statistics, the network (or the
logistic regression's arrays), measured scores and training info. :func:`save_checkpoint` and
:func:`load_checkpoint` write and read it.

:meth:`Bundle.classify` maps clean frontend features to class probabilities. It is the only
place that does: cross-validation scores, the benchmarks, ``emovox predict``, ``listen`` and
``serve`` all call it, so what is measured is what users get. Its steps:

1. round the features to the precision they were stored in during training and scoring
   (``data.cache_dtype``, float16 by default), so a model sees at inference exactly the kind of
   numbers it was trained and evaluated on;
2. standardise them (:class:`Normalizer`: training statistics, or the statistics of a group of
   recordings the caller passes);
3. the logistic regression on the pooled statistics, or the network on padded batches of
   similar length (every operation masks padding, so a batch gives each item what it gets
   alone, up to float rounding).

Fine-tuned models take waveforms instead (:meth:`Bundle.classify_waves`).

Example:
    >>> from importlib import resources
    >>> with resources.as_file(resources.files("emovox") / "pretrained" / "default.npz") as path:
    ...     bundle = load_checkpoint(path)
    >>> bundle.labels
    ['angry', 'disgust', 'fearful', 'happy', 'neutral', 'sad', 'surprised']
    >>> bundle.config.method, bundle.normalizer.mode, bundle.sample_rate
    ('logreg', 'global', 16000)
    >>> bundle.encoder.endswith("-int8.onnx")  # the encoder graph it runs on, without PyTorch
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .config import (
    LossConfig,
    TrainConfig,
    build_section,
    config_from_dict,
    frontend_options,
    member_config,
)
from .errors import EmovoxError
from .ops import Moments, Stats, pool_stats, softmax

__all__ = [
    "CHECKPOINT_FORMAT",
    "Bundle",
    "Classified",
    "LinearHead",
    "Normalizer",
    "build_network",
    "device_of",
    "load_checkpoint",
    "run_network",
    "save_atomic",
    "save_checkpoint",
]

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 1


@dataclass
class Normalizer:
    """Per-feature standardisation statistics, by group (``"*"`` = the training data).

    ``mean`` and ``std`` have the shape of one frame with a time axis of 1 (``[1, D]`` or
    ``[L, 1, D]``).

    Attributes:
        mode: ``"global"``, ``"speaker"``, ``"utterance"`` or ``"none"`` (see
            :mod:`emovox.config`).
        stats: Group name -> ``(mean, std)``.
    """

    mode: str
    stats: dict[str, Stats] = field(default_factory=dict)

    def fit(self, groups: Mapping[str, Sequence[np.ndarray]]) -> Normalizer:
        """Compute statistics for each group of feature matrices."""
        for name, feats in groups.items():
            found = Moments.of(feats)
            if found is not None:
                self.stats[name] = found
        return self

    @property
    def uses_groups(self) -> bool:
        """Whether statistics of a group of recordings can replace the training ones."""
        return self.mode in ("global", "speaker")

    def apply(self, feats: np.ndarray, stats: Stats | None = None) -> np.ndarray:
        """Standardise one utterance's features (float32).

        Args:
            feats: ``[..., T, D]``.
            stats: ``(mean, std)`` of the utterance's group, or ``None`` for the training data's
                (ignored in the ``"utterance"`` and ``"none"`` modes).
        """
        if self.mode == "none":
            return feats
        if self.mode == "utterance":
            own = Moments.of([feats])
            assert own is not None
            mean, std = own
        else:
            mean, std = stats if stats is not None else self.stats["*"]
        return ((feats - mean) / std).astype(np.float32, copy=False)

    def __call__(self, feats: np.ndarray, group: str = "*") -> np.ndarray:
        """Standardise with the statistics of a named group (the training data's if unknown)."""
        return self.apply(feats, self.stats.get(group))


class LinearHead:
    """A fitted multinomial logistic regression as plain arrays (no scikit-learn needed).

    ``predict_proba(x) = softmax((((x - mean) / scale) @ coef.T + intercept) / temperature)``.
    The temperature (1: none) is fitted on training speakers for calibration
    (``classic.calibration_folds``); it never changes which class is most probable. Stored in
    checkpoints as arrays, so loading one never unpickles library objects.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray, temperature: float | np.ndarray = 1.0) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise EmovoxError(f"temperature must be > 0, got {self.temperature}")

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters, for a checkpoint."""
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                "intercept": self.intercept, "temperature": np.asarray(self.temperature)}

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated scores ``[N, C]`` (temperature 1) for pooled features ``[N, F]``."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T
        return z + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, C]`` for pooled features ``[N, F]``."""
        return softmax(self.logits(x), self.temperature)


def build_network(config: TrainConfig, frame_shape: Sequence[int], num_classes: int) -> Any:
    """The network a config describes, freshly initialised (weights are loaded or trained after).

    One :class:`~emovox.models.FrameNetwork` per seed; ``optim.ensemble > 1`` or ``classic.fuse``
    make it an :class:`~emovox.models.Ensemble` of the seeded networks (and the fused
    :class:`~emovox.models.LinearMember`, last).

    Args:
        config: The run's config (``config.model`` holds the model options; its ``layer_mix``
            says how every-layer frames are combined).
        frame_shape: Shape of one frame: ``[D]``, or ``[L, D]`` for every hidden state.
        num_classes: Number of output classes.
    """
    from .models import Ensemble, LinearMember

    members = [_frame_network(member_config(config, k), frame_shape, num_classes)
               for k in range(config.optim.ensemble)]
    if config.classic.fuse:
        members.append(LinearMember(frame_shape, num_classes, config.classic.layer))
    return members[0] if len(members) == 1 else Ensemble(members,
                                                           config.optim.ensemble_weighting)


def _frame_network(config: TrainConfig, frame_shape: Sequence[int], num_classes: int) -> Any:
    from .models import FrameNetwork, ModelConfig, StatsBranch, build_model

    layers = int(frame_shape[0]) if len(frame_shape) == 2 else None
    concat = layers is not None and config.model.get("layer_mix") == "concat"
    input_dim = int(frame_shape[-1]) * ((layers or 1) if concat else 1)
    loss = build_section(LossConfig, config.loss, "loss")
    heads = {"num_regression": 3 if loss.vad > 0 else 0,
             "num_regions": 8 * loss.sphere_radius_bins if loss.sphere > 0 else 0}
    model_config = build_section(ModelConfig, {"input_dim": input_dim, "num_classes": num_classes,
                                               **heads, **config.model}, "model")
    stats = None
    if model_config.stats_branch:
        stats = StatsBranch(int(frame_shape[-1]) * (layers or 1), num_classes,
                            model_config.stats_dropout)
    return FrameNetwork(layers, build_model(model_config), model_config.layer_mix, stats)


@dataclass(frozen=True)
class Classified:
    """What :meth:`Bundle.classify` returns for ``N`` items.

    Attributes:
        probabilities: ``[N, C]`` float64, each row summing to 1.
        embeddings: ``[N, E]`` float32, or ``None`` for models without one (logistic regression).
        frame_weights: Per item, the attention weight of each frame (empty arrays when the
            model has no frame weights).
        dimensions: ``[N, 3]`` valence, arousal, dominance on the training data's scale for
            models with a VAD head (NaN for a dimension it did not learn), else ``None``.
    """

    probabilities: np.ndarray
    embeddings: np.ndarray | None = None
    frame_weights: tuple[np.ndarray, ...] = ()
    dimensions: np.ndarray | None = None


@dataclass
class Bundle:
    """Everything needed to use a trained model (what a checkpoint holds).

    Attributes:
        config: The resolved training config.
        labels: Class names, in output order.
        sample_rate: Input rate of the frontend, Hz.
        frontend_config: The frontend's ``config()`` as extracted.
        normalizer: Feature standardisation statistics.
        network: The torch module (neural), a :class:`LinearHead` (logistic regression) or a
            scikit-learn pipeline (linear SVM).
        scores: Measured scores (validation, cross-validation) recorded with it.
        info: Training data, protocol and history.
        encoder: The exported encoder graph (ONNX) its Whisper frontend runs on without
            PyTorch, for a model read from a torch-free ``.npz`` file that names one
            (:func:`save_checkpoint`); ``None``: the PyTorch frontend.
    """

    config: TrainConfig
    labels: list[str]
    sample_rate: int
    frontend_config: dict[str, Any]
    normalizer: Normalizer
    network: Any
    scores: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    encoder: str | None = None

    @property
    def finetuned(self) -> bool:
        """Whether the model takes waveforms (its frontend was fine-tuned with it)."""
        return bool(self.info.get("finetuned"))

    @property
    def feature_dtype(self) -> np.dtype:
        """The precision features had in training and scoring (``data.cache_dtype``)."""
        return np.dtype(self.config.data.cache_dtype)

    def as_trained(self, features: np.ndarray) -> np.ndarray:
        """Features rounded to :attr:`feature_dtype`, returned as float32."""
        return np.asarray(features).astype(self.feature_dtype).astype(np.float32)

    def classify(self, features: Sequence[np.ndarray], stats: Sequence[Stats | None] | None = None,
                 *, batch_size: int = 32, rounded: bool = False,
                 vectors: bool = False) -> Classified:
        """Class probabilities (and embeddings) for clean feature matrices: the one classify path.

        Args:
            features: One frontend output per item (``[T, D]``, ``[L, T, D]``, functionals
                ``[1, D]``), at any float precision.
            stats: Per item, the ``(mean, std)`` to standardise with, or ``None`` for the
                training statistics (ignored by models trained without group statistics).
            batch_size: Items run through a network at once (sorted by length; the result of
                an item does not depend on it beyond float rounding).
            rounded: The features are already at :attr:`feature_dtype` precision (as
                :meth:`as_trained` returns them): skip rounding them again.
            vectors: Classic models: return the pooled, standardised statistics each item is
                classified from as its ``embeddings`` (what a joint audio + text head reads;
                neural models always return their embedding).

        Returns:
            A :class:`Classified`.

        Raises:
            EmovoxError: If the model fine-tunes its frontend (use :meth:`classify_waves`).
        """
        if self.finetuned:
            raise EmovoxError("this model fine-tunes its frontend: classify waveforms instead")
        n = len(features)
        if n == 0:
            return Classified(np.zeros((0, len(self.labels))))
        groups = list(stats) if stats is not None else [None] * n
        feats = [f if rounded else self.as_trained(f) for f in features]
        if self.config.method != "neural":
            x = np.stack([self._pooled(f, s) for f, s in zip(feats, groups, strict=True)])
            return Classified(np.asarray(self.network.predict_proba(x), dtype=np.float64),
                              embeddings=x.astype(np.float32) if vectors else None)
        normed = [self.normalizer.apply(f, s) for f, s in zip(feats, groups, strict=True)]
        from .layers import pad_frames

        return self._in_units(run_network(self.network, normed, [f.shape[-2] for f in normed],
                                          pad_frames, batch_size))

    def _in_units(self, classified: Classified) -> Classified:
        """The VAD head's standardised outputs back on the training data's scale."""
        plan = self.info.get("vad")
        if classified.dimensions is None or not plan:
            return dataclasses.replace(classified, dimensions=None)
        from .targets import DIMENSIONS

        values = classified.dimensions[:, :3] * np.asarray(plan["std"]) + np.asarray(plan["mean"])
        learned = np.array([name in plan["dimensions"] for name in DIMENSIONS])
        values[:, ~learned] = np.nan
        return dataclasses.replace(classified, dimensions=values)

    def _pooled(self, feats: np.ndarray, stats: Stats | None) -> np.ndarray:
        """``pool_stats`` of the standardised features, from the statistics of the raw ones.

        Standardising is affine per feature, so the mean over time of standardised frames is
        the standardised mean and their standard deviation is the raw one over the scale: the
        same numbers (up to float rounding) without standardising every frame.
        """
        norm, layer = self.normalizer, self.config.classic.layer
        if norm.mode == "none" or feats.shape[-2] == 1:
            return pool_stats(norm.apply(feats, stats), layer)
        if norm.mode == "utterance":
            stats = Moments.of([feats])
        mean, std = stats if stats is not None else norm.stats["*"]
        if feats.ndim == 3 and layer != "all":
            feats, mean, std = feats[int(layer)], mean[int(layer)], std[int(layer)]
        scale = std[..., 0, :]
        centre = (feats.mean(axis=-2) - mean[..., 0, :]) / scale
        spread = feats.std(axis=-2) / scale
        return np.concatenate([centre, spread], axis=-1).reshape(-1).astype(np.float32)

    def classify_waves(self, waves: Sequence[np.ndarray], *, batch_size: int = 8) -> Classified:
        """Class probabilities of a fine-tuned (waveform-input) model for mono signals."""
        from .layers import pad_waves

        if not waves:
            return Classified(np.zeros((0, len(self.labels))))
        return self._in_units(run_network(self.network, list(waves), [len(w) for w in waves],
                                          pad_waves, batch_size))


def device_of(module: Any) -> Any:
    """The device of a module's first parameter or buffer (CPU for a module without any)."""
    import torch

    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def run_network(network: Any, items: Sequence[Any], sizes: Sequence[int], pad: Any,
                batch_size: int) -> Classified:
    """Run a network over batches of similar length (inference mode, on its device).

    Args:
        network: A module ``(first, second) -> ModelOutput``.
        items: Inputs (frame arrays or waveforms).
        sizes: Each item's length (frames or samples): batches group similar lengths.
        pad: Turns a list of items into the two input tensors (:func:`emovox.layers.pad_frames`
            or :func:`emovox.layers.pad_waves`).
        batch_size: Items per batch.
    """
    import torch

    n = len(items)
    network.eval()
    device = device_of(network)
    order = np.argsort(sizes, kind="stable")
    probs: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    regression: np.ndarray | None = None
    weights = [np.zeros(0, dtype=np.float32) for _ in range(n)]
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            first, second = pad([items[i] for i in idx])
            out = network(first.to(device), second.to(device))
            p = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
            e = out.embedding.float().cpu().numpy()
            if probs is None:
                probs = np.zeros((n, p.shape[1]), dtype=np.float64)
                embeddings = np.zeros((n, e.shape[1]), dtype=np.float32)
            probs[idx] = p
            assert embeddings is not None
            embeddings[idx] = e
            if out.regression is not None:
                r = out.regression.float().cpu().numpy().astype(np.float64)
                if regression is None:
                    regression = np.zeros((n, r.shape[1]))
                regression[idx] = r
            if out.frame_weights is not None:
                fw = out.frame_weights.float().cpu().numpy()
                for k, i in enumerate(idx):
                    weights[i] = fw[k, : sizes[i]]
    assert probs is not None
    has_embedding = embeddings is not None and embeddings.shape[1] > 0
    return Classified(probs, embeddings if has_embedding else None, tuple(weights), regression)


# --- checkpoints ------------------------------------------------------------------------------


def save_atomic(payload: Mapping[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then move it into place."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(dict(payload), tmp)
    tmp.replace(path)


def save_checkpoint(bundle: Bundle, path: str | Path, *, encoder: str | None = None) -> None:
    """Write a self-contained checkpoint (atomically).

    It holds the format version, the emovox version, the resolved config, labels, sample rate,
    frontend config, the training normalisation statistics, the network's weights (or the
    logistic regression's arrays, or the scikit-learn pipeline), scores and training info.

    A path ending in ``.npz`` writes the torch-free form (logistic regressions only): numpy
    arrays and one JSON document, read back without PyTorch and without unpickling anything.
    ``encoder`` (``.npz`` only) names an encoder graph file in the same folder
    (:func:`emovox.export.export_encoder`) that the model's Whisper frontend then runs on.

    Raises:
        EmovoxError: A ``.npz`` path for a model that is not a logistic regression, or an
            ``encoder`` for a ``.pt`` path.
    """
    if str(path).endswith(".npz"):
        _save_npz(bundle, Path(path), encoder)
        return
    if encoder is not None:
        raise EmovoxError("an encoder graph can be named in a .npz model file only")
    payload = {**_meta(bundle),
               "normalizer": {"mode": bundle.normalizer.mode,
                              "stats": {k: v for k, v in bundle.normalizer.stats.items()
                                        if k == "*"}}}
    if bundle.config.method == "neural":
        payload["network"] = bundle.network.state_dict()
    elif isinstance(bundle.network, LinearHead):
        payload["linear"] = bundle.network.arrays()
    else:
        payload["sklearn"] = bundle.network
    save_atomic(payload, path)


def _meta(bundle: Bundle) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "emovox_version": __version__,
        "config": bundle.config.to_dict(),
        "labels": list(bundle.labels),
        "sample_rate": int(bundle.sample_rate),
        "frontend": bundle.frontend_config,
        "normalizer": {"mode": bundle.normalizer.mode},
        "scores": bundle.scores,
        "info": bundle.info,
    }


def _save_npz(bundle: Bundle, path: Path, encoder: str | None) -> None:
    if not isinstance(bundle.network, LinearHead):
        raise EmovoxError(f"{path}: only logistic-regression models can be written as .npz "
                          "(save a .pt checkpoint)")
    if encoder is not None and os.path.basename(encoder) != encoder:
        raise EmovoxError(f"encoder {encoder!r}: give a file name in the model's folder")
    meta = {**_meta(bundle), "npz": 1, "encoder": encoder}
    arrays = {f"linear.{k}": np.asarray(v) for k, v in bundle.network.arrays().items()}
    stats = bundle.normalizer.stats.get("*")
    if stats is not None:
        arrays["normalizer.mean"], arrays["normalizer.std"] = (np.asarray(a) for a in stats)
    text = json.dumps(meta, sort_keys=True, default=_plain)
    arrays["meta"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def _plain(value: Any) -> Any:
    """JSON for the numpy scalars and arrays a model's info may hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _load_npz(path: Path) -> Bundle:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - any read failure means "not a model file"
        raise EmovoxError(f"{path}: not an emovox model file ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or "format" not in meta or "npz" not in meta:
        raise EmovoxError(f"{path}: not an emovox model file")
    if meta["format"] > CHECKPOINT_FORMAT:
        raise EmovoxError(f"{path}: model format {meta['format']} is newer than this emovox "
                          f"({__version__}); upgrade emovox")
    stats = {}
    if "normalizer.mean" in arrays:
        stats["*"] = (arrays["normalizer.mean"], arrays["normalizer.std"])
    head = LinearHead(**{k[len("linear."):]: v for k, v in arrays.items()
                         if k.startswith("linear.")})
    encoder = meta.get("encoder")
    return Bundle(config=config_from_dict(meta["config"]), labels=list(meta["labels"]),
                  sample_rate=int(meta["sample_rate"]), frontend_config=dict(meta["frontend"]),
                  normalizer=Normalizer(meta["normalizer"]["mode"], stats), network=head,
                  scores=dict(meta.get("scores", {})), info=dict(meta.get("info", {})),
                  encoder=str(path.parent / encoder) if encoder else None)


def load_checkpoint(path: str | Path) -> Bundle:
    """Load a model file written by :func:`save_checkpoint` (``.npz``: no PyTorch needed).

    Raises:
        EmovoxError: Missing file, not an emovox checkpoint, or a newer format.
        MissingExtraError: A ``.pt`` checkpoint without PyTorch installed.
    """
    path = Path(path)
    if not path.is_file():
        raise EmovoxError(f"{path}: checkpoint not found")
    if path.suffix == ".npz":
        return _load_npz(path)
    try:
        import torch
    except ImportError:
        raise EmovoxError(f"{path}: a .pt checkpoint needs PyTorch: pip install 'emovox[train]' "
                          "(or, where it is installed, `emovox export --model "
                          f"{path.name} --npz MODEL.npz` makes a torch-free copy)") from None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise EmovoxError(f"{path}: not an emovox checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise EmovoxError(f"{path}: not an emovox checkpoint")
    if payload["format"] > CHECKPOINT_FORMAT:
        raise EmovoxError(f"{path}: checkpoint format {payload['format']} is newer than this "
                          f"emovox ({__version__}); upgrade emovox")
    config = config_from_dict(payload["config"])
    norm = Normalizer(payload["normalizer"]["mode"], dict(payload["normalizer"]["stats"]))
    if config.method == "neural":
        network = build_network(config, payload["info"]["frame_shape"], len(payload["labels"]))
        if payload["info"].get("finetuned"):
            from .features import build_frontend
            from .models import WaveModel

            mean, std = norm.stats["*"]
            frontend = build_frontend(frontend_options(config))
            network = WaveModel(frontend.torch_module(), mean, std, network)  # type: ignore
        network.load_state_dict(payload["network"])
        network.eval()
    else:
        network = (LinearHead(**payload["linear"]) if "linear" in payload
                   else payload["sklearn"])
    return Bundle(config=config, labels=list(payload["labels"]),
                  sample_rate=int(payload["sample_rate"]),
                  frontend_config=dict(payload["frontend"]), normalizer=norm,
                  network=network, scores=dict(payload.get("scores", {})),
                  info=dict(payload.get("info", {})))
