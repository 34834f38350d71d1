"""Training: typed configs, recipes, and one ``fit()`` you can read top to bottom.

A run is described by :class:`TrainConfig` (sections ``frontend``, ``data``, ``augment``,
``model``, ``loss``, ``optim``, ``classic``), loaded from a small TOML recipe and ``--set
key=value`` overrides. Unknown keys are errors. The resolved config is saved in every checkpoint.

Two kinds of trainer share the data path:

- ``method = "neural"``: the MLL model (:class:`emovox.models.SERModel`) on frame features,
  trained with waveform mixing (EAM by default), the multi-loss objective, lr x 7/8 per epoch,
  early stopping on the validation speakers' UA. Features of unmixed utterances come from the
  feature cache; mixed waveforms are encoded on the fly by the frontend's torch module.
- ``method = "logreg"`` / ``"linear"``: the classic baselines, a scikit-learn logistic
  regression or linear SVM on mean+std pooled (or functional) features.

Feature normalisation (``data.normalization``): ``"global"`` standardises each feature with
training-set statistics (per utterance, nothing from the test set: the default);
``"speaker"`` uses each speaker's own statistics, computed over that speaker's unlabelled
recordings, *including test speakers* (transductive: reported as such in results);
``"utterance"`` uses each utterance's own statistics over time; ``"none"`` leaves them.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import __version__
from .errors import ConfigError, EmovoxError
from .types import Utterance

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CHECKPOINT_FORMAT = 1


# --- configuration ----------------------------------------------------------------------------


@dataclass
class DataConfig:
    """What the model sees.

    Attributes:
        classes: Class subset (a :data:`emovox.labels.SUBSETS` name or a list); ``None`` keeps
            every label the corpus has.
        normalization: ``"global"``, ``"speaker"`` (transductive), ``"utterance"`` or ``"none"``.
        max_train_seconds: Training crops longer utterances to a random window of this length.
        cache_dtype: Storage dtype of cached features (``"float16"`` halves memory and disk).
        train_on_valid: Neural models train on the validation speakers too, for the whole
            schedule (no model selection, as in the paper's fixed 20 epochs; pair it with
            ``optim.average_from``). The classic models always do.
    """

    classes: Any = None
    normalization: Literal["global", "speaker", "utterance", "none"] = "global"
    max_train_seconds: float = 12.0
    cache_dtype: str = "float16"
    train_on_valid: bool = False


@dataclass
class AugmentConfig:
    """Waveform mixing during training (see :mod:`emovox.augment`).

    Attributes:
        method: ``"eam"`` (energy-adaptive mixup), ``"mixup"``, ``"length"`` or ``"none"``.
        p: Probability that a training utterance is mixed (EAM's is unknown; 0.5 follows the
            closest published baseline).
        snr_db_min: Lower end of EAM's target SNR range (paper: -5 dB).
        snr_db_max: Upper end of EAM's target SNR range (paper: 10 dB).
        max_fraction: Longest EAM mix segment as a fraction of the utterance (paper: 1/2).
        label_rule: EAM soft-label rule: ``"energy"`` (reconstructed paper rule), ``"length"``,
            ``"hard"``.
        alpha: Beta(alpha, alpha) parameter of plain mixup.
        speed_factors: Speed perturbation (:func:`emovox.augment.speed_perturb`): every training
            utterance also exists played at these speeds (features cached once); each epoch
            draws one version per utterance, uniformly over ``[1.0, *speed_factors]``. The
            classic trainers use every version. Empty: off (an addition to the paper).
    """

    method: Literal["eam", "mixup", "length", "none"] = "eam"
    p: float = 0.5
    snr_db_min: float = -5.0
    snr_db_max: float = 10.0
    max_fraction: float = 0.5
    label_rule: Literal["energy", "length", "hard"] = "energy"
    alpha: float = 0.2
    speed_factors: list[float] = field(default_factory=list)

    def mixer_config(self) -> Any:
        """The :mod:`emovox.augment` config object for ``method``."""
        from . import augment

        if self.method == "eam":
            return augment.EAMConfig(
                p=self.p, snr_db_min=self.snr_db_min, snr_db_max=self.snr_db_max,
                max_fraction=self.max_fraction, label_rule=self.label_rule,
            )
        if self.method == "mixup":
            return augment.MixupConfig(p=self.p, alpha=self.alpha)
        if self.method == "length":
            return augment.LengthMixConfig(p=self.p)
        return None


@dataclass
class OptimConfig:
    """Optimisation (paper: batch 16, lr 1e-4, lr x 7/8 after every epoch, 20 epochs).

    Attributes:
        epochs: Maximum epochs.
        batch_size: Utterances per batch.
        lr: Adam learning rate of the head.
        encoder_lr: Learning rate of fine-tuned encoder layers (``None``: same as ``lr``).
        lr_decay: Multiplier applied to the learning rate after every epoch.
        weight_decay: AdamW weight decay.
        grad_clip: Gradient-norm clip (0: off).
        patience: Stop after this many epochs without a better validation UA (0: off).
        seed: Seed of every random draw (init, order, mixing, dropout).
        threads: Torch threads (``None``: leave the default).
        device: Torch device to train on (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        average_from: If > 0, the final model is the mean of the weights after every epoch from
            this one to the last (stochastic weight averaging, Izmailov et al. 2018; an
            addition to the paper) instead of the epoch with the best validation UA; early
            stopping is then off, the validation UA reported is the averaged model's.
        ensemble: Train this many models with seeds ``seed``, ``seed + 1``, ... and average
            their class probabilities (1: one model). Member 1 is exactly the one-model run
            (and resumes from its ``last.pt``); member k keeps its own in ``member_k/``.
    """

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-4
    encoder_lr: float | None = None
    lr_decay: float = 0.875
    weight_decay: float = 0.01
    grad_clip: float = 5.0
    patience: int = 8
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    average_from: int = 0
    ensemble: int = 1


@dataclass
class ClassicConfig:
    """The scikit-learn baselines (``method = "logreg" | "linear"``).

    Attributes:
        C: Inverse regularisation strength.
        max_iter: Solver iterations.
        layer: Hidden-state index used when the features hold every layer, or ``"all"`` to
            concatenate every layer's statistics.
        speed_factors: Speed versions the linear model trains on (``None``: those of
            ``augment.speed_factors``).
        fuse: With ``method = "neural"``: also fit the logistic regression described here on
            the same training data and normalisation, and add it to the network as one more
            ensemble member (class probabilities averaged, every member weighted equally;
            late fusion, an addition to the paper). Needs frame-level features.
    """

    C: float = 1.0  # noqa: N815 - scikit-learn's name
    max_iter: int = 3000
    layer: int | str = -1
    speed_factors: list[float] | None = None
    fuse: bool = False

    def speeds(self, augment: AugmentConfig) -> list[float]:
        """Every speed the linear model trains on, ``1.0`` first."""
        extra = augment.speed_factors if self.speed_factors is None else self.speed_factors
        return [1.0, *extra]


@dataclass
class TrainConfig:
    """A whole training run (one recipe).

    Attributes:
        name: Recipe name (for reports).
        method: ``"neural"`` (MLL and its ablations), ``"logreg"`` or ``"linear"``.
        frontend: Frontend options: ``{"name": ..., **options}`` (see :mod:`emovox.features`).
        data: :class:`DataConfig`.
        augment: :class:`AugmentConfig`.
        model: Options of :class:`emovox.models.ModelConfig` (input size and classes are set
            from the data).
        loss: Options of :class:`emovox.losses.LossConfig`.
        optim: :class:`OptimConfig`.
        classic: :class:`ClassicConfig`.
    """

    name: str = "custom"
    method: Literal["neural", "logreg", "linear"] = "neural"
    frontend: dict[str, Any] = field(default_factory=lambda: {"name": "whisper", "layer": "all"})
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    classic: ClassicConfig = field(default_factory=ClassicConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain values."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check every section by building its objects; raise ConfigError on a bad value."""
        from .losses import LossConfig
        from .models import ModelConfig

        if self.method not in ("neural", "logreg", "linear"):
            raise ConfigError(f"method must be neural, logreg or linear (got {self.method!r})")
        if self.data.normalization not in ("global", "speaker", "utterance", "none"):
            raise ConfigError(f"unknown data.normalization {self.data.normalization!r}")
        if self.augment.method not in ("eam", "mixup", "length", "none"):
            raise ConfigError(f"unknown augment.method {self.augment.method!r}")
        if "name" not in self.frontend:
            raise ConfigError("frontend.name is required")
        _build(ModelConfig, {"input_dim": 16, "num_classes": 2, **self.model}, "model")
        _build(LossConfig, self.loss, "loss")
        self.augment.mixer_config()
        if self.optim.epochs < 1 or self.optim.batch_size < 1 or self.optim.lr <= 0:
            raise ConfigError("optim.epochs, optim.batch_size and optim.lr must be positive")
        if not 0 <= self.optim.average_from <= self.optim.epochs:
            raise ConfigError(f"optim.average_from must be in [0, optim.epochs = "
                              f"{self.optim.epochs}], got {self.optim.average_from}")
        if self.optim.ensemble < 1:
            raise ConfigError(f"optim.ensemble must be >= 1, got {self.optim.ensemble}")
        if self.optim.ensemble > 1 and str(self.frontend.get("finetune", "none")) != "none":
            raise ConfigError("optim.ensemble > 1 is not supported with a fine-tuned frontend")
        if self.classic.fuse and (self.method != "neural" or
                                  str(self.frontend.get("finetune", "none")) != "none"):
            raise ConfigError("classic.fuse needs method = \"neural\" and a frozen frontend")


#: Checks for config fields of a plain type (TOML and ``--set`` values arrive untyped).
_PLAIN_TYPES: dict[Any, Any] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


def _build(cls: Any, values: Mapping[str, Any], section: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown key '{section}.{unknown[0]}' (known: {', '.join(sorted(known))})"
        )
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        want: Any = hints.get(key)
        if want in _PLAIN_TYPES and not _PLAIN_TYPES[want](value):
            raise ConfigError(f"{section}.{key} must be {want.__name__}, got {value!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{section}: {exc}") from None


_SECTIONS = {"data": DataConfig, "augment": AugmentConfig, "optim": OptimConfig,
             "classic": ClassicConfig}


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from nested plain values; unknown keys are errors."""
    values = dict(values)
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"unknown recipe key '{unknown[0]}'")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key in _SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(f"recipe section '{key}' must be a table")
            kwargs[key] = _build(_SECTIONS[key], value, key)
        elif key in ("frontend", "model", "loss"):
            if not isinstance(value, Mapping):
                raise ConfigError(f"recipe section '{key}' must be a table")
            kwargs[key] = dict(value)
        else:
            kwargs[key] = value
    config = TrainConfig(**kwargs)
    config.validate()
    return config


def recipe_names() -> list[str]:
    """Names of the recipes shipped with emovox."""
    folder = resources.files("emovox") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys, TOML values; bare words are strings)."""
    out = copy.deepcopy(values)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (got '{item}')")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' is not a section")
        node[parts[-1]] = _parse_value(text.strip())
    return out


def load_recipe(name_or_path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Load a recipe by shipped name or TOML file path, then apply ``--set`` overrides.

    Raises:
        ConfigError: Unknown recipe, unreadable or invalid TOML, unknown keys or bad values.
    """
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read recipe {path}: {exc.strerror}") from None
        default_name = path.stem
    else:
        resource = resources.files("emovox") / "recipes" / f"{name_or_path}.toml"
        if not resource.is_file():
            raise ConfigError(
                f"unknown recipe '{name_or_path}' (shipped: {', '.join(recipe_names())})"
            )
        text = resource.read_text(encoding="utf-8")
        default_name = str(name_or_path)
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {name_or_path}: invalid TOML ({exc})") from None
    values.setdefault("name", default_name)
    return config_from_dict(apply_overrides(values, overrides))


# --- features ---------------------------------------------------------------------------------


def _frontend_options(config: TrainConfig) -> dict[str, Any]:
    """The frontend as extracted: layer weighting is learned here, so "weighted" caches all."""
    options = dict(config.frontend)
    if options.get("layer") == "weighted":
        options["layer"] = "all"
    return options


def build_frontend_for(config: TrainConfig) -> Any:
    """The frontend a run extracts with (see :func:`_frontend_options`)."""
    from .features import build_frontend

    return build_frontend(_frontend_options(config))


class FeatureBank:
    """Features of a set of utterances (and of speed-perturbed versions), plus waveforms.

    Features are held in the cache dtype (float16 by default) and returned as float32. Version
    ``1.0`` is the audio as it is; other speed factors are extracted on request
    (:meth:`add_speeds`) and cached like the clean ones.
    """

    def __init__(self, frontend: Any, utterances: Sequence[Utterance], cache_dir: Path | None,
                 cache_dtype: str, progress: bool) -> None:
        from .features import FeatureCache

        self.frontend = frontend
        self.cache_dtype = cache_dtype
        self.progress = progress
        self.cache = FeatureCache(cache_dir, frontend.config(), cache_dtype) if cache_dir else None
        self.index = {u.id: i for i, u in enumerate(utterances)}
        self.utterances = list(utterances)
        self.features: dict[tuple[str, float], np.ndarray] = {}
        self._waves: dict[tuple[str, float], np.ndarray] = {}
        self._extract(self.utterances, 1.0)

    def _extract(self, utterances: Sequence[Utterance], speed: float) -> None:
        todo = [u for u in utterances if (u.id, speed) not in self.features]
        variant = "" if speed == 1.0 else f"speed{speed:g}"
        t0 = time.time()
        for i, utt in enumerate(todo):
            feats = self.cache.get(utt, variant) if self.cache is not None else None
            if feats is None:
                feats = np.asarray(self.frontend(self.wave(utt, speed))).astype(self.cache_dtype)
                if self.cache is not None:
                    self.cache.put(utt, feats, variant)
                if speed != 1.0:  # perturbed waves are cheap to redo; do not hold them all
                    self._waves.pop((utt.id, speed), None)
            self.features[(utt.id, speed)] = np.asarray(feats, dtype=self.cache_dtype)
            if self.progress and ((i + 1) % 100 == 0 or i + 1 == len(todo)):
                label = self.frontend.name + ("" if speed == 1.0 else f" speed {speed:g}")
                _log(f"features {label}: {i + 1}/{len(todo)} ({time.time() - t0:.0f} s)")

    def add_speeds(self, utterances: Sequence[Utterance], speeds: Sequence[float]) -> None:
        """Extract (or read from the cache) speed-perturbed features of ``utterances``."""
        for speed in speeds:
            if speed != 1.0:
                self._extract(utterances, float(speed))

    def get(self, utt: Utterance, speed: float = 1.0) -> np.ndarray:
        """Features of one utterance (at a speed already extracted), float32."""
        return self.features[(utt.id, speed)].astype(np.float32)

    def raw(self, utt: Utterance, speed: float = 1.0) -> np.ndarray:
        """Features in their storage dtype (no copy)."""
        return self.features[(utt.id, speed)]

    def wave(self, utt: Utterance, speed: float = 1.0) -> np.ndarray:
        """The waveform at the frontend's rate, optionally speed-perturbed (memoised)."""
        from . import audio
        from .augment import speed_perturb

        key = (utt.id, speed)
        if key not in self._waves:
            clean = self._waves.get((utt.id, 1.0))
            if clean is None:
                clean = audio.load(utt.path, self.frontend.sample_rate, start=utt.start,
                                   duration=utt.duration)
                self._waves[(utt.id, 1.0)] = clean
            if speed != 1.0:
                self._waves[key] = speed_perturb(clean, speed)
        return self._waves[key]


@dataclass
class Normalizer:
    """Per-feature standardisation statistics, by group (``"*"`` = global).

    ``mean`` and ``std`` have the shape of one frame (``[D]`` or ``[L, 1, D]``).
    """

    mode: str
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @staticmethod
    def _moments(feats: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        total = None
        total_sq = None
        count = 0
        for f in feats:
            f64 = f.astype(np.float64)
            s = f64.sum(axis=-2, keepdims=True)
            sq = (f64 ** 2).sum(axis=-2, keepdims=True)
            total = s if total is None else total + s
            total_sq = sq if total_sq is None else total_sq + sq
            count += f.shape[-2]
        assert total is not None and total_sq is not None
        mean = total / count
        var = np.maximum(total_sq / count - mean ** 2, 0.0)
        return mean.astype(np.float32), np.sqrt(var + 1e-8).astype(np.float32)

    def fit(self, groups: Mapping[str, Sequence[np.ndarray]]) -> Normalizer:
        """Compute statistics for each group of feature matrices."""
        for name, feats in groups.items():
            if feats:
                self.stats[name] = self._moments(feats)
        return self

    def __call__(self, feats: np.ndarray, group: str = "*") -> np.ndarray:
        """Standardise one utterance's features."""
        if self.mode == "none":
            return feats
        if self.mode == "utterance":
            mean, std = self._moments([feats])
        else:
            if group not in self.stats:
                group = "*"
            mean, std = self.stats[group]
        return (feats - mean) / std


def _group_of(utt: Utterance, mode: str) -> str:
    return utt.speaker if mode == "speaker" else "*"


def fit_normalizer(mode: str, bank: FeatureBank, train: Sequence[Utterance],
                   others: Sequence[Utterance]) -> Normalizer:
    """Global stats from training data; per-speaker stats for every speaker in speaker mode."""
    norm = Normalizer(mode)
    if mode in ("none", "utterance"):
        return norm
    groups: dict[str, list[np.ndarray]] = {"*": [bank.raw(u) for u in train]}
    if mode == "speaker":
        for u in list(train) + list(others):
            groups.setdefault(u.speaker, []).append(bank.raw(u))
    return norm.fit(groups)


def pool_stats(feats: np.ndarray, layer: int | str = -1) -> np.ndarray:
    """Mean and std over time (functionals, with one frame, are returned as they are).

    For every-layer features ``[L, T, D]``, ``layer`` picks one hidden state, or ``"all"``
    concatenates the statistics of every layer.
    """
    if feats.ndim == 3:
        if layer == "all":
            return np.concatenate([pool_stats(f) for f in feats])
        feats = feats[int(layer)]
    if feats.shape[0] == 1:
        return feats[0]
    return np.concatenate([feats.mean(axis=0), feats.std(axis=0)])


# --- the trained model ------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """Everything needed to use a trained model (what a checkpoint holds).

    Attributes:
        config: The resolved training config.
        labels: Class names, in output order.
        sample_rate: Input rate of the frontend, Hz.
        frontend_config: The frontend's ``config()`` as extracted.
        normalizer: Feature standardisation statistics.
        network: The torch module (neural) or the scikit-learn pipeline (classic).
        scores: Measured scores (validation, cross-validation) recorded with it.
        info: Training data, protocol and history.
    """

    config: TrainConfig
    labels: list[str]
    sample_rate: int
    frontend_config: dict[str, Any]
    normalizer: Normalizer
    network: Any
    scores: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, features: Sequence[np.ndarray], groups: Sequence[str] | None = None,
                      batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``[N, C]`` for clean feature matrices (normalised here)."""
        groups = list(groups) if groups is not None else ["*"] * len(features)
        normed = [self.normalizer(f, g) for f, g in zip(features, groups, strict=True)]
        if self.info.get("finetuned"):
            raise EmovoxError("this model fine-tunes its frontend: use predict_proba_waves")
        if self.config.method != "neural":
            x = np.stack([pool_stats(f, self.config.classic.layer) for f in normed])
            return np.asarray(self.network.predict_proba(x), dtype=np.float64)
        return _predict_neural(self.network, normed, batch_size)[0]


def _predict_any(model: TrainedModel, bank: FeatureBank, utts: Sequence[Utterance],
                 groups: Sequence[str]) -> np.ndarray:
    """Probabilities for utterances from a bank, for feature- or waveform-input models."""
    if model.info.get("finetuned"):
        return predict_waves(model.network, [bank.wave(u) for u in utts])
    return model.predict_proba([bank.get(u) for u in utts], groups)


def _pad(feats: Sequence[np.ndarray]) -> tuple[Any, Any]:
    import torch

    t_max = max(f.shape[-2] for f in feats)
    shape = (len(feats), *feats[0].shape[:-2], t_max, feats[0].shape[-1])
    x = np.zeros(shape, dtype=np.float32)
    mask = np.zeros((len(feats), t_max), dtype=bool)
    for i, f in enumerate(feats):
        x[i, ..., : f.shape[-2], :] = f
        mask[i, : f.shape[-2]] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def _device_of(module: Any) -> Any:
    import torch

    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _length_batches(network: Any, items: Sequence[Any], sizes: Sequence[int], pad: Any,
                    batch_size: int) -> Any:
    """Run ``network`` over batches of similar length (inference mode, network's device).

    Yields ``(indices, ModelOutput)``; ``pad`` turns a list of items into the two input tensors.
    """
    import torch

    network.eval()
    device = _device_of(network)
    order = np.argsort(sizes)
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            idx = order[start : start + batch_size]
            first, second = pad([items[i] for i in idx])
            yield idx, network(first.to(device), second.to(device))


def _predict_neural(network: Any, feats: Sequence[np.ndarray], batch_size: int,
                    *, pad: Any = None, sizes: Sequence[int] | None = None,
                    frame_weights: bool = True) -> tuple[np.ndarray, list[np.ndarray]]:
    """Class probabilities ``[N, C]`` and each item's frame weights (empty when none).

    ``feats`` are frame arrays by default; ``pad``/``sizes`` let the same loop run over other
    inputs (waveforms for a fine-tuned network, see :func:`predict_waves`).
    """
    import torch

    sizes = [f.shape[-2] for f in feats] if sizes is None else sizes
    probs = np.zeros((len(feats), 0))
    weights = [np.zeros(0) for _ in feats]
    for idx, out in _length_batches(network, feats, sizes, pad or _pad, batch_size):
        p = torch.softmax(out.logits, dim=-1).cpu().numpy()
        if probs.shape[1] == 0:
            probs = np.zeros((len(feats), p.shape[1]))
        probs[idx] = p
        if frame_weights and out.frame_weights is not None:
            for k, i in enumerate(idx):
                weights[i] = out.frame_weights[k, : sizes[i]].cpu().numpy()
    return probs.astype(np.float64), weights


def build_network(config: TrainConfig, frame_shape: Sequence[int], num_classes: int) -> Any:
    """The neural model: a layer combination when frames are ``[L, D]``, then SERModel.

    ``optim.ensemble > 1`` or ``classic.fuse`` make it an :func:`EnsembleModel` of the seeded
    networks (and the fused linear model, last).

    Args:
        config: The run's config (``config.model`` holds the model options; its ``layer_mix``
            says how every-layer frames are combined: a learned weighting or concatenation).
        frame_shape: Shape of one frame: ``[D]``, or ``[L, D]`` for every hidden state.
        num_classes: Number of output classes.
    """
    members = [_build_one(member_config(config, k), frame_shape, num_classes)
               for k in range(config.optim.ensemble)]
    if config.classic.fuse:
        members.append(_linear_member_module(frame_shape, num_classes, config.classic.layer))
    return members[0] if len(members) == 1 else EnsembleModel(members)


def _build_one(config: TrainConfig, frame_shape: Sequence[int], num_classes: int) -> Any:
    from .models import ModelConfig, build_model

    layers = int(frame_shape[0]) if len(frame_shape) == 2 else None
    concat = layers is not None and config.model.get("layer_mix") == "concat"
    input_dim = int(frame_shape[-1]) * ((layers or 1) if concat else 1)
    model_config = _build(ModelConfig, {"input_dim": input_dim,
                                        "num_classes": num_classes, **config.model}, "model")
    model = build_model(model_config)
    stats = None
    if model_config.stats_branch:
        stats = _stats_branch_module(int(frame_shape[-1]) * (layers or 1), num_classes,
                                     model_config.stats_dropout)
    return LayerMixModel(layers, model, model_config.layer_mix, stats)


def member_config(config: TrainConfig, k: int) -> TrainConfig:
    """The one-network config of ensemble member ``k`` (0-based).

    Seed + k, no ensemble, no fused linear model.
    """
    optim = dataclasses.replace(config.optim, ensemble=1, seed=config.optim.seed + k)
    classic = dataclasses.replace(config.classic, fuse=False)
    return dataclasses.replace(config, optim=optim, classic=classic)


def EnsembleModel(members: Sequence[Any]) -> Any:  # noqa: N802 - a factory
    """Several networks with the same inputs; their class probabilities are averaged.

    The output's logits are the log of the mean probability (so a softmax gives the mean),
    the embedding is the members' embeddings side by side, frame weights the mean of those
    members that have them.
    """
    import torch
    from torch import nn

    from .models import ModelOutput

    class _Ensemble(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList(members)

        @property
        def model(self) -> Any:
            return self.members[0].model

        def forward(self, x: Any, mask: Any) -> Any:
            outs = [m(x, mask) for m in self.members]
            probs = torch.stack([torch.softmax(o.logits, dim=-1) for o in outs]).mean(dim=0)
            weights = [o.frame_weights for o in outs if o.frame_weights is not None]
            regression = [o.regression for o in outs]
            return ModelOutput(
                logits=torch.log(probs.clamp_min(1e-12)),
                embedding=torch.cat([o.embedding for o in outs], dim=-1),
                frame_weights=torch.stack(weights).mean(dim=0) if weights else None,
                regression=(torch.stack(regression).mean(dim=0)
                            if all(r is not None for r in regression) else None),
            )

    return _Ensemble()


def _masked_moments(x: Any, mask: Any) -> tuple[Any, Any]:
    """Mean and (biased) variance over the valid frames.

    ``x [B, L, T, D] or [B, T, D]``, ``mask [B, T]`` -> two ``[B, L, D]`` tensors (``L = 1``
    for 3-d input).
    """
    if x.dim() == 3:
        x = x.unsqueeze(1)
    m = mask[:, None, :, None].to(x.dtype)
    count = m.sum(dim=2).clamp_min(1.0)
    mean = (x * m).sum(dim=2) / count
    return mean, (((x - mean[:, :, None]) ** 2) * m).sum(dim=2) / count


def _stats_branch_module(num_features: int, num_classes: int, dropout: float) -> Any:
    import torch
    from torch import nn

    class StatsBranch(nn.Module):
        """Mean and std over the valid frames of every layer -> batch norm -> dropout -> linear.

        ``forward(x [B, L, T, D] or [B, T, D], mask [B, T]) -> logits [B, C]``.
        """

        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.BatchNorm1d(2 * num_features, affine=False)
            self.dropout = nn.Dropout(dropout)
            self.linear = nn.Linear(2 * num_features, num_classes)

        def forward(self, x: Any, mask: Any) -> Any:
            mean, var = _masked_moments(x, mask)
            pooled = torch.cat([mean.flatten(1), (var + 1e-8).sqrt().flatten(1)], dim=1)
            return self.linear(self.dropout(self.norm(pooled)))

    return StatsBranch()


def _linear_member_module(frame_shape: Sequence[int], num_classes: int,
                          layer: int | str) -> Any:
    import torch
    from torch import nn

    from .models import ModelOutput

    layers = int(frame_shape[0]) if len(frame_shape) == 2 else None
    num_features = 2 * int(frame_shape[-1]) * (layers if layers and layer == "all" else 1)

    class LinearMember(nn.Module):
        """A fitted :class:`LinearHead` on :func:`pool_stats` of the frames, as a network.

        ``forward(x [B, L, T, D] or [B, T, D], mask [B, T]) -> ModelOutput``: the pooled
        statistics are computed over the valid frames exactly as :func:`pool_stats` does.
        """

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(num_features))
            self.register_buffer("scale", torch.ones(num_features))
            self.register_buffer("coef", torch.zeros(num_classes, num_features))
            self.register_buffer("intercept", torch.zeros(num_classes))

        def set_head(self, head: LinearHead) -> None:
            for name, value in head.arrays().items():
                self.get_buffer(name).copy_(torch.as_tensor(value, dtype=torch.float32))

        def forward(self, x: Any, mask: Any) -> Any:
            if x.dim() == 4 and layer != "all":
                x = x[:, int(layer)]
            mean, var = _masked_moments(x, mask)
            pooled = torch.cat([mean, var.clamp_min(0.0).sqrt()], dim=-1).flatten(1)
            center, scale, coef, intercept = (self.get_buffer(n) for n in
                                            ("mean", "scale", "coef", "intercept"))
            logits = ((pooled - center) / scale) @ coef.T + intercept
            return ModelOutput(logits=logits, embedding=pooled.new_zeros(len(pooled), 0))

    return LinearMember()


def _layer_mix_module(num_layers: int | None, mode: str = "weighted") -> Any:
    import torch
    from torch import nn

    class LayerMix(nn.Module):
        """Softmax-weighted sum over hidden-state layers: ``[B, L, T, D] -> [B, T, D]``."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.logits = nn.Parameter(torch.zeros(n))

        def forward(self, x: Any) -> Any:
            w = torch.softmax(self.logits, dim=0)
            return (x * w[None, :, None, None]).sum(dim=1)

    class LayerConcat(nn.Module):
        """Every hidden-state layer side by side: ``[B, L, T, D] -> [B, T, L * D]``."""

        def forward(self, x: Any) -> Any:
            b, n, t, d = x.shape
            return x.permute(0, 2, 1, 3).reshape(b, t, n * d)

    if not num_layers:
        return None
    return LayerConcat() if mode == "concat" else LayerMix(num_layers)


def LayerMixModel(num_layers: int | None, model: Any,  # noqa: N802 - a factory
                  mode: str = "weighted", stats: Any = None) -> Any:
    """Wrap a frame model so it accepts ``[B, L, T, D]`` features (learned weights or concat).

    With ``stats`` (a statistics branch), its logits are added to the frame model's.
    """
    import dataclasses

    from torch import nn

    class _Wrapped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer_mix = _layer_mix_module(num_layers, mode)
            self.model = model
            self.stats = stats

        def forward(self, x: Any, mask: Any) -> Any:
            extra = self.stats(x, mask) if self.stats is not None else None
            if self.layer_mix is not None:
                x = self.layer_mix(x)
            out = self.model(x, mask)
            if extra is not None:
                out = dataclasses.replace(out, logits=out.logits + extra)
            return out

    return _Wrapped()


def WaveModel(encoder: Any, mean: np.ndarray, std: np.ndarray, network: Any) -> Any:  # noqa: N802
    """Waveform -> frontend module (fine-tuned) -> fixed standardisation -> frame model.

    Used when ``frontend.finetune`` is not ``"none"``: the encoder's trainable layers are part
    of the network and of its checkpoint. ``forward(wave[B, N], lengths[B]) -> ModelOutput``.
    """
    import torch
    from torch import nn

    class _WaveModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
            self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))
            self.network = network

        @property
        def model(self) -> Any:
            return self.network.model

        def forward(self, wave: Any, lengths: Any) -> Any:
            feats, mask = self.encoder(wave, lengths)
            return self.network((feats - self.mean) / self.std, mask)

    return _WaveModel()


def _is_finetuned(config: TrainConfig) -> bool:
    return str(config.frontend.get("finetune", "none")) != "none"


def _pad_waves(waves: Sequence[np.ndarray]) -> tuple[Any, Any]:
    import torch

    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return batch, lengths


def predict_waves(network: Any, waves: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """Class probabilities ``[N, C]`` of a fine-tuned (waveform-input) network."""
    return _predict_neural(network, waves, batch_size, pad=_pad_waves,
                           sizes=[len(w) for w in waves], frame_weights=False)[0]


# --- fit --------------------------------------------------------------------------------------


def _log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _onehot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.float32)
    for i, label in enumerate(labels):
        y[i, index[label]] = 1.0
    return y


def _ua(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    from .evaluate import unweighted_accuracy

    return 100.0 * unweighted_accuracy(np.asarray(y_true), np.asarray(y_pred))


def fit(
    config: TrainConfig,
    train: Sequence[Utterance],
    valid: Sequence[Utterance],
    *,
    labels: Sequence[str] | None = None,
    extra: Sequence[Utterance] = (),
    cache_dir: str | Path | None = None,
    frontend: Any = None,
    bank: FeatureBank | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
) -> TrainedModel:
    """Train one model.

    Args:
        config: The run's config.
        train: Training utterances.
        valid: Validation utterances (other speakers) for early stopping; may be empty.
        labels: Class order (default: the labels present in ``train``, canonical order).
        extra: Further utterances whose features should be ready afterwards (test speakers);
            with ``data.normalization = "speaker"`` their unlabelled statistics are used.
        cache_dir: Feature cache root (``None``: no cache).
        frontend: A built frontend (default: built from ``config.frontend``).
        bank: Pre-extracted features covering every utterance (shared across folds).
        run_dir: If set, ``last.pt`` is written there every epoch and a matching one is
            resumed from.
        progress: Per-epoch progress lines on stderr.

    Returns:
        The trained model; ``info["history"]`` holds the per-epoch log.
    """
    from .labels import ordered

    if not train:
        raise EmovoxError("no training utterances")
    if config.method == "neural" and config.data.train_on_valid:
        train, valid = list(train) + list(valid), []
    classes = list(labels) if labels else list(ordered(u.label for u in train if u.label))
    if config.optim.threads:
        import torch

        torch.set_num_threads(config.optim.threads)
    if frontend is None:
        from .features import build_frontend

        frontend = build_frontend(_frontend_options(config))
    if bank is None:
        everything = list(train) + list(valid) + list(extra)
        bank = FeatureBank(frontend, everything, Path(cache_dir) if cache_dir else None,
                           config.data.cache_dtype, progress)
    normalizer = fit_normalizer(config.data.normalization, bank, train, list(valid) + list(extra))
    mode = config.data.normalization
    base = dict(config=config, labels=classes, sample_rate=int(frontend.sample_rate),
                frontend_config=frontend.config(), normalizer=normalizer)
    trained = [c for c in classes if any(u.label == c for u in list(train) + list(valid))]
    if config.method != "neural":
        # No model selection: the validation speakers are training data here.
        pool = list(train) + list(valid)
        normalizer = fit_normalizer(config.data.normalization, bank, pool, list(extra))
        base["normalizer"] = normalizer
        model = _fit_classic(config, pool, bank, normalizer, classes, base)
    else:
        if config.classic.fuse and bank.get(train[0]).shape[-2] == 1:
            raise ConfigError("classic.fuse needs frame-level features (this frontend gives "
                              "functionals)")
        # The networks train without the fused linear model; it joins them afterwards.
        nets = dataclasses.replace(config, classic=dataclasses.replace(config.classic,
                                                                       fuse=False))
        base["config"] = nets
        fitter = _fit_ensemble if config.optim.ensemble > 1 else _fit_neural
        model = fitter(nets, train, valid, bank, normalizer, mode, classes, frontend, base,
                       Path(run_dir) if run_dir else None, progress)
        if config.classic.fuse:
            model = _fuse_linear(config, model, list(train) + list(valid), bank, normalizer,
                                 classes, progress)
    model.info["trained_classes"] = trained
    return model


def _fit_classic(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
                 normalizer: Normalizer, classes: list[str], base: dict[str, Any]) -> TrainedModel:
    network = _fit_linear(config, train, bank, normalizer, classes)
    return TrainedModel(network=network, info={"n_train": len(train), "n_valid": 0,
                                               "versions": len(config.classic.speeds(
                                                   config.augment))},
                        **base)


def _fit_linear(config: TrainConfig, train: Sequence[Utterance], bank: FeatureBank,
                normalizer: Normalizer, classes: list[str], method: str | None = None) -> Any:
    """Fit the classic model on pooled statistics of every speed version of ``train``.

    Returns a :class:`LinearHead` (logistic regression) or a scikit-learn pipeline (SVM).
    """
    from .errors import require

    require("sklearn", "sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    method = method or config.method
    mode = config.data.normalization
    speeds = config.classic.speeds(config.augment)
    bank.add_speeds(train, speeds)
    x = np.stack([pool_stats(normalizer(bank.get(u, v), _group_of(u, mode)), config.classic.layer)
                  for v in speeds for u in train])
    y = np.array([classes.index(str(u.label)) for u in train] * len(speeds))
    if method == "logreg":
        clf: Any = LogisticRegression(C=config.classic.C, max_iter=config.classic.max_iter)
    else:
        from sklearn.calibration import CalibratedClassifierCV

        clf = CalibratedClassifierCV(
            LinearSVC(C=config.classic.C, max_iter=config.classic.max_iter), cv=3)
    pipeline = make_pipeline(StandardScaler(), clf)
    pipeline.fit(x, y)
    if method != "logreg":
        return pipeline
    scaler, logreg = pipeline[0], pipeline[1]
    coef, intercept = logreg.coef_, logreg.intercept_
    if coef.shape[0] == 1:  # binary: sigmoid(z) = softmax([0, z])[1]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    # Classes absent from the training data get probability 0 (a very low intercept).
    full_coef = np.zeros((len(classes), coef.shape[1]))
    full_intercept = np.full(len(classes), -1e4)
    full_coef[logreg.classes_] = coef
    full_intercept[logreg.classes_] = intercept
    return LinearHead(scaler.mean_, scaler.scale_, full_coef, full_intercept)


def _fuse_linear(config: TrainConfig, model: TrainedModel, train: Sequence[Utterance],
                 bank: FeatureBank, normalizer: Normalizer, classes: list[str],
                 progress: bool) -> TrainedModel:
    """Add the fitted logistic regression to a trained network as one more member."""
    head = _fit_linear(config, train, bank, normalizer, classes, method="logreg")
    shape = model.info["frame_shape"]
    linear = _linear_member_module(shape, len(classes), config.classic.layer)
    linear.set_head(head)
    nets = list(model.network.members) if config.optim.ensemble > 1 else [model.network]
    network = EnsembleModel([*nets, linear])
    network.eval()
    if progress:
        _log(f"fused a logistic regression on pooled statistics ({head.coef.shape[1]} "
             f"features) as member {len(nets) + 1}")
    info = {**model.info, "fused_linear": {"n_train": len(train),
                                           "versions": len(config.classic.speeds(
                                               config.augment))}}
    return dataclasses.replace(model, config=config, network=network, info=info)


class LinearHead:
    """A fitted multinomial logistic regression as plain arrays (no scikit-learn needed).

    ``predict_proba(x) = softmax(((x - mean) / scale) @ coef.T + intercept)``. Stored in
    checkpoints as arrays, so loading one never unpickles library objects.
    """

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                 intercept: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters, for a checkpoint."""
        return {"mean": self.mean, "scale": self.scale, "coef": self.coef,
                "intercept": self.intercept}

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, C]`` for pooled features ``[N, F]``."""
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T
        z = z + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def _fit_neural(config: TrainConfig, train: Sequence[Utterance], valid: Sequence[Utterance],
                bank: FeatureBank, normalizer: Normalizer, mode: str, classes: list[str],
                frontend: Any, base: dict[str, Any], run_dir: Path | None,
                progress: bool) -> TrainedModel:
    import torch

    from .augment import apply_batch_mixing
    from .losses import LossConfig, MLLLoss

    opt_cfg = config.optim
    torch.manual_seed(opt_cfg.seed)
    rng = np.random.default_rng(opt_cfg.seed)
    example = bank.get(train[0])
    frame_shape = [*example.shape[:-2], example.shape[-1]]
    network = build_network(config, frame_shape, len(classes))
    finetune = _is_finetuned(config)
    if finetune:
        if mode != "global":
            raise ConfigError("fine-tuning the frontend needs data.normalization = \"global\"")
        mean, std = normalizer.stats["*"]
        network = WaveModel(frontend.torch_module(), mean, std, network)
    loss_config = _build(LossConfig, config.loss, "loss")
    loss_fn = MLLLoss(loss_config, len(classes), network.model.config.embedding_dim)
    device = torch.device(opt_cfg.device)
    network.to(device)
    loss_fn.to(device)
    encoder_params = (
        [p for p in network.encoder.parameters() if p.requires_grad] if finetune else []
    )
    encoder_ids = {id(p) for p in encoder_params}
    groups: list[dict[str, Any]] = [{"params": [p for p in network.parameters()
                          if p.requires_grad and id(p) not in encoder_ids]}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": opt_cfg.encoder_lr or opt_cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)
    center_params = loss_fn.center_parameters()
    center_opt = torch.optim.SGD(center_params, lr=loss_config.center_lr) if center_params else None
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=opt_cfg.lr_decay)
    targets = _onehot([str(u.label) for u in train], classes)
    mixer = config.augment.mixer_config()
    speeds = [1.0, *config.augment.speed_factors]
    if not finetune:
        bank.add_speeds(train, speeds)
    encoder = None
    if config.augment.method != "none" and not finetune:
        if not hasattr(frontend, "torch_module"):
            raise ConfigError(f"augment.method={config.augment.method} needs a frontend that "
                              f"runs on waveforms during training ('{frontend.name}' does not)")
        encoder = frontend.torch_module().to(device)
        encoder.eval()
    max_frames = max(1, int(config.data.max_train_seconds / max(frontend.frame_seconds, 1e-3)))
    max_samples = int(config.data.max_train_seconds * frontend.sample_rate)
    valid_feats = [] if finetune else [normalizer(bank.get(u), _group_of(u, mode)) for u in valid]
    valid_true = [classes.index(str(u.label)) for u in valid]

    def valid_ua() -> float:
        probs = (predict_waves(network, [bank.wave(u) for u in valid]) if finetune
                 else _predict_neural(network, valid_feats, 64)[0])
        return round(_ua(valid_true, probs.argmax(axis=1)), 2)

    state: dict[str, Any] = {"epoch": 0, "best_ua": -1.0, "best_epoch": 0, "best_state": None,
                             "history": [], "bad_epochs": 0, "avg_state": None, "n_avg": 0}
    averaging = opt_cfg.average_from > 0
    resume_path = run_dir / "last.pt" if run_dir else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    if resume_path is not None and resume_path.exists():
        saved = torch.load(resume_path, weights_only=False)
        if _same_config(saved.get("config"), config) and saved.get("labels") == classes:
            network.load_state_dict(saved["network"])
            loss_fn.load_state_dict(saved["loss"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if center_opt is not None and saved.get("center_opt"):
                center_opt.load_state_dict(saved["center_opt"])
            rng.bit_generator.state = saved["rng"]
            torch.set_rng_state(saved["torch_rng"])
            state = {"avg_state": None, "n_avg": 0, **saved["state"]}
            if progress:
                _log(f"resumed from {resume_path} after epoch {state['epoch']}")

    n = len(train)
    while state["epoch"] < opt_cfg.epochs:
        epoch = state["epoch"] + 1
        t0 = time.time()
        network.train()
        loss_fn.train()
        order = rng.permutation(n)
        totals: dict[str, float] = {}
        batches = 0
        for start in range(0, n, opt_cfg.batch_size):
            idx = order[start : start + opt_cfg.batch_size]
            utts = [train[i] for i in idx]
            y = targets[idx]
            version = [speeds[int(k)] for k in rng.integers(0, len(speeds), len(utts))] \
                if len(speeds) > 1 else [1.0] * len(utts)
            if finetune:  # the encoder trains too: every batch goes through it as waveforms
                waves = [bank.wave(u, v) for u, v in zip(utts, version, strict=True)]
                if config.augment.method != "none" and len(utts) > 1:
                    waves, y, _ = apply_batch_mixing(waves, y, rng, config.augment.method, mixer)
                first, second = _pad_waves([_crop_wave(w, max_samples, rng) for w in waves])
            else:  # cached clean features; only the mixed utterances are encoded again
                feats = [bank.get(u, v) for u, v in zip(utts, version, strict=True)]
                if encoder is not None and len(utts) > 1:
                    waves = [bank.wave(u, v) for u, v in zip(utts, version, strict=True)]
                    mixed, y, infos = apply_batch_mixing(waves, y, rng, config.augment.method,
                                                         mixer)
                    todo = [k for k, info in enumerate(infos) if info.get("applied")]
                    if todo:
                        encoded = _encode(encoder, [mixed[k] for k in todo], feats[0].ndim)
                        for k, f in zip(todo, encoded, strict=True):
                            feats[k] = f
                feats = [_crop(normalizer(f, _group_of(u, mode)), max_frames, rng)
                         for f, u in zip(feats, utts, strict=True)]
                first, second = _pad(feats)
            out = network(first.to(device), second.to(device))
            loss, logs = loss_fn(out, _tensor(y, device))
            _step(network, loss, optimizer, center_opt, opt_cfg.grad_clip)
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + float(value)
            batches += 1
        scheduler.step()
        record = {"epoch": epoch, "seconds": round(time.time() - t0, 1),
                  "lr": optimizer.param_groups[0]["lr"]}
        record.update({k: round(v / max(batches, 1), 4) for k, v in totals.items()})
        if valid:
            record["valid_ua"] = valid_ua()
            better = record["valid_ua"] > state["best_ua"]
        else:
            better = True
        if better:
            state["best_ua"] = record.get("valid_ua", 0.0)
            state["best_epoch"] = epoch
            state["best_state"] = copy.deepcopy(network.state_dict())
            state["bad_epochs"] = 0
        else:
            state["bad_epochs"] += 1
        if averaging and epoch >= opt_cfg.average_from:
            state["avg_state"] = _running_mean(state["avg_state"], network.state_dict(),
                                               state["n_avg"])
            state["n_avg"] += 1
        state["history"].append(record)
        state["epoch"] = epoch
        if progress:
            _log("epoch {epoch:>3}  loss {total:.4f}  valid UA {ua}  ({sec} s)".format(
                epoch=epoch, total=record.get("total", math.nan),
                ua=record.get("valid_ua", "-"), sec=record["seconds"]))
        if resume_path is not None:
            _save_atomic(torch, resume_path, {
                "config": config.to_dict(), "labels": classes, "network": network.state_dict(),
                "loss": loss_fn.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "center_opt": center_opt.state_dict() if center_opt is not None else None,
                "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "state": state,
            })
        if opt_cfg.patience and not averaging and state["bad_epochs"] >= opt_cfg.patience:
            if progress:
                _log(f"early stop: no better validation UA for {opt_cfg.patience} epochs")
            break
    info: dict[str, Any] = {}
    if state["avg_state"] is not None:
        network.load_state_dict(state["avg_state"])
        network.eval()
        info["averaged_epochs"] = [opt_cfg.average_from, state["epoch"]]
        if valid:
            state["best_ua"] = valid_ua()
        state["best_epoch"] = state["epoch"]
        if progress:
            _log(f"weights averaged over epochs {opt_cfg.average_from}-{state['epoch']}: "
                 f"valid UA {state['best_ua'] if valid else '-'}")
    elif state["best_state"] is not None:
        network.load_state_dict(state["best_state"])
    network.eval()
    info.update({"n_train": len(train), "n_valid": len(valid), "best_epoch": state["best_epoch"],
                 "history": state["history"], "frame_shape": frame_shape, "finetuned": finetune})
    return TrainedModel(network=network, info=info,
                        scores={"valid_ua": state["best_ua"]} if valid else {}, **base)


def _fit_ensemble(config: TrainConfig, train: Sequence[Utterance], valid: Sequence[Utterance],
                  bank: FeatureBank, normalizer: Normalizer, mode: str, classes: list[str],
                  frontend: Any, base: dict[str, Any], run_dir: Path | None,
                  progress: bool) -> TrainedModel:
    """Train ``optim.ensemble`` members one after another (each resumable) and combine them."""
    members = []
    n = config.optim.ensemble
    for k in range(n):
        cfg = member_config(config, k)
        if progress:
            _log(f"ensemble member {k + 1}/{n} (seed {cfg.optim.seed})")
        member_dir = None if run_dir is None else (run_dir if k == 0 else
                                                    run_dir / f"member_{k + 1}")
        members.append(_fit_neural(cfg, train, valid, bank, normalizer, mode, classes,
                                   frontend, {**base, "config": cfg}, member_dir, progress))
    network = EnsembleModel([m.network for m in members])
    network.eval()
    info: dict[str, Any] = {
        "n_train": len(train), "n_valid": len(valid),
        "best_epoch": [m.info["best_epoch"] for m in members],
        "frame_shape": members[0].info["frame_shape"], "finetuned": False,
        "members": [{"seed": member_config(config, k).optim.seed,
                     **{key: m.info.get(key) for key in ("best_epoch", "averaged_epochs",
                                                         "history")},
                     **m.scores} for k, m in enumerate(members)],
    }
    scores: dict[str, Any] = {}
    if valid:
        feats = [normalizer(bank.get(u), _group_of(u, mode)) for u in valid]
        probs = _predict_neural(network, feats, 64)[0]
        scores["valid_ua"] = round(_ua([classes.index(str(u.label)) for u in valid],
                                       probs.argmax(axis=1)), 2)
        if progress:
            _log(f"ensemble of {n}: valid UA {scores['valid_ua']}")
    return TrainedModel(network=network, info=info, scores=scores, **base)


def _running_mean(avg: dict[str, Any] | None, current: dict[str, Any], n: int) -> dict[str, Any]:
    """Fold one more state dict into a running mean of ``n`` earlier ones (floats only)."""
    if avg is None:
        return {k: v.detach().clone() for k, v in current.items()}
    for key, value in current.items():
        if value.is_floating_point():
            avg[key] += (value.detach() - avg[key]) / (n + 1)
        else:
            avg[key] = value.detach().clone()
    return avg


def _same_config(saved: Any, config: TrainConfig) -> bool:
    """Whether a saved config resolves to ``config`` (keys added since take their defaults)."""
    if not isinstance(saved, dict):
        return False
    try:
        return config_from_dict(saved).to_dict() == config.to_dict()
    except (ConfigError, TypeError):
        return False


def _tensor(y: Any, device: Any) -> Any:
    import torch

    return torch.from_numpy(np.asarray(y, dtype=np.float32)).to(device)


def _step(network: Any, loss: Any, optimizer: Any, center_opt: Any, grad_clip: float) -> None:
    import torch

    optimizer.zero_grad()
    if center_opt is not None:
        center_opt.zero_grad()
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(
            [p for p in network.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    if center_opt is not None:
        center_opt.step()


def _crop_wave(wave: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    if len(wave) <= max_samples:
        return wave
    start = int(rng.integers(0, len(wave) - max_samples + 1))
    return wave[start : start + max_samples]


def _crop(feats: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    t = feats.shape[-2]
    if t <= max_frames:
        return feats
    start = int(rng.integers(0, t - max_frames + 1))
    return feats[..., start : start + max_frames, :]


def _encode(encoder: Any, waves: Sequence[np.ndarray], ndim: int) -> list[np.ndarray]:
    """Run the frontend's torch module on waveforms; return per-utterance valid frames."""
    import torch

    batch, lengths = _pad_waves(waves)
    device = _device_of(encoder)
    with torch.inference_mode():
        feats, mask = encoder(batch.to(device), lengths.to(device))
    feats, mask = feats.cpu(), mask.cpu()
    out = []
    for i in range(len(waves)):
        t = int(mask[i].sum())
        f = feats[i, ..., :t, :].numpy()
        if f.ndim != ndim:
            raise EmovoxError(f"online features have {f.ndim} axes, cached ones {ndim}")
        out.append(f.astype(np.float32))
    return out


def _save_atomic(torch: Any, path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(dict(payload), tmp)
    tmp.replace(path)


# --- checkpoints ------------------------------------------------------------------------------


def save_checkpoint(model: TrainedModel, path: str | Path) -> None:
    """Write a self-contained checkpoint (atomically).

    It holds the format version, the emovox version, the resolved config, labels, sample rate,
    frontend config, normalisation statistics, the network's weights (or the scikit-learn
    pipeline), scores and training info.
    """
    import torch

    payload = {
        "format": CHECKPOINT_FORMAT,
        "emovox_version": __version__,
        "config": model.config.to_dict(),
        "labels": model.labels,
        "sample_rate": model.sample_rate,
        "frontend": model.frontend_config,
        "normalizer": {"mode": model.normalizer.mode,
                       "stats": {k: (m, s) for k, (m, s) in model.normalizer.stats.items()
                                 if k == "*"}},
        "scores": model.scores,
        "info": model.info,
    }
    if model.config.method == "neural":
        payload["network"] = model.network.state_dict()
    else:
        if isinstance(model.network, LinearHead):
            payload["linear"] = model.network.arrays()
        else:
            payload["sklearn"] = model.network
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_atomic(torch, path, payload)


def load_checkpoint(path: str | Path) -> TrainedModel:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        EmovoxError: Missing file, not an emovox checkpoint, or a newer format.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise EmovoxError(f"{path}: checkpoint not found")
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
        shape = payload["info"]["frame_shape"]
        network = build_network(config, shape, len(payload["labels"]))
        if payload["info"].get("finetuned"):
            stats = norm.stats["*"]
            network = WaveModel(build_frontend_for(config).torch_module(), stats[0], stats[1],
                                network)
        network.load_state_dict(payload["network"])
        network.eval()
    else:
        network = (LinearHead(**payload["linear"]) if "linear" in payload
                   else payload["sklearn"])
    return TrainedModel(config=config, labels=list(payload["labels"]),
                        sample_rate=int(payload["sample_rate"]),
                        frontend_config=dict(payload["frontend"]), normalizer=norm,
                        network=network, scores=dict(payload.get("scores", {})),
                        info=dict(payload.get("info", {})))
