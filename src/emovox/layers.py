"""Torch building blocks shared by frontends, networks, the trainer and the recognizer.

One implementation each:

- :func:`pad_frames` / :func:`pad_waves`: lists of arrays of different lengths -> one padded
  batch and its mask (frames) or lengths (waveforms).
- :func:`masked_moments`: mean and population variance over the valid frames of a padded batch;
  every statistics pooling (the frontends' mean+std functionals, statistics pooling, the
  statistics branch, the fused logistic regression) derives its standard deviation from it.
- :class:`LayerWeighting`: a learned softmax-weighted sum over encoder layers.

Example:
    >>> import numpy as np
    >>> x, mask = pad_frames([np.ones((2, 3)), np.ones((4, 3))])
    >>> tuple(x.shape), mask.sum(dim=1).tolist()
    ((2, 4, 3), [2, 4])
    >>> mean, var = masked_moments(x, mask)
    >>> mean[0].tolist(), var[1].tolist()
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["LayerWeighting", "masked_moments", "pad_frames", "pad_waves"]


def pad_frames(feats: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Stack feature matrices of different lengths into one padded batch.

    Args:
        feats: ``N`` arrays ``[..., T_i, D]`` with the same leading and last axes.

    Returns:
        ``(x, mask)`` torch tensors: ``x [N, ..., max T, D]`` float32 (zeros past each end) and
        ``mask [N, max T]`` bool (True = valid frame).
    """
    t_max = max(f.shape[-2] for f in feats)
    x = np.zeros((len(feats), *feats[0].shape[:-2], t_max, feats[0].shape[-1]), dtype=np.float32)
    mask = np.zeros((len(feats), t_max), dtype=bool)
    for i, f in enumerate(feats):
        x[i, ..., : f.shape[-2], :] = f
        mask[i, : f.shape[-2]] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


def pad_waves(waves: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Stack waveforms of different lengths: ``(batch [N, max len] float32, lengths [N] int64)``."""
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.float32))
    return batch, lengths


def masked_moments(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and population variance over the valid frames of a padded batch.

    Args:
        x: ``[B, T, D]`` or ``[B, L, T, D]`` (any axes between batch and time).
        mask: ``[B, T]`` bool, True = valid frame.

    Returns:
        ``(mean, var)``, each ``x``'s shape without the time axis; zeros for a row without a
        valid frame.
    """
    shape = (mask.shape[0],) + (1,) * (x.dim() - 3) + (mask.shape[1], 1)
    m = mask.reshape(shape).to(x.dtype)
    count = m.sum(dim=-2).clamp_min(1.0)
    mean = (x * m).sum(dim=-2) / count
    var = (((x - mean.unsqueeze(-2)) ** 2) * m).sum(dim=-2) / count
    return mean, var


class LayerWeighting(nn.Module):
    """A learned softmax-weighted sum over hidden-state layers (SUPERB-style).

    ``[B, L, T, D]`` (or a list of ``L`` tensors ``[B, T, D]``) -> ``[B, T, D]``. The weights
    start equal (zero logits).

    Args:
        num_layers: Number of hidden states ``L``.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_layers))

    def forward(self, x: Tensor | Sequence[Tensor]) -> Tensor:
        """Weighted sum over the layer axis."""
        stacked = x if isinstance(x, Tensor) else torch.stack(list(x), dim=1)
        w = torch.softmax(self.logits, dim=0).to(stacked.dtype)
        return (stacked * w[None, :, None, None]).sum(dim=1)
