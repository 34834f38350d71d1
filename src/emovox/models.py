"""Utterance-level emotion models on frame features: pooling heads, FLAM and the classifier.

One forward contract for every model (see ``DESIGN.md``)::

    output = model(x, mask)   # x: [B, T, D] float frames, mask: [B, T] bool, True = valid frame

returning a :class:`ModelOutput`. As in timm, :meth:`SERModel.features` (frames -> 64-d
embedding and frame weights) and :meth:`SERModel.head` (embedding -> logits) are separate steps.

Padding never changes a result: every pooling masks padded frames out (their values, even NaN,
are never read), and a row with no valid frame yields zeros rather than NaN.

Reference for FLAM: Wang et al., arXiv 2512.04551 (``METHOD.md`` section 1).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from emovox.config import POOLING_NAMES, ModelConfig
from emovox.errors import ConfigError
from emovox.layers import LayerWeighting, masked_moments

__all__ = [
    "AttentionPooling",
    "Ensemble",
    "FrameNetwork",
    "LinearMember",
    "StatsBranch",
    "WaveModel",
    "AttentiveStatisticsPooling",
    "FLAM",
    "MaxPooling",
    "MeanPooling",
    "ModelConfig",
    "ModelOutput",
    "POOLINGS",
    "SERModel",
    "build_model",
    "masked_softmax",
]



@dataclass(frozen=True)
class ModelOutput:
    """What every emovox model returns.

    Attributes:
        logits: Unnormalised class scores, shape ``[B, C]``.
        embedding: Utterance embedding (the center-loss space), shape ``[B, E]``.
        frame_weights: Attention weight of each frame, shape ``[B, T]``, summing to 1 over the
            valid frames of a row and 0 on padding (the emotion timeline); ``None`` for poolings
            without weights (mean, max).
        projection: L2-normalised projection of the embedding for the supervised contrastive
            loss, shape ``[B, P]``; ``None`` when the model has no projection head.
        regression: Dimensional outputs (e.g. valence, arousal, dominance), shape ``[B, K]``;
            ``None`` when the model has no regression head.
        regions: Logits of the spherical VAD regions (EmoSphere auxiliary), ``[B, R]``;
            ``None`` without that head.
    """

    logits: Tensor
    embedding: Tensor
    frame_weights: Tensor | None = None
    projection: Tensor | None = None
    regression: Tensor | None = None
    regions: Tensor | None = None


def _check_inputs(x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Validate ``x [B, T, D]`` and ``mask [B, T]``; zero padded frames; default mask all-valid."""
    if x.dim() != 3:
        raise ValueError(f"expected frames of shape [B, T, D], got {tuple(x.shape)}")
    if mask is None:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match frames {tuple(x.shape[:2])}"
        )
    mask = mask.to(torch.bool)
    # torch.where (not multiplication) so NaN/inf in padding cannot leak into the result.
    x = torch.where(mask.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
    return x, mask


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis restricted to valid positions.

    Padded positions get exactly 0. A row with no valid position gets all zeros (not NaN): its
    scores are filled with the most negative finite value instead of ``-inf``, so the softmax
    stays finite, and the result is multiplied by the mask.

    Args:
        scores: Scores, shape ``[B, T]``.
        mask: Bool, shape ``[B, T]``, True = valid.

    Returns:
        Weights, shape ``[B, T]``; each row sums to 1 (or 0 for an all-padded row).
    """
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1) * mask.to(scores.dtype)


class MeanPooling(nn.Module):
    """Average of the valid frames.

    Args:
        dim: Frame feature size ``D`` (the output size too).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pool frames.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(pooled [B, D], None)``; zeros for an all-padded row.
        """
        x, mask = _check_inputs(x, mask)
        return masked_moments(x, mask)[0], None


class StatsPooling(nn.Module):
    """Mean and standard deviation of the valid frames, concatenated (statistics pooling).

    The neural counterpart of the mean+std functionals the logistic-regression baselines use.

    Args:
        dim: Frame feature size ``D`` (the output is ``2 * D``).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = 2 * dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pool frames.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(pooled [B, 2D], None)``: mean, then the (biased) standard deviation.
        """
        x, mask = _check_inputs(x, mask)
        mean, var = masked_moments(x, mask)
        # exact 0 for constant features and all-padded rows, with a finite gradient there
        std = torch.where(var > 1e-12, var.clamp_min(1e-12).sqrt(), torch.zeros_like(var))
        return torch.cat([mean, std], dim=-1), None


class MaxPooling(nn.Module):
    """Element-wise maximum over the valid frames (a padded frame never wins).

    Args:
        dim: Frame feature size ``D`` (the output size too).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pool frames.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(pooled [B, D], None)``; zeros for an all-padded row.
        """
        x, mask = _check_inputs(x, mask)
        lowest = torch.finfo(x.dtype).min
        pooled = x.masked_fill(~mask.unsqueeze(-1), lowest).amax(dim=1)
        has_frame = mask.any(dim=1, keepdim=True)
        return torch.where(has_frame, pooled, torch.zeros_like(pooled)), None


class AttentionPooling(nn.Module):
    """Attention pooling: a learnable vector scores each frame; softmax over valid frames.

    ``score_t = w . x_t + b``, ``a = masked_softmax(score)``, ``pooled = sum_t a_t x_t``.
    ``w`` starts at N(0, 0.02^2), a choice (small, so training starts near mean pooling).

    Args:
        dim: Frame feature size ``D`` (the output size too).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = dim
        self.score = nn.Linear(dim, 1)
        nn.init.normal_(self.score.weight, std=0.02)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pool frames.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(pooled [B, D], weights [B, T])``; weights sum to 1 over valid frames, 0 on
            padding; an all-padded row gives zeros for both.
        """
        x, mask = _check_inputs(x, mask)
        weights = masked_softmax(self.score(x).squeeze(-1), mask)
        return torch.einsum("bt,btd->bd", weights, x), weights


class AttentiveStatisticsPooling(nn.Module):
    """Attention-weighted mean and standard deviation, concatenated (Okabe et al., 2018).

    Frame scores come from a one-hidden-layer scorer ``v . tanh(W x_t + b) + k``; with weights
    ``a``, ``mu = sum_t a_t x_t`` and ``sigma = sqrt(max(sum_t a_t x_t^2 - mu^2, 1e-6))``
    (the floor keeps the square root's gradient finite). Output ``[mu, sigma]``, size ``2 D``.

    Args:
        dim: Frame feature size ``D``.
        attention_dim: Hidden size of the scorer (128, a choice).
    """

    def __init__(self, dim: int, attention_dim: int = 128) -> None:
        super().__init__()
        self.out_dim = 2 * dim
        self.score = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Pool frames.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(pooled [B, 2 D], weights [B, T])``; an all-padded row gives zeros for both.
        """
        x, mask = _check_inputs(x, mask)
        weights = masked_softmax(self.score(x).squeeze(-1), mask)
        mean = torch.einsum("bt,btd->bd", weights, x)
        second = torch.einsum("bt,btd->bd", weights, x * x)
        std = (second - mean * mean).clamp(min=1e-6).sqrt()
        has_frame = mask.any(dim=1, keepdim=True)
        std = torch.where(has_frame, std, torch.zeros_like(std))
        return torch.cat([mean, std], dim=-1), weights


class FLAM(nn.Module):
    """Frame-level attention module: multi-head self-attention over frames, then attention pooling.

    ``h = LayerNorm(x + Dropout(MHSA(x, key_padding_mask)))`` (post-norm residual block, as the
    paper describes "self-attention with a residual connection and layer norm"), then
    :class:`AttentionPooling` over ``h``. The pooling weights are the frame weights (emotion
    timeline).

    Context broadcasting (an option; the paper gives no details): the masked mean frame is added
    to every valid frame *before* the self-attention, after Hyeon-Woo et al. (2022) who add the
    mean token at the input of the next attention layer. Placing it after the attention would be
    a no-op for the pooling weights (a constant shift of every frame leaves the softmax
    unchanged), so the input is the only placement that changes what is attended to.

    Args:
        dim: Frame feature size ``D``; must be divisible by ``num_heads``. A mismatch is an
            error rather than a silent projection, so the architecture stays what the config
            says; set ``ModelConfig.hidden_dim`` to a multiple of ``num_heads`` instead.
        num_heads: Attention heads (paper: 16).
        dropout: Dropout on the residual branch (0.1, a choice).
        context_broadcast: Add the mean valid frame to every frame before attention.
        attention_dropout: Dropout on the attention weights (0 by default, a choice: it keeps
            PyTorch's fused attention kernel, about twice as fast on CPU).
        pool: ``"attention"`` (the paper: weighted mean) or ``"attstats"`` (weighted mean and
            standard deviation, :class:`AttentiveStatisticsPooling`; an addition, since the
            spread of a frame feature over time carries emotion, too).

    Raises:
        ConfigError: If ``dim`` is not divisible by ``num_heads``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 16,
        dropout: float = 0.1,
        context_broadcast: bool = False,
        attention_dropout: float = 0.0,
        pool: str = "attention",
    ) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads != 0:
            raise ConfigError(
                f"FLAM: feature size {dim} is not divisible by num_heads={num_heads}; "
                f"set hidden_dim to a multiple of {num_heads} (e.g. {_round_up(dim, num_heads)}) "
                "or change num_heads"
            )
        self.context_broadcast = context_broadcast
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)
        if pool not in ("attention", "attstats"):
            raise ConfigError(f"FLAM pool must be 'attention' or 'attstats', got {pool!r}")
        self.pool: nn.Module = (
            AttentionPooling(dim) if pool == "attention" else AttentiveStatisticsPooling(dim)
        )
        self.out_dim = dim if pool == "attention" else 2 * dim

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Attend over frames and pool them.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(utterance [B, D], frame_weights [B, T])``; an all-padded row gives zeros.
        """
        x, mask = _check_inputs(x, mask)
        if self.context_broadcast:
            x = x + masked_moments(x, mask)[0].unsqueeze(1) * mask.unsqueeze(-1).to(x.dtype)
        # A row with no valid key would make the attention softmax NaN; let such rows attend to
        # their (zeroed) padding instead. Their output is masked out by the pooling anyway.
        has_frame = mask.any(dim=1, keepdim=True)
        allowed = (mask | ~has_frame)[:, None, None, :]  # [B, 1, 1, T]: keys a query may see
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, d // self.num_heads).unbind(dim=2)
        # Fused scaled dot-product attention (PyTorch picks the kernel): [B, H, T, D/H].
        attended = nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=allowed,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        attended = self.out(attended.transpose(1, 2).reshape(b, t, d))
        h = self.norm(x + self.dropout(attended))
        return self.pool(h, mask)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // max(multiple, 1)) * max(multiple, 1)


#: Pooling heads by name. Every class takes the frame size as first argument, exposes
#: ``out_dim`` and maps ``(x [B, T, D], mask [B, T]) -> (pooled [B, out_dim], weights | None)``.
POOLINGS: dict[str, type[nn.Module]] = {
    "flam": FLAM,
    "mean": MeanPooling,
    "stats": StatsPooling,
    "max": MaxPooling,
    "attention": AttentionPooling,
    "attstats": AttentiveStatisticsPooling,
}
assert tuple(POOLINGS) == POOLING_NAMES  # the config checks names without importing torch


class SERModel(nn.Module):
    """Frames -> [input projection] -> pooling -> MLP -> embedding -> classifier.

    Side heads on the embedding: a projection head for the supervised contrastive loss
    (``Linear -> ReLU -> Linear``, output L2-normalised) and an optional linear regression head.

    Args:
        config: The architecture.

    Raises:
        ConfigError: If FLAM is chosen and the frame size is not divisible by ``num_heads``.

    Example:
        >>> model = SERModel(ModelConfig(input_dim=32, num_classes=4))
        >>> out = model(torch.randn(2, 10, 32), torch.ones(2, 10, dtype=torch.bool))
        >>> tuple(out.logits.shape), tuple(out.embedding.shape), tuple(out.frame_weights.shape)
        ((2, 4), (2, 64), (2, 10))
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        frame_dim = config.hidden_dim or config.input_dim
        self.input_projection: nn.Module = (
            nn.Sequential(nn.Linear(config.input_dim, frame_dim), nn.Dropout(config.dropout))
            if config.hidden_dim is not None
            else nn.Identity()
        )
        self.pooling = _build_pooling(config, frame_dim)
        pooled_dim = _out_dim(self.pooling)
        self.embed = nn.Sequential(
            nn.Linear(pooled_dim, config.mlp_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.mlp_dim, config.embedding_dim),
            nn.GELU(),
        )
        with warnings.catch_warnings():  # no emotion classes (VAD alone): an empty layer
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.classifier = nn.Linear(config.embedding_dim, config.num_classes)
        self.projection: nn.Module | None = None
        if config.projection_dim > 0:
            self.projection = nn.Sequential(
                nn.Linear(config.embedding_dim, config.embedding_dim),
                nn.ReLU(),
                nn.Linear(config.embedding_dim, config.projection_dim),
            )
        self.regression: nn.Module | None = None
        if config.num_regression > 0:
            self.regression = nn.Linear(config.embedding_dim, config.num_regression)
        self.regions: nn.Module | None = None
        if config.num_regions > 0:
            self.regions = nn.Linear(config.embedding_dim, config.num_regions)

    def features(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Map frames to the utterance embedding.

        Args:
            x: Frames, shape ``[B, T, D]`` with ``D = config.input_dim``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            ``(embedding [B, E], frame_weights [B, T] or None)``.
        """
        x, mask = _check_inputs(x, mask)
        stride = self.config.frame_stride
        n_frames = x.shape[1]
        if stride > 1:
            x, mask_in = _stride_frames(x, mask, stride), mask
            mask = _stride_mask(mask, stride)
        pooled, weights = self.pooling(self.input_projection(x), mask)
        if stride > 1 and weights is not None:
            weights = weights.repeat_interleave(stride, dim=1)[:, :n_frames] * mask_in
            weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return self.embed(pooled), weights

    def head(self, embedding: Tensor) -> Tensor:
        """Map embeddings ``[B, E]`` to class logits ``[B, C]``."""
        return self.classifier(embedding)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Run the whole model.

        Args:
            x: Frames, shape ``[B, T, D]``.
            mask: Bool, shape ``[B, T]``, True = valid; all valid when omitted.

        Returns:
            A :class:`ModelOutput` with logits ``[B, C]``, embedding ``[B, E]``, frame weights
            ``[B, T]`` (attention poolings only), normalised projection ``[B, P]`` and
            regression ``[B, K]`` when those heads exist.
        """
        embedding, weights = self.features(x, mask)
        projection = None
        if self.projection is not None:
            projection = nn.functional.normalize(self.projection(embedding), dim=-1)
        regression = self.regression(embedding) if self.regression is not None else None
        return ModelOutput(
            logits=self.head(embedding),
            embedding=embedding,
            frame_weights=weights,
            projection=projection,
            regression=regression,
            regions=self.regions(embedding) if self.regions is not None else None,
        )


def _stride_mask(mask: Tensor, stride: int) -> Tensor:
    """A group of ``stride`` frames is valid when any of its frames is."""
    pad = (-mask.shape[1]) % stride
    m = nn.functional.pad(mask, (0, pad), value=False)
    return m.view(m.shape[0], -1, stride).any(dim=2)


def _stride_frames(x: Tensor, mask: Tensor, stride: int) -> Tensor:
    """Masked mean over non-overlapping groups of ``stride`` frames: ``[B, ceil(T/s), D]``."""
    pad = (-x.shape[1]) % stride
    m = nn.functional.pad(mask, (0, pad), value=False).to(x.dtype)
    xs = nn.functional.pad(torch.where(mask.unsqueeze(-1), x, torch.zeros_like(x)),
                           (0, 0, 0, pad))
    b, t, d = xs.shape
    total = xs.view(b, t // stride, stride, d).sum(dim=2)
    count = m.view(b, t // stride, stride).sum(dim=2, keepdim=True)
    return total / count.clamp_min(1.0)


def _build_pooling(config: ModelConfig, dim: int) -> nn.Module:
    if config.pooling == "flam":
        return FLAM(
            dim, config.num_heads, config.dropout, config.context_broadcast,
            config.attention_dropout, config.flam_pool,
        )
    return POOLINGS[config.pooling](dim)


def _out_dim(pooling: nn.Module) -> int:
    value = pooling.out_dim
    if not isinstance(value, int):
        raise TypeError(f"{type(pooling).__name__}.out_dim must be an int")
    return value


def build_model(config: ModelConfig) -> SERModel:
    """Build the model a config describes (the one entry point trainers and checkpoints use).

    Args:
        config: The architecture.

    Returns:
        A freshly initialised :class:`SERModel`.
    """
    return SERModel(config)


# --- networks around the frame model: layers, statistics, ensembles, waveform input -----------
#
# A network built for a run (see ``emovox.bundle.build_network``) is a FrameNetwork (every-layer
# frames combined, then the SERModel, plus an optional statistics branch), an Ensemble of such
# networks and LinearMembers, or a WaveModel around either when the frontend is fine-tuned.
# Every one keeps the forward contract ``(x, mask) -> ModelOutput``.


class LayerConcat(nn.Module):
    """Every hidden-state layer side by side: ``[B, L, T, D] -> [B, T, L * D]``."""

    def forward(self, x: Tensor) -> Tensor:
        """Concatenate the layers of each frame."""
        b, n, t, d = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, n * d)


class StatsBranch(nn.Module):
    """Mean and std over the valid frames of every layer -> batch norm -> dropout -> linear.

    ``forward(x [B, L, T, D] or [B, T, D], mask [B, T]) -> logits [B, C]``.

    Args:
        num_features: Features per frame over all layers (``L * D``).
        num_classes: Output classes.
        dropout: Dropout on the standardised statistics.
    """

    def __init__(self, num_features: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(2 * num_features, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(2 * num_features, num_classes)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Logits from the pooled statistics."""
        mean, var = masked_moments(x, mask)
        pooled = torch.cat([mean.flatten(1), (var + 1e-8).sqrt().flatten(1)], dim=1)
        return self.linear(self.dropout(self.norm(pooled)))


class FrameNetwork(nn.Module):
    """A frame model that accepts every-layer frames ``[B, L, T, D]`` (or plain ``[B, T, D]``).

    The layers are combined by a learned weighting or concatenated (``mode``), then the frame
    model runs; with a statistics branch, its logits are added to the frame model's.

    Args:
        num_layers: Hidden states per frame, or ``None`` for one-layer frames.
        model: The frame model (:class:`SERModel`).
        mode: ``"weighted"`` or ``"concat"``.
        stats: An optional :class:`StatsBranch`.
    """

    def __init__(self, num_layers: int | None, model: SERModel, mode: str = "weighted",
                 stats: StatsBranch | None = None) -> None:
        super().__init__()
        self.layer_mix: nn.Module | None = None
        if num_layers:
            self.layer_mix = LayerConcat() if mode == "concat" else LayerWeighting(num_layers)
        self.model = model
        self.stats = stats

    def forward(self, x: Tensor, mask: Tensor) -> ModelOutput:
        """Run the network on a padded batch."""
        extra = self.stats(x, mask) if self.stats is not None else None
        if self.layer_mix is not None:
            x = self.layer_mix(x)
        out = self.model(x, mask)
        if extra is not None:
            out = dataclasses.replace(out, logits=out.logits + extra)
        return out


class LinearMember(nn.Module):
    """A fitted logistic regression on the frames' pooled statistics, as a network.

    The statistics are computed over the valid frames as :func:`emovox.ops.pool_stats` does
    (mean, population std), then ``((pooled - mean) / scale) @ coef.T + intercept``; the
    parameters are buffers filled by :meth:`set_head`.

    Args:
        frame_shape: Shape of one frame: ``[D]`` or ``[L, D]``.
        num_classes: Output classes.
        layer: Layer index, or ``"all"`` for every layer's statistics.
    """

    def __init__(self, frame_shape: Sequence[int], num_classes: int, layer: int | str) -> None:
        super().__init__()
        layers = int(frame_shape[0]) if len(frame_shape) == 2 else None
        self.layer = layer
        num_features = 2 * int(frame_shape[-1]) * (layers if layers and layer == "all" else 1)
        self.register_buffer("mean", torch.zeros(num_features))
        self.register_buffer("scale", torch.ones(num_features))
        self.register_buffer("coef", torch.zeros(num_classes, num_features))
        self.register_buffer("intercept", torch.zeros(num_classes))

    def set_head(self, arrays: Mapping[str, Any]) -> None:
        """Copy a fitted head's ``mean``, ``scale``, ``coef`` and ``intercept`` arrays in.

        A ``temperature`` among them is folded into ``coef`` and ``intercept`` (divided by it).
        """
        values = dict(arrays)
        temperature = float(values.pop("temperature", 1.0))
        for name, value in values.items():
            scale = 1.0 / temperature if name in ("coef", "intercept") else 1.0
            self.get_buffer(name).copy_(torch.as_tensor(value, dtype=torch.float32) * scale)

    def forward(self, x: Tensor, mask: Tensor) -> ModelOutput:
        """Logits of the logistic regression (no embedding)."""
        if x.dim() == 4 and self.layer != "all":
            x = x[:, int(self.layer)]
        mean, var = masked_moments(x, mask)
        pooled = torch.cat([mean, var.clamp_min(0.0).sqrt()], dim=-1).flatten(1)
        center, scale, coef, intercept = (self.get_buffer(n) for n in
                                          ("mean", "scale", "coef", "intercept"))
        logits = ((pooled - center) / scale) @ coef.T + intercept
        return ModelOutput(logits=logits, embedding=pooled.new_zeros(len(pooled), 0))


class Ensemble(nn.Module):
    """Several networks with the same inputs; their class probabilities are averaged.

    ``weighting="entropy"``: per recording, each member's probabilities weigh ``exp(-H)``
    (``H`` its predictive entropy), normalised over the members, instead of equally.
    The output's logits are the log of the mean probability (so a softmax gives the mean), the
    embedding is the members' embeddings side by side, frame weights the mean of those members
    that have them.
    """

    def __init__(self, members: Sequence[nn.Module], weighting: str = "mean") -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.weighting = weighting

    @property
    def model(self) -> Any:
        """The first member's frame model (its embedding size sizes the losses)."""
        return self.members[0].model

    def forward(self, x: Tensor, mask: Tensor) -> ModelOutput:
        """Average the members' probabilities."""
        outs = [m(x, mask) for m in self.members]
        each = torch.stack([torch.softmax(o.logits.float(), dim=-1) for o in outs])  # [M, B, C]
        if self.weighting == "entropy":  # an unsure member counts less on this recording
            entropy = -(each * torch.log(each.clamp_min(1e-12))).sum(dim=-1, keepdim=True)
            weight = torch.softmax(-entropy, dim=0)  # exp(-H) normalised over the members
            probs = (weight * each).sum(dim=0)
        else:
            probs = each.mean(dim=0)
        weights = [o.frame_weights for o in outs if o.frame_weights is not None]
        regression = [o.regression for o in outs]
        return ModelOutput(
            logits=torch.log(probs.clamp_min(1e-12)),
            embedding=torch.cat([o.embedding for o in outs], dim=-1),
            frame_weights=torch.stack(weights).mean(dim=0) if weights else None,
            regression=(torch.stack(regression).mean(dim=0)  # type: ignore[arg-type,unused-ignore]
                        if all(r is not None for r in regression) else None),
        )


class WaveModel(nn.Module):
    """Waveform -> frontend module (fine-tuned) -> fixed standardisation -> network.

    Used when the frontend is fine-tuned: its trainable layers are part of the network and of
    its checkpoint. ``forward(wave [B, N], lengths [B]) -> ModelOutput``.

    Args:
        encoder: The frontend's torch module ``(wave, lengths) -> (features, mask)``.
        mean: Standardisation mean, the shape of one frame.
        std: Standardisation std, the shape of one frame.
        network: The network on standardised frames.
    """

    def __init__(self, encoder: nn.Module, mean: Any, std: Any, network: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))
        self.network = network

    @property
    def model(self) -> Any:
        """The wrapped network's frame model."""
        return self.network.model

    def forward(self, wave: Tensor, lengths: Tensor) -> ModelOutput:
        """Encode, standardise and classify a padded batch of waveforms."""
        feats, mask = self.encoder(wave, lengths)
        return self.network((feats - self.get_buffer("mean")) / self.get_buffer("std"), mask)
