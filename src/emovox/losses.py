"""Training losses: KL, soft cross-entropy, focal, center, supervised contrastive; MLL combination.

Every loss takes *soft* targets: a ``[B, C]`` tensor of label distributions (rows sum to 1), so
mixup labels and label-distribution corpora need no special path. Integer labels ``[B]`` are
accepted too and turned into one-hot rows (:func:`as_distribution`). Losses that need one class
per sample (center, supervised contrastive) use the *dominant* label, the argmax of the row
(ties go to the lowest class index).

:class:`MLLLoss` is the multi-loss objective of Wang et al., arXiv 2512.04551 (``METHOD.md``
section 1)::

    total = w_kl * KL + w_focal * Focal + w_center * Center + w_supcon * SupCon (+ w_ce * CE)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from emovox.config import LossConfig
from emovox.errors import ConfigError
from emovox.models import ModelOutput

__all__ = [
    "CenterLoss",
    "LOSSES",
    "LossConfig",
    "LossScaler",
    "MLLLoss",
    "as_distribution",
    "ccc_loss",
    "center_loss",
    "combine_losses",
    "cross_entropy_loss",
    "dominant_label",
    "focal_loss",
    "kl_div_loss",
    "region_loss",
    "supcon_loss",
]


def as_distribution(target: Tensor, num_classes: int) -> Tensor:
    """Return targets as float label distributions ``[B, C]``.

    Args:
        target: Either distributions ``[B, C]`` (returned as float) or integer labels ``[B]``
            (turned into one-hot rows).
        num_classes: ``C``.

    Returns:
        Float tensor ``[B, C]``.

    Raises:
        ValueError: If the shape fits neither form.
    """
    if target.dim() == 1 and not target.is_floating_point():
        return F.one_hot(target.long(), num_classes).float()
    if target.dim() != 2 or target.shape[1] != num_classes:
        raise ValueError(
            f"targets must be [B, {num_classes}] distributions or [B] class indices, "
            f"got shape {tuple(target.shape)}"
        )
    return target.float()


def dominant_label(target: Tensor) -> Tensor:
    """Class index per sample: argmax of soft targets ``[B, C]``; integer labels ``[B]`` as is."""
    if target.dim() == 1:
        return target.long()
    return target.argmax(dim=-1)


def kl_div_loss(logits: Tensor, target_dist: Tensor) -> Tensor:
    """KL divergence ``KL(target || softmax(logits))``, summed over classes, mean over the batch.

    ``sum_c t_c (log t_c - log p_c)``, with ``0 log 0 = 0`` so zeros in the target are safe.
    Against a one-hot target this equals the cross-entropy.

    Args:
        logits: Scores, shape ``[B, C]``.
        target_dist: Label distributions ``[B, C]`` (or class indices ``[B]``).

    Returns:
        Scalar loss (nats).
    """
    target = as_distribution(target_dist, logits.shape[-1])
    log_prob = F.log_softmax(logits.float(), dim=-1)
    per_sample = (torch.xlogy(target, target) - target * log_prob).sum(dim=-1)
    return per_sample.mean()


def cross_entropy_loss(logits: Tensor, target_dist: Tensor) -> Tensor:
    """Soft-target cross-entropy ``-sum_c t_c log p_c``, mean over the batch.

    Args:
        logits: Scores, shape ``[B, C]``.
        target_dist: Label distributions ``[B, C]`` (or class indices ``[B]``).

    Returns:
        Scalar loss (nats).
    """
    target = as_distribution(target_dist, logits.shape[-1])
    log_prob = F.log_softmax(logits.float(), dim=-1)
    return -(target * log_prob).sum(dim=-1).mean()


def focal_loss(
    logits: Tensor,
    target_dist: Tensor,
    gamma: float = 2.0,
    alpha: Sequence[float] | Tensor | None = None,
) -> Tensor:
    """Soft-target focal loss ``-sum_c alpha_c t_c (1 - p_c)^gamma log p_c``, mean over the batch.

    The soft-target form (a choice among the two that ``METHOD.md`` allows) weights every
    class of the target by how badly it is predicted, so mixed labels keep both classes. For a
    one-hot target it is exactly the focal loss of Lin et al. (2017); ``gamma = 0`` and no
    ``alpha`` give the soft cross-entropy.

    Args:
        logits: Scores, shape ``[B, C]``.
        target_dist: Label distributions ``[B, C]`` (or class indices ``[B]``).
        gamma: Focusing exponent (>= 0; 2 is the standard value, the paper does not give one).
        alpha: Optional per-class weights ``[C]`` (e.g. inverse class frequencies). The result
            is a plain batch mean, not normalised by the weights.

    Returns:
        Scalar loss (nats).
    """
    target = as_distribution(target_dist, logits.shape[-1])
    log_prob = F.log_softmax(logits.float(), dim=-1)
    prob = log_prob.exp()
    modulation = (1.0 - prob).clamp(min=0.0).pow(gamma)
    per_class = -target * modulation * log_prob
    if alpha is not None:
        weights = torch.as_tensor(alpha, dtype=per_class.dtype, device=per_class.device)
        per_class = per_class * weights
    return per_class.sum(dim=-1).mean()


def center_loss(embedding: Tensor, centers: Tensor, target: Tensor) -> Tensor:
    """Center loss ``0.5 * mean_b ||e_b - c_{y_b}||^2`` (Wen et al., 2016).

    Args:
        embedding: Embeddings, shape ``[B, E]``.
        centers: Class centers, shape ``[C, E]``.
        target: Label distributions ``[B, C]`` (dominant label used) or class indices ``[B]``.

    Returns:
        Scalar loss (squared embedding units).
    """
    labels = dominant_label(target)
    diff = embedding.float() - centers[labels].float()
    return 0.5 * diff.pow(2).sum(dim=-1).mean()


class CenterLoss(nn.Module):
    """Center loss with learnable class centers.

    The centers start at zero (a choice: no prior on where classes lie; they follow the class
    means once training starts). The paper trains them with their own optimizer (lr 5e-3,
    :attr:`LossConfig.center_lr`); build it on :meth:`center_parameters` and keep these
    parameters out of the model's optimizer. Note that the loss weight (and the unit scaling of
    :func:`combine_losses`) also scales the centers' gradient: with weight 0.01 a rate of 5e-3
    moves them at 5e-5.

    With ``direct_lr`` (:attr:`LossConfig.center_update` ``"direct"``) the centers are not
    trained through the objective: every training batch moves them by ``direct_lr`` times the
    gradient of the *unweighted, unscaled* center loss (Wen et al.'s update), so the rate is
    the stated one whatever the weight; the loss then pulls the embeddings only.

    Args:
        num_classes: ``C``.
        dim: Embedding size ``E``.
        direct_lr: The centers' own rate for the direct update (``None``: by gradient).
    """

    def __init__(self, num_classes: int, dim: int, direct_lr: float | None = None) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(num_classes, dim),
                                    requires_grad=direct_lr is None)
        self.direct_lr = direct_lr

    def center_parameters(self) -> list[nn.Parameter]:
        """The parameters the center optimizer updates (none with the direct update)."""
        return [self.centers] if self.direct_lr is None else []

    def forward(self, embedding: Tensor, target: Tensor) -> Tensor:
        """Compute the loss for embeddings ``[B, E]`` and targets ``[B, C]`` or ``[B]``."""
        loss = center_loss(embedding, self.centers, target)
        if self.direct_lr is not None and self.training:
            with torch.no_grad():  # d/dc_j of 0.5 mean_i |x_i - c_y_i|^2, then one step
                labels = dominant_label(target)
                diff = embedding.detach().float() - self.centers[labels].float()
                grad = torch.zeros_like(self.centers).index_add_(0, labels, -diff)
                self.centers.sub_(self.direct_lr * grad / max(1, embedding.shape[0]))
        return loss


def supcon_loss(projection: Tensor, labels: Tensor, temperature: float = 0.07) -> Tensor:
    """Supervised contrastive loss (Khosla et al., 2020, the "L_out" form).

    For each anchor ``i`` with at least one positive (another sample of the same dominant
    label)::

        l_i = -1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p/tau) / sum_{a != i} exp(z_i.z_a/tau))

    and the loss is the mean of ``l_i`` over those anchors. Anchors without a positive are
    left out; a batch without any positive pair returns 0 (still attached to the graph). The
    projections are L2-normalised here again (a no-op for :class:`ModelOutput` projections).
    Unlike the reference code, the loss is not multiplied by ``tau / 0.07``.

    Args:
        projection: Projections, shape ``[B, P]``.
        labels: Label distributions ``[B, C]`` (dominant label used) or class indices ``[B]``.
        temperature: ``tau`` (> 0; 0.07 is the common value, the paper gives none).

    Returns:
        Scalar loss (nats).
    """
    if temperature <= 0:
        raise ConfigError(f"supcon temperature must be > 0, got {temperature}")
    z = F.normalize(projection.float(), dim=-1)
    classes = dominant_label(labels)
    batch = z.shape[0]
    self_mask = torch.eye(batch, dtype=torch.bool, device=z.device)
    positives = (classes.unsqueeze(0) == classes.unsqueeze(1)) & ~self_mask
    num_positives = positives.sum(dim=1)
    has_positive = num_positives > 0
    if not bool(has_positive.any()):
        return z.sum() * 0.0
    logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive_sum = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -positive_sum[has_positive] / num_positives[has_positive]
    return per_anchor.mean()


#: The loss functions by name (``center`` takes the centers explicitly; see :class:`CenterLoss`).
def ccc_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """``1 - CCC``, averaged over the target's dimensions, ignoring missing (NaN) targets.

    Lin's concordance correlation coefficient per dimension over the batch's items that have
    a value: ``2 cov / (var_p + var_t + (mean_p - mean_t)^2)``. A dimension with fewer than
    two values in the batch is left out; with none left the loss is 0 (and has a gradient of
    0, so the batch still steps on its other terms).

    Args:
        prediction: ``[B, K]``.
        target: ``[B, K]``, NaN where an item has no value.
    """
    terms = []
    for k in range(target.shape[1]):
        valid = ~torch.isnan(target[:, k])
        if int(valid.sum()) < 2:
            continue
        p, t = prediction[valid, k].float(), target[valid, k].float()
        pm, tm = p.mean(), t.mean()
        cov = ((p - pm) * (t - tm)).mean()
        ccc = 2 * cov / (p.var(unbiased=False) + t.var(unbiased=False) + (pm - tm) ** 2 + 1e-8)
        terms.append(1 - ccc)
    if not terms:
        return prediction.sum() * 0.0
    return torch.stack(terms).mean()


def region_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Soft cross-entropy on the spherical regions, leaving out rows without VAD.

    Rows of ``target`` that are all zero (no VAD) are left out; 0 when none is left.
    """
    keep = target.sum(dim=-1) > 0
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return cross_entropy_loss(logits[keep], target[keep])


LOSSES: dict[str, Callable[..., Tensor]] = {
    "kl": kl_div_loss,
    "ce": cross_entropy_loss,
    "focal": focal_loss,
    "center": center_loss,
    "supcon": supcon_loss,
    "vad": ccc_loss,
    "sphere": region_loss,
}


class LossScaler:
    """Running denominators that bring each (non-negative) loss term into [0, 1].

    For a term with current value ``v`` (detached), the denominator is ``d = max(s, v, eps)``
    where the state ``s`` is, per term:

    * ``mode="max"``: the largest value seen so far (including ``v``). Terms are then measured
      relative to their peak, usually their first batches, so after warm-up the scaling is a
      constant reweighting by the inverse initial magnitude.
    * ``mode="ema"``: an exponential moving average of the values (``s <- m s + (1 - m) v``,
      started at the first value); taking ``max(s, v)`` keeps the result <= 1 on spikes.

    Dividing by a detached ``d`` changes the size of each term's gradient, not its direction.
    The paper states only that terms are scaled into [0, 1]; this rule is a choice.

    Args:
        mode: ``"max"`` or ``"ema"``.
        momentum: EMA momentum ``m`` for ``mode="ema"``.
        eps: Floor of the denominator.
    """

    def __init__(self, mode: str = "max", momentum: float = 0.99, eps: float = 1e-8) -> None:
        if mode not in ("max", "ema"):
            raise ConfigError(f"LossScaler mode must be 'max' or 'ema', got {mode!r}")
        self.mode = mode
        self.momentum = momentum
        self.eps = eps
        self.state: dict[str, float] = {}

    def denominator(self, name: str, value: float, update: bool = True) -> float:
        """Return the denominator for term ``name`` at value ``value``, updating the state.

        Args:
            name: Term name.
            value: Current (detached) value of the term.
            update: Whether to fold ``value`` into the state (False for evaluation).

        Returns:
            ``max(state, value, eps)``.
        """
        previous = self.state.get(name)
        if previous is None:
            state = value
        elif self.mode == "max":
            state = max(previous, value)
        else:
            state = self.momentum * previous + (1.0 - self.momentum) * value
        if update:
            self.state[name] = state
        return max(state, value, self.eps)

    def state_dict(self) -> dict[str, Any]:
        """Serialisable state (for checkpoints)."""
        return {"mode": self.mode, "momentum": self.momentum, "state": dict(self.state)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`."""
        self.mode = str(state["mode"])
        self.momentum = float(state["momentum"])
        self.state = {str(k): float(v) for k, v in state["state"].items()}


def combine_losses(
    terms: Mapping[str, Tensor],
    weights: Mapping[str, float],
    scale_to_unit: bool = False,
    scaler: LossScaler | None = None,
    update_scaler: bool = True,
) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of loss terms, optionally with each term first scaled into [0, 1].

    ``total = sum_k w_k * u_k`` over terms with ``w_k > 0``, where ``u_k = L_k`` or, with
    ``scale_to_unit``, ``u_k = L_k / d_k`` with ``d_k`` a detached denominator ``>= L_k``:
    from ``scaler`` (:class:`LossScaler`, stateful) when given, otherwise the term's own
    detached value (per-batch rule: every ``u_k`` equals 1 and its gradient is that of
    ``log L_k``). Terms are assumed non-negative, which all losses here are.

    Args:
        terms: Scalar loss tensors by name.
        weights: Weight by name; every term needs one. Terms with weight 0 are skipped.
        scale_to_unit: Scale each term into [0, 1] before weighting.
        scaler: Running denominators; see above.
        update_scaler: Whether to update ``scaler`` (False during evaluation).

    Returns:
        ``(total, logs)``: the scalar total, and floats: ``total``, each raw term by name and,
        when scaling, each scaled term as ``"<name>_unit"``.

    Raises:
        ConfigError: If a term has no weight, or no term has a positive weight.
    """
    missing = [name for name in terms if name not in weights]
    if missing:
        raise ConfigError(f"no weight given for loss term(s): {', '.join(missing)}")
    total: Tensor | None = None
    logs: dict[str, float] = {}
    for name, term in terms.items():
        weight = float(weights[name])
        if weight == 0.0:
            continue
        value = float(term.detach())
        logs[name] = value
        unit = term
        if scale_to_unit:
            denominator = (
                scaler.denominator(name, value, update=update_scaler)
                if scaler is not None
                else max(value, 1e-8)
            )
            unit = term / denominator
            logs[f"{name}_unit"] = value / denominator
        contribution = weight * unit
        total = contribution if total is None else total + contribution
    if total is None:
        raise ConfigError("no loss term has a positive weight")
    logs["total"] = float(total.detach())
    return total, logs


class MLLLoss(nn.Module):
    """The multi-loss objective on a :class:`ModelOutput`; terms with weight 0 are not computed.

    Holds the center-loss centers (when ``config.center > 0``) and the :class:`LossScaler`
    (when ``config.scale_to_unit``). The scaler is updated in training mode only.

    Args:
        config: Weights and settings.
        num_classes: ``C``.
        embedding_dim: Size ``E`` of ``ModelOutput.embedding`` (for the centers).
    """

    def __init__(self, config: LossConfig, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.center: CenterLoss | None = (
            CenterLoss(num_classes, embedding_dim,
                       config.center_lr if config.center_update == "direct" else None)
            if config.center > 0 else None
        )
        self.scaler: LossScaler | None = (
            LossScaler(config.scale_mode, config.scale_momentum) if config.scale_to_unit else None
        )

    def center_parameters(self) -> list[nn.Parameter]:
        """Parameters for the centers' own optimizer (empty when center loss is off)."""
        return self.center.center_parameters() if self.center is not None else []

    def forward(self, output: ModelOutput, target_dist: Tensor, vad: Tensor | None = None,
                regions: Tensor | None = None, sphere_scale: float = 1.0,
                ) -> tuple[Tensor, dict[str, float]]:
        """Compute the weighted total.

        Args:
            output: The model's output.
            target_dist: Label distributions ``[B, C]`` (or class indices ``[B]``); a row of
                zeros is an item without a category (dimensional-only data): the
                classification terms leave it out.
            vad: Standardised valence/arousal/dominance ``[B, 3]`` (NaN: missing), for
                ``config.vad > 0``.
            regions: Spherical-region distributions ``[B, R]`` (zeros: no VAD), for
                ``config.sphere > 0``.
            sphere_scale: Factor on the sphere weight this epoch (its decay).

        Returns:
            ``(total, logs)`` as in :func:`combine_losses`.

        Raises:
            ConfigError: If supcon is weighted but the model has no projection head.
        """
        config = self.config
        target = as_distribution(target_dist, self.num_classes)
        terms: dict[str, Tensor] = {}
        if config.vad > 0:
            if output.regression is None or vad is None:
                raise ConfigError("loss.vad is weighted but the model has no VAD head or the "
                                  "batch no VAD targets")
            terms["vad"] = ccc_loss(output.regression, vad)
        if config.sphere > 0 and output.regions is not None and regions is not None:
            terms["sphere"] = region_loss(output.regions, regions)
        labelled = target.sum(dim=-1) > 0
        if not bool(labelled.all()):  # dimensional-only items: no classification terms
            if not bool(labelled.any()):
                weights = {**config.weights(), "sphere": config.sphere * sphere_scale}
                return combine_losses(terms, weights, config.scale_to_unit, self.scaler,
                                      update_scaler=self.training)
            output = ModelOutput(
                logits=output.logits[labelled], embedding=output.embedding[labelled],
                projection=None if output.projection is None else output.projection[labelled])
            target = target[labelled]
        if config.kl > 0:
            terms["kl"] = kl_div_loss(output.logits, target)
        if config.ce > 0:
            terms["ce"] = cross_entropy_loss(output.logits, target)
        if config.focal > 0:
            terms["focal"] = focal_loss(
                output.logits, target, config.focal_gamma, config.focal_alpha
            )
        if self.center is not None:
            terms["center"] = self.center(output.embedding, target)
        if config.supcon > 0:
            if output.projection is None:
                raise ConfigError(
                    "supcon loss is weighted but the model has no projection head "
                    "(set ModelConfig.projection_dim > 0 or LossConfig.supcon = 0)"
                )
            terms["supcon"] = supcon_loss(output.projection, target, config.supcon_temperature)
        return combine_losses(
            terms,
            {**config.weights(), "sphere": config.sphere * sphere_scale},
            config.scale_to_unit,
            self.scaler,
            update_scaler=self.training,
        )
