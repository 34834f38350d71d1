"""Recipes: the typed configuration of a training run, loaded from TOML with ``--set`` overrides.

A run is described by :class:`TrainConfig` (sections ``frontend``, ``data``, ``augment``,
``model``, ``loss``, ``optim``, ``classic``), loaded from a small TOML recipe
(:func:`load_recipe`: a shipped name or a file) and ``--set key=value`` overrides
(:func:`apply_overrides`). Unknown keys and values of the wrong type are errors. The resolved
config is saved beside every run and inside every checkpoint (:func:`config_from_dict` reads it
back).

Feature normalisation (``data.normalization``): ``"global"`` standardises each feature with
training-set statistics (per utterance, nothing from the test set: the default);
``"speaker"`` uses each speaker's own statistics, computed over that speaker's unlabelled
recordings, *including test speakers* (transductive: reported as such in results);
``"utterance"`` uses each utterance's own statistics over time; ``"none"`` leaves them.

Example:
    >>> config = load_recipe("mll", ["optim.epochs=5"])
    >>> config.optim.epochs, config.model["pooling"], config.augment.method
    (5, 'flam', 'eam')
    >>> load_recipe("mll", ["optim.epochs=five"])
    Traceback (most recent call last):
    ...
    emovox.errors.ConfigError: optim.epochs must be int, got 'five'
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "POOLING_NAMES",
    "TRAINING_CONDITIONS",
    "AugmentConfig",
    "EAMConfig",
    "LengthMixConfig",
    "LossConfig",
    "MixupConfig",
    "ModelConfig",
    "ClassicConfig",
    "DataConfig",
    "OptimConfig",
    "TrainConfig",
    "apply_overrides",
    "build_section",
    "config_from_dict",
    "frontend_options",
    "is_finetuned",
    "load_recipe",
    "member_config",
    "recipe_names",
]



# --- the sections built by the stages themselves (checked here, without importing them) -------

#: Families of recording conditions the training augmentation can draw from
#: (``augment.conditions``; built by :func:`emovox.conditions.random_condition`).
TRAINING_CONDITIONS = ("white", "pink", "babble", "reverb", "telephone", "codec", "gain", "clip")

#: Pooling heads :class:`ModelConfig` accepts (the keys of :data:`emovox.models.POOLINGS`).
POOLING_NAMES = ("flam", "mean", "stats", "max", "attention", "attstats")
PoolingName = Literal["flam", "mean", "stats", "max", "attention", "attstats"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`SERModel`.

    Attributes:
        input_dim: Frame feature size ``D`` from the frontend (e.g. 384 for Whisper tiny).
        num_classes: Number of emotion classes ``C``.
        pooling: Pooling head, a key of :data:`emovox.models.POOLINGS` (paper: ``"flam"``).
        num_heads: FLAM attention heads (paper: 16).
        hidden_dim: If set, frames are first projected to this size by a linear layer
            (then dropout); ``None`` keeps ``input_dim``.
        embedding_dim: Size of the utterance embedding the center loss acts on (paper: 64).
        mlp_dim: Hidden size of the MLP from the pooled vector to the embedding (256, a choice).
        projection_dim: Output size of the supervised-contrastive projection head (128, the
            common choice of Khosla et al., not the paper's number); 0 disables the head.
        dropout: Dropout rate in FLAM, after the input projection and in the MLP (0.1, a choice).
        context_broadcast: FLAM context broadcasting (details unknown in the paper; off).
        num_regression: Outputs of an optional regression head (e.g. 3 for valence, arousal,
            dominance); 0 disables it. Set by the trainer from ``loss.vad``.
        num_regions: Outputs of the spherical-region head (EmoSphere auxiliary); 0 disables
            it. Set by the trainer from ``loss.sphere``.
        frame_stride: Average non-overlapping groups of this many frames (masked) before the
            pooling, e.g. 2 turns Whisper's 20 ms frames into 40 ms ones: attention costs fall
            by 4x. Frame weights are returned at the input rate (each group's weight shared
            equally by its frames). 1 (default) keeps every frame.
        attention_dropout: Dropout on FLAM's attention weights (0: PyTorch's fused kernel).
        flam_pool: FLAM's pooling: ``"attention"`` (paper) or ``"attstats"`` (mean and std).
        layer_mix: How frames holding every encoder layer (``[L, D]`` each) become one frame
            vector before this model (applied by :class:`FrameNetwork`, see
            ``emovox.bundle.build_network``): ``"weighted"`` (a learned softmax weighting, the
            usual SUPERB-style choice) or ``"concat"`` (every layer side by side, ``L * D``;
            pair it with ``hidden_dim`` to project back down). Ignored for one-layer frames.
        stats_branch: Add a second path (:class:`StatsBranch`, applied by
            :class:`FrameNetwork`): the mean and standard deviation over the valid frames of
            every encoder layer, standardised (batch norm without affine terms), dropout, one
            linear layer; its logits are added to the head's. The frozen-feature logistic
            regression that beats the paper's head on small corpora, trained jointly with it
            (an addition to the paper; off).
        stats_dropout: Dropout on the statistics path's input (0.5, a choice).
    """

    input_dim: int
    num_classes: int
    pooling: PoolingName = "flam"
    num_heads: int = 16
    hidden_dim: int | None = None
    embedding_dim: int = 64
    mlp_dim: int = 256
    projection_dim: int = 128
    dropout: float = 0.1
    context_broadcast: bool = False
    num_regression: int = 0
    num_regions: int = 0
    frame_stride: int = 1
    attention_dropout: float = 0.0
    flam_pool: str = "attention"
    layer_mix: str = "weighted"
    stats_branch: bool = False
    stats_dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_NAMES:
            raise ConfigError(
                f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLING_NAMES)}"
            )
        if self.num_classes < 1 and self.num_regression < 1:
            raise ConfigError("ModelConfig.num_classes must be >= 1 (0 only for a model that "
                              "regresses valence/arousal/dominance alone)")
        for name in ("input_dim", "embedding_dim", "mlp_dim", "num_heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ConfigError(f"ModelConfig.hidden_dim must be >= 1 or None, got {self.hidden_dim}")
        if self.layer_mix not in ("weighted", "concat"):
            raise ConfigError(
                f"ModelConfig.layer_mix must be 'weighted' or 'concat', got {self.layer_mix!r}"
            )
        if self.frame_stride < 1:
            raise ConfigError(f"ModelConfig.frame_stride must be >= 1, got {self.frame_stride}")
        if self.projection_dim < 0 or self.num_regression < 0 or self.num_regions < 0:
            raise ConfigError("ModelConfig.projection_dim, num_regression and num_regions must "
                              "be >= 0")
        for name in ("dropout", "stats_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"ModelConfig.{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class LossConfig:
    """Weights and settings of the MLL objective. A weight of 0 disables (skips) that term.

    The paper gives none of the weights; these defaults are choices: the two classification
    terms at full weight, center loss at 0.01 (the upper end of the range Wen et al. found
    stable, since the term is in squared embedding units), supervised contrastive at 0.1 (an
    auxiliary term that should shape, not dominate, the embedding).

    Attributes:
        kl: Weight of KL(target || prediction).
        focal: Weight of the soft-target focal loss.
        center: Weight of the center loss on the embedding.
        supcon: Weight of the supervised contrastive loss on the projection.
        ce: Weight of the soft cross-entropy (not part of MLL; for baselines).
        focal_gamma: Focal exponent (2, standard; not given in the paper).
        focal_alpha: Optional per-class focal weights ``[C]``.
        supcon_temperature: SupCon temperature (0.07, standard; not given in the paper).
        center_lr: Learning rate of the centers' own optimizer (paper: 5e-3; read by the
            trainer).
        center_update: ``"gradient"``: the centers are trained through the weighted objective
            by their own SGD at ``center_lr`` (so the weight and the unit scaling scale their
            step too: 5e-3 x 0.01 = 5e-5 in effect); ``"direct"``: every training batch moves
            them by ``center_lr`` times the gradient of the unweighted center loss, so the rate
            is the stated one (the paper's 5e-3 read as an effective rate).
        scale_to_unit: Scale each term into [0, 1] before weighting, as the paper does (rule:
            see :class:`LossScaler`).
        scale_mode: ``"max"`` or ``"ema"``, see :class:`LossScaler` (the paper's rule is unknown).
        scale_momentum: EMA momentum for ``scale_mode="ema"``.
        vad: Weight of the valence/arousal/dominance regression (``1 - CCC``, mean over the
            dimensions the batch has; needs recordings with those values). 0: no VAD head.
        sphere: Weight of the EmoSphere auxiliary: the VAD point, centred on the middle of the
            scale, in spherical coordinates; its region (octant, times ``sphere_radius_bins``
            bands of the radius) classified by a second head. Needs ``vad > 0``.
        sphere_decay: The auxiliary's weight is ``sphere * sphere_decay ** (epoch - 1)``
            (EmoSphere-SER's weight decays during training; the schedule is a choice).
        sphere_radius_bins: Bands of the radius (emotion intensity), cut at the training
            points' quantiles; 1: octants only.
    """

    kl: float = 1.0
    focal: float = 1.0
    center: float = 0.01
    supcon: float = 0.1
    ce: float = 0.0
    focal_gamma: float = 2.0
    focal_alpha: tuple[float, ...] | None = None
    supcon_temperature: float = 0.07
    center_lr: float = 5e-3
    center_update: Literal["gradient", "direct"] = "gradient"
    scale_to_unit: bool = False
    scale_mode: Literal["max", "ema"] = "max"
    scale_momentum: float = 0.99
    vad: float = 0.0
    sphere: float = 0.0
    sphere_decay: float = 0.8
    sphere_radius_bins: int = 1

    def __post_init__(self) -> None:
        if self.sphere > 0 and self.vad <= 0:
            raise ConfigError("LossConfig.sphere (the spherical auxiliary) needs LossConfig.vad "
                              "> 0 (a VAD head)")
        if not 0.0 < self.sphere_decay <= 1.0:
            raise ConfigError(f"LossConfig.sphere_decay must be in (0, 1], got "
                              f"{self.sphere_decay}")
        if self.sphere_radius_bins < 1:
            raise ConfigError(f"LossConfig.sphere_radius_bins must be >= 1, got "
                              f"{self.sphere_radius_bins}")
        for name, value in self.weights().items():
            if value < 0:
                raise ConfigError(f"LossConfig.{name} weight must be >= 0, got {value}")
        if self.focal_gamma < 0:
            raise ConfigError(f"LossConfig.focal_gamma must be >= 0, got {self.focal_gamma}")
        if self.supcon_temperature <= 0:
            raise ConfigError(
                f"LossConfig.supcon_temperature must be > 0, got {self.supcon_temperature}"
            )
        if self.center_update not in ("gradient", "direct"):
            raise ConfigError(f"LossConfig.center_update must be 'gradient' or 'direct', got "
                              f"{self.center_update!r}")
        if self.scale_mode not in ("max", "ema"):
            raise ConfigError(
                f"LossConfig.scale_mode must be 'max' or 'ema', got {self.scale_mode!r}"
            )
        if not 0.0 <= self.scale_momentum < 1.0:
            raise ConfigError(
                f"LossConfig.scale_momentum must be in [0, 1), got {self.scale_momentum}"
            )

    def weights(self) -> dict[str, float]:
        """The term weights by loss name (keys of :data:`emovox.losses.LOSSES`)."""
        return {
            "kl": self.kl,
            "focal": self.focal,
            "center": self.center,
            "supcon": self.supcon,
            "ce": self.ce,
            "vad": self.vad,
            "sphere": self.sphere,
        }


LabelRule = Literal["energy", "length", "hard"]


@dataclass(frozen=True)
class EAMConfig:
    """Settings of energy-adaptive mixup.

    Attributes:
        p: Probability of mixing each utterance of a batch (used by
            :func:`apply_batch_mixing`). The paper does not give it; 0.5 is the value of the
            closest published baseline, a choice, not the paper's number.
        snr_db_min: Lowest target SNR of the training segment over the partner segment, in dB
            (paper: -5).
        snr_db_max: Highest target SNR, in dB (paper: 10).
        min_fraction: Shortest mix length as a fraction of the utterance length ``L_i``; the
            length is never below 1 sample. 0 gives the paper's range ``[1, L_i / 2]``.
        max_fraction: Longest mix length as a fraction of ``L_i`` (paper: 0.5). The length is
            also capped by the partner's length.
        eps: Segment power (mean square, in squared sample units) below which a segment counts
            as silent; silent segments are never scaled (no division by ~0), see
            :func:`energy_adaptive_mixup`.
        label_rule: How the soft label is mixed. ``"energy"``: the reconstructed paper rule
            ``lambda = (l / L_i) / (1 + 10^(r / 10))`` (the partner's share of the energy in the
            mixed segment times the mixed fraction of the utterance); ``"length"``:
            ``lambda = l / L_i`` (ignores the SNR, like CutMix); ``"hard"``: ``lambda = 0``
            (keep the training label). Only ``"energy"`` is the method; the others are ablations.
    """

    p: float = 0.5
    snr_db_min: float = -5.0
    snr_db_max: float = 10.0
    min_fraction: float = 0.0
    max_fraction: float = 0.5
    eps: float = 1e-8
    label_rule: LabelRule = "energy"

    def __post_init__(self) -> None:
        _check_probability("EAMConfig.p", self.p)
        if not self.snr_db_min <= self.snr_db_max:
            raise ConfigError(
                f"EAMConfig: snr_db_min ({self.snr_db_min}) must be <= snr_db_max "
                f"({self.snr_db_max})"
            )
        if not 0.0 <= self.min_fraction <= self.max_fraction <= 1.0:
            raise ConfigError(
                "EAMConfig: need 0 <= min_fraction <= max_fraction <= 1, got "
                f"min_fraction={self.min_fraction}, max_fraction={self.max_fraction}"
            )
        if not self.eps > 0.0:
            raise ConfigError(f"EAMConfig.eps must be > 0, got {self.eps}")
        if self.label_rule not in ("energy", "length", "hard"):
            raise ConfigError(
                f"EAMConfig.label_rule must be 'energy', 'length' or 'hard', got "
                f"{self.label_rule!r}"
            )


@dataclass(frozen=True)
class MixupConfig:
    """Settings of plain waveform mixup (baseline).

    Attributes:
        p: Probability of mixing each utterance of a batch. A choice (0.5, as for EAM, so the
            baselines see the same share of mixed samples), not a published number.
        alpha: Both parameters of the Beta distribution the mixing weight is drawn from
            (0.2 is the value of Zhang et al. for speech).
    """

    p: float = 0.5
    alpha: float = 0.2

    def __post_init__(self) -> None:
        _check_probability("MixupConfig.p", self.p)
        if not self.alpha > 0.0:
            raise ConfigError(f"MixupConfig.alpha must be > 0, got {self.alpha}")


@dataclass(frozen=True)
class LengthMixConfig:
    """Settings of length-adaptive mixup (baseline).

    Attributes:
        p: Probability of mixing each utterance of a batch. A choice (0.5, as for EAM), not a
            published number.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        _check_probability("LengthMixConfig.p", self.p)


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1], got {value}")


@dataclass
class DataConfig:
    """What the model sees.

    Attributes:
        classes: Class subset (a :data:`emovox.labels.SUBSETS` name or a list); ``None`` keeps
            every label the corpus has.
        targets: ``"label"``: each recording's one label; ``"distribution"``: its label
            distribution where the corpus gives one (raters' votes, a listening test; see
            :mod:`emovox.targets`), its label elsewhere.
        normalization: ``"global"``, ``"speaker"`` (transductive), ``"utterance"`` or ``"none"``.
        max_train_seconds: Training crops longer utterances to a random window of this length.
        cache_dtype: Storage dtype of cached features (``"float16"`` halves memory and disk).
        train_on_valid: Neural models train on the validation speakers too, for the whole
            schedule (no model selection, as in the paper's fixed 20 epochs; pair it with
            ``optim.average_from``). The classic models always do.
    """

    classes: Any = None
    targets: Literal["label", "distribution"] = "label"
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
        conditions: Recording-condition families the multi-condition copies draw from
            (:data:`TRAINING_CONDITIONS`; see :func:`emovox.conditions.random_condition` for
            the strength ranges). An addition to the paper.
        condition_copies: Corrupted copies of every training utterance (0: off); each copy
            gets its own family and strength, drawn from ``condition_seed``, the utterance and
            the copy's index, so it is the same in every fold and cached once. The classic
            trainers use every copy as a training example; the neural trainer draws among the
            versions like the speeds.
        condition_seed: Base seed of those draws (the robustness harness tests with other
            streams: its generators are keyed by condition name).
        speed_factors: Speed perturbation (:func:`emovox.augment.speed_perturb`): every training
            utterance also exists played at these speeds (features cached once); each epoch
            draws one version per utterance, uniformly over ``[1.0, *speed_factors]``. The
            classic trainers use every version. Empty: off (an addition to the paper).
        covada: CO-VADA (Tsai et al. 2025; :mod:`emovox.covada`): an early model is fitted on
            the clean training recordings; the share of them it learned most easily and
            confidently is taken as bias-aligned; those get voice-converted copies
            (:func:`emovox.voice.convert`: pitch and formants moved towards the other
            register, the emotion kept) that join the training data as versions ``"cv0"``...
            (used like the multi-condition copies). Needs no demographic labels; only training
            speakers are scored or converted. Needs the ``explain`` extra (Praat).
        covada_share: Share of the training recordings taken as bias-aligned, in (0, 1]
            (0.3, a choice: the paper's number is not known here).
        covada_per_class: Take the share within each class (the copies keep the class
            proportions, so the method does not also reweight the classes); false: of all
            recordings, whatever their class. A choice, on by default.
        covada_score: What ranks the recordings: ``"confidence"``, the early model's
            probability of the recording's own label; ``"speed"`` (``method = "neural"``
            only), that probability averaged over the early model's epochs (learned early and
            stayed learned); ``"random"``, the control: a draw from ``covada_seed`` and the
            recording's id alone (:func:`emovox.covada.random_scores`; a recording draws the
            same in every fold), so the same share (per class with ``covada_per_class``) is
            picked at random. The early model is still fitted: the check and the record use
            it, never the selection.
        covada_C: The classic trainers' early model: a logistic regression on the clean
            recordings' pooled statistics with this inverse regularisation (strong: 1e-4, a
            choice made so that on EmoDB's training speakers it is still learning, about 90 %
            of them right, probabilities spread out, where ``C = 0.1`` fits all of them).
        covada_epochs: The neural trainer's early model: the recipe's network trained this
            many epochs on the clean recordings (no mixing, speed or condition copies; 3, a
            choice).
        covada_copies: Converted copies per selected recording, each with its own draw of
            the factors (1).
        covada_seed: Seed of the factor draws; a copy depends on it, the recording and the
            copy's index only (and the speaker's register), so it is the same in every fold
            and cached once.
        covada_check: Keep a copy only if the early model still gives it the recording's own
            label ("still carries the emotion"); the record says how many were dropped. Off:
            every copy is kept (the agreement is still recorded).
    """

    method: Literal["eam", "mixup", "length", "none"] = "eam"
    p: float = 0.5
    snr_db_min: float = -5.0
    snr_db_max: float = 10.0
    max_fraction: float = 0.5
    label_rule: Literal["energy", "length", "hard"] = "energy"
    alpha: float = 0.2
    speed_factors: list[float] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    condition_copies: int = 0
    condition_seed: int = 1
    covada: bool = False
    covada_share: float = 0.3
    covada_per_class: bool = True
    covada_score: Literal["confidence", "speed", "random"] = "confidence"
    covada_C: float = 1e-4  # noqa: N815 - scikit-learn's name
    covada_epochs: int = 3
    covada_copies: int = 1
    covada_seed: int = 18
    covada_check: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.conditions, str) or not all(
                isinstance(c, str) for c in self.conditions):
            raise ConfigError(f"augment.conditions must be a list of names, got "
                              f"{self.conditions!r}")
        if isinstance(self.condition_copies, bool) or self.condition_copies < 0:
            raise ConfigError(f"augment.condition_copies must be >= 0, got "
                              f"{self.condition_copies}")
        if self.condition_copies and not self.conditions:
            raise ConfigError("augment.condition_copies needs augment.conditions (families "
                              "to draw from, e.g. [\"white\", \"babble\", \"reverb\"])")
        unknown = sorted(set(self.conditions) - set(TRAINING_CONDITIONS))
        if unknown:
            raise ConfigError(f"unknown augment.conditions {unknown[0]!r}; choose from "
                              f"{', '.join(TRAINING_CONDITIONS)}")
        if not 0.0 < self.covada_share <= 1.0:
            raise ConfigError(f"augment.covada_share must be in (0, 1], got {self.covada_share}")
        if self.covada_score not in ("confidence", "speed", "random"):
            raise ConfigError(f"augment.covada_score must be \"confidence\", \"speed\" or "
                              f"\"random\", got {self.covada_score!r}")
        if not 0.0 < self.covada_C < float("inf"):
            raise ConfigError(f"augment.covada_C must be > 0, got {self.covada_C}")
        for name in ("covada_epochs", "covada_copies"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 1:
                raise ConfigError(f"augment.{name} must be >= 1, got {value}")

    def mixer_config(self) -> Any:
        """The :mod:`emovox.augment` config object for ``method``."""
        if self.method == "eam":
            return EAMConfig(
                p=self.p, snr_db_min=self.snr_db_min, snr_db_max=self.snr_db_max,
                max_fraction=self.max_fraction, label_rule=self.label_rule,
            )
        if self.method == "mixup":
            return MixupConfig(p=self.p, alpha=self.alpha)
        if self.method == "length":
            return LengthMixConfig(p=self.p)
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
        ensemble_weighting: How members' probabilities combine: ``"mean"`` (equal weights) or
            ``"entropy"`` (per recording, each member weighted by ``exp(-H)``, its predictive
            entropy ``H`` in nats: a member unsure of this recording counts less; the
            uncertainty-aware ensembling of MATER, in a simple form).
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
    ensemble_weighting: str = "mean"


#: The frontend options that condition the signal (emovox.features.Conditioned): any of them
#: set wraps the frontend.
CONDITIONING_STEPS = ("level_db", "trim_db", "gate_db")


#: What ``classic.nuisance`` can remove (see :class:`ClassicConfig`).
NUISANCE_SOURCES = ("conditions", "speeds", "corpus")
#: Why a named source gives nothing to remove (checked before any work where the recipe
#: tells, at training time for ``corpus``).
NUISANCE_MISSING = {
    "conditions": "classic.nuisance names \"conditions\", but the recipe trains on no "
                  "multi-condition copies (augment.condition_copies = 0)",
    "speeds": "classic.nuisance names \"speeds\", but the logistic regression trains on no "
              "speed-perturbed versions (augment.speed_factors / classic.speed_factors)",
    "corpus": "classic.nuisance names \"corpus\", but the training data has one corpus (or "
              "no class that two corpora share): there is no corpus offset to remove",
}


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
        calibration_folds: Logistic regression only: fit a temperature (one scalar dividing
            the logits) by this many speaker folds *of the training data* (each fold's clean
            recordings scored by a model fitted on the other folds, the temperature that
            minimises their log loss); 0: off. Test speakers are never used.
        layer_weights: Logistic regression on every layer (``layer = "all"``) only: one weight
            per hidden state (input embedding first), multiplying that layer's standardised
            statistics before the fit. The L2 penalty then costs a layer ``1 / weight**2`` as
            much per unit of evidence, so a weight below 1 makes the model lean on that layer
            less (0 leaves it out). The weights are folded into the coefficients: prediction
            is unchanged. ``None``: every layer 1.
        class_weight: ``"balanced"``: every class weighs as much in the fit as any other,
            whatever its number of recordings (scikit-learn's rule), so the model does not
            learn the training corpus's class frequencies as a prior; ``None``: every
            recording weighs 1.
        prior: ``"uniform"``: after the fit, the log of each class's share of the training
            rows is subtracted from its intercept, so the model answers as if every class were
            equally likely instead of assuming the training corpus's class mix (the decision
            rule that maximises UA, mean recall); ``None``: the training mix stays in the
            intercepts. Not with ``class_weight = "balanced"``, which already evens the mix
            out in the fit.
        nuisance: Logistic regression only: what the head is made blind to, by nuisance
            attribute projection. Each source gives difference vectors in the standardised
            (layer-weighted) feature space: ``"conditions"``, each multi-condition copy minus
            its clean recording (noise, rooms, telephone, codecs: what the channel adds);
            ``"speeds"``, each speed-perturbed version minus its clean recording (pitch and
            formants); ``"corpus"``, per class, the difference of two training corpora's mean
            clean recordings (the corpora's own offsets: a cross-corpus alignment, needs two or
            more corpora). The ``nuisance_dims`` directions that hold most of their scatter
            are removed from the features before the fit and from the coefficients after it,
            so prediction costs nothing more and the head cannot read those directions.
        nuisance_dims: How many nuisance directions are removed (0: none).
    """

    C: float = 1.0  # noqa: N815 - scikit-learn's name
    max_iter: int = 3000
    layer: int | str = -1
    speed_factors: list[float] | None = None
    fuse: bool = False
    calibration_folds: int = 0
    layer_weights: list[float] | None = None
    class_weight: str | None = None
    prior: str | None = None
    nuisance: list[str] = field(default_factory=list)
    nuisance_dims: int = 0

    def __post_init__(self) -> None:
        sources = self.nuisance
        if (not isinstance(sources, list) or any(k not in NUISANCE_SOURCES for k in sources)
                or len(set(sources)) != len(sources)):
            raise ConfigError(f"classic.nuisance must list some of {', '.join(NUISANCE_SOURCES)} "
                              f"(each once), got {sources!r}")
        dims = self.nuisance_dims
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 0:
            raise ConfigError(f"classic.nuisance_dims must be an integer >= 0, got {dims!r}")
        if bool(dims) != bool(sources):
            raise ConfigError("classic.nuisance and classic.nuisance_dims go together: name the "
                              "sources and how many directions to remove (> 0)")
        if self.class_weight not in (None, "balanced"):
            raise ConfigError(f"classic.class_weight must be \"balanced\" or absent, got "
                              f"{self.class_weight!r}")
        if self.prior not in (None, "uniform"):
            raise ConfigError(f"classic.prior must be \"uniform\" or absent, got {self.prior!r}")
        if self.prior == "uniform" and self.class_weight == "balanced":
            raise ConfigError("classic.prior = \"uniform\" and classic.class_weight = "
                              "\"balanced\" both take the training class mix out: choose one")
        folds = self.calibration_folds
        if isinstance(folds, bool) or folds < 0 or folds == 1:
            raise ConfigError(f"classic.calibration_folds must be 0 (off) or >= 2, got {folds}")
        weights = self.layer_weights
        if weights is not None:
            if self.layer != "all":
                raise ConfigError("classic.layer_weights needs classic.layer = \"all\"")
            if (not isinstance(weights, list) or not weights
                    or any(isinstance(w, bool) or not isinstance(w, (int, float))
                           or not 0 <= w < float("inf") for w in weights)
                    or not any(w > 0 for w in weights)):
                raise ConfigError(f"classic.layer_weights must be a list of numbers >= 0, one "
                                  f"per hidden state, not all 0; got {weights!r}")

    def speeds(self, augment: AugmentConfig) -> list[float]:
        """Every speed the linear model trains on, ``1.0`` first."""
        extra = augment.speed_factors if self.speed_factors is None else self.speed_factors
        return [1.0, *extra]


@dataclass
class TextConfig:
    """Audio + text fusion trained with the acoustic model (:mod:`emovox.fusion`).

    Attributes:
        fusion: ``"none"`` (audio alone); ``"late"``: a text classifier on sentence
            embeddings of the transcripts and a rule and weight ``w`` that fuse its
            probabilities with the audio ones, all learned on the training speakers only;
            ``"embedding"``: the same, plus a joint head (a logistic regression on the
            acoustic vector the model classifies from, beside the sentence embedding) that
            gives the answer for a whole recording with a transcript (timeline windows use
            the late fusion).
        source: Where transcripts come from: ``"transcript"`` (what the corpus or manifest
            states), ``"asr"`` (speech recognition, cached; needs the ``text`` extra) or
            ``"auto"`` (the stated one, else ASR).
        rule: How the two probability vectors combine (:func:`emovox.fusion.combine`):
            ``"mean"``, ``"entropy"`` (shares scaled per recording by each branch's certainty),
            ``"product"`` (log-linear pooling), or ``"auto"``: the one with the lowest
            out-of-fold log loss on the training speakers (with ``weight`` fixed: ``"mean"``).
        weight: A fixed fusion weight in [0, 1]; ``None``: learned by ``folds`` speaker folds
            of the training data (the recipe is refitted once per fold).
        folds: Speaker folds of the training data for the learned weight (>= 2).
        C: Inverse regularisation of the text classifier (a logistic regression).
        words: With ``fusion = "embedding"`` and ``source = "asr"``: the joint head also reads
            MATER's word level: the model's frontend frames (unconditioned, last layer)
            averaged within each recognised word, and each word's sentence-encoder
            embedding, both averaged over the words (:func:`emovox.fusion.word_level`).
    """

    fusion: Literal["none", "late", "embedding"] = "none"
    source: Literal["auto", "transcript", "asr"] = "auto"
    rule: Literal["auto", "mean", "entropy", "product"] = "auto"
    weight: float | None = None
    folds: int = 4
    C: float = 1.0  # noqa: N815 - scikit-learn's name
    words: bool = False

    def __post_init__(self) -> None:
        if self.fusion not in ("none", "late", "embedding"):
            raise ConfigError(f"text.fusion must be none, late or embedding (got "
                              f"{self.fusion!r})")
        if self.source not in ("auto", "transcript", "asr"):
            raise ConfigError(f"text.source must be auto, transcript or asr (got "
                              f"{self.source!r})")
        if self.rule not in ("auto", "mean", "entropy", "product"):
            raise ConfigError(f"text.rule must be auto, mean, entropy or product (got "
                              f"{self.rule!r})")
        weight = self.weight
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)
                                   or not 0.0 <= weight <= 1.0):
            raise ConfigError(f"text.weight must be a number in [0, 1] (got {weight!r})")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError(f"text.folds must be an integer >= 2 (got {self.folds!r})")
        if not self.C > 0:
            raise ConfigError(f"text.C must be > 0 (got {self.C!r})")
        if self.words and (self.fusion != "embedding" or self.source != "asr"):
            raise ConfigError("text.words needs text.fusion = \"embedding\" and text.source = "
                              "\"asr\" (word times come from speech recognition)")


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
        text: :class:`TextConfig` (audio + text fusion; off by default).
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
    text: TextConfig = field(default_factory=TextConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain values."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check every section by building its objects; raise ConfigError on a bad value."""
        if self.method not in ("neural", "logreg", "linear"):
            raise ConfigError(f"method must be neural, logreg or linear (got {self.method!r})")
        if self.data.normalization not in ("global", "speaker", "utterance", "none"):
            raise ConfigError(f"unknown data.normalization {self.data.normalization!r}")
        if self.data.targets not in ("label", "distribution"):
            raise ConfigError(f"data.targets must be 'label' or 'distribution' (got "
                              f"{self.data.targets!r})")
        loss = build_section(LossConfig, self.loss, "loss")
        if loss.vad > 0 and self.method != "neural":
            raise ConfigError("loss.vad (valence/arousal/dominance) needs method = \"neural\"")
        if self.augment.method not in ("eam", "mixup", "length", "none"):
            raise ConfigError(f"unknown augment.method {self.augment.method!r}")
        if "name" not in self.frontend:
            raise ConfigError("frontend.name is required")
        build_section(ModelConfig, {"input_dim": 16, "num_classes": 2, **self.model}, "model")
        build_section(LossConfig, self.loss, "loss")
        self.augment.mixer_config()
        if self.optim.epochs < 1 or self.optim.batch_size < 1 or self.optim.lr <= 0:
            raise ConfigError("optim.epochs, optim.batch_size and optim.lr must be positive")
        if not 0 <= self.optim.average_from <= self.optim.epochs:
            raise ConfigError(f"optim.average_from must be in [0, optim.epochs = "
                              f"{self.optim.epochs}], got {self.optim.average_from}")
        if self.optim.ensemble_weighting not in ("mean", "entropy"):
            raise ConfigError(f"optim.ensemble_weighting must be 'mean' or 'entropy', got "
                              f"{self.optim.ensemble_weighting!r}")
        if self.optim.ensemble < 1:
            raise ConfigError(f"optim.ensemble must be >= 1, got {self.optim.ensemble}")
        if self.optim.ensemble > 1 and is_finetuned(self):
            raise ConfigError("optim.ensemble > 1 is not supported with a fine-tuned frontend")
        conditioned = any(self.frontend.get(k) is not None for k in CONDITIONING_STEPS)
        if conditioned and is_finetuned(self):
            raise ConfigError("frontend.level_db / trim_db / gate_db are not supported with a "
                              "fine-tuned frontend yet")
        nuisance = self.classic.nuisance
        if nuisance and (self.method != "logreg" and not self.classic.fuse):
            raise ConfigError("classic.nuisance works with the logistic regression only "
                              "(method = \"logreg\", or classic.fuse)")
        if "conditions" in nuisance and not self.augment.condition_copies:
            raise ConfigError(NUISANCE_MISSING["conditions"])
        if "speeds" in nuisance and len(self.classic.speeds(self.augment)) < 2:
            raise ConfigError(NUISANCE_MISSING["speeds"])
        if self.augment.condition_copies and is_finetuned(self):
            raise ConfigError("augment.condition_copies needs a frozen frontend (features are "
                              "extracted once per copy)")
        if self.augment.covada and is_finetuned(self):
            raise ConfigError("augment.covada needs a frozen frontend (features are extracted "
                              "once per converted copy)")
        if (self.augment.covada and self.augment.covada_score == "speed"
                and self.method != "neural"):
            raise ConfigError("augment.covada_score = \"speed\" needs method = \"neural\" (the "
                              "classic early model has no epochs)")
        if self.text.fusion != "none" and is_finetuned(self):
            raise ConfigError("text.fusion needs a frozen frontend (the weight is learned by "
                              "refitting on cached features)")
        if self.classic.fuse and (self.method != "neural" or is_finetuned(self)):
            raise ConfigError("classic.fuse needs method = \"neural\" and a frozen frontend")


#: Checks for config fields of a plain type (TOML and ``--set`` values arrive untyped).
_PLAIN_TYPES: dict[Any, Any] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


def build_section(cls: Any, values: Mapping[str, Any], section: str) -> Any:
    """Build one config dataclass from plain values; unknown keys and wrong types are errors."""
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
             "classic": ClassicConfig, "text": TextConfig}


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
            kwargs[key] = build_section(_SECTIONS[key], value, key)
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


def config_digest(config: Mapping[str, Any]) -> str:
    """A short fingerprint (16 hex digits) of a resolved config (``TrainConfig.to_dict()``).

    Two runs share it only if every setting is the same (a new setting, even at its default,
    changes it), so a results file that stores it can be matched to today's recipe.

    Example:
        >>> config_digest({"a": 1, "b": [2]}) == config_digest({"b": [2], "a": 1})
        True
    """
    text = json.dumps(json.loads(json.dumps(config)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def member_config(config: TrainConfig, k: int) -> TrainConfig:
    """The one-network config of ensemble member ``k`` (0-based): seed + k, no fusion."""
    optim = dataclasses.replace(config.optim, ensemble=1, seed=config.optim.seed + k)
    classic = dataclasses.replace(config.classic, fuse=False)
    return dataclasses.replace(config, optim=optim, classic=classic)


def is_finetuned(config: TrainConfig) -> bool:
    """Whether the run trains (part of) its frontend, so the model takes waveforms."""
    return str(config.frontend.get("finetune", "none")) != "none"


def frontend_options(config: TrainConfig) -> dict[str, Any]:
    """The frontend as extracted: a learned layer weighting needs every layer ("all") cached."""
    options = dict(config.frontend)
    if options.get("layer") == "weighted":
        options["layer"] = "all"
    return options
