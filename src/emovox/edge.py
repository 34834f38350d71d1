"""The edge model: a small convolutional network on log-mel, distilled from the default model.

What it is (``emovox predict --model edge``; its card is ``pretrained/EDGE_CARD.md``):

- input: the signal conditioned as the default model's is (silence trimmed, speech level set),
  then :func:`power_frames`: a 512-point FFT of 25 ms Hann windows every 10 ms, in numpy;
- the graph (ONNX, run by ONNX Runtime): 64 log-mel bands (:data:`N_MELS`, the filterbank
  inside the graph), a fixed standardisation, a 3x3 convolution and two depthwise-separable
  blocks that halve time twice and frequency three times, a projection to :data:`DIM`
  channels and two dilated temporal convolutions with residual connections: one
  :data:`DIM`-wide frame per 40 ms (:data:`FRAME_SECONDS`);
- after the graph, the default model's classify path unchanged: the frames the voice fills are
  kept (the frame gate), their mean and standard deviation pooled, and a linear layer gives the
  class probabilities (a :class:`~emovox.bundle.LinearHead`, stored in the ``.npz``).

It is trained (:func:`distill`, needs ``emovox[train]``) on what the teacher (a default-recipe
model) says about every training recording and its augmented copies (speed, noise, rooms,
telephone, codecs: the versions the teacher itself trains on), mixed with the true labels,
with frequency and time masking of the student's input. How close it comes to its teacher on
speakers neither saw: ``benchmarks/edge_model.py``.

What runs without PyTorch (:func:`power_frames`, :class:`EdgeFrontend`, the constants) is in
:mod:`emovox.features.edge` and re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import EmovoxError
from .features.edge import (
    _FORMAT,
    _PREFIX,
    DIM,
    FRAME_SECONDS,
    HOP,
    MIN_SAMPLES,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    STRIDE,
    WIN,
    EdgeFrontend,
    edge_frames,
    power_frames,
)

__all__ = ["DIM", "FRAME_SECONDS", "MIN_SAMPLES", "N_FFT", "N_MELS", "DistillConfig",
           "STEMS", "EdgeFrontend", "Student", "distill", "edge_bundle", "edge_frames", "ensemble",
           "export_edge",
           "filterbank", "log_mel", "power_frames", "save_edge", "stem_mel",
           "whisper_filterbank", "whisper_mel"]

# --- training (PyTorch) --------------------------------------------------------------------


@dataclass
class DistillConfig:
    """How :func:`distill` trains a student.

    Attributes:
        epochs: Passes; each gives every training recording once, in one of its versions
            (clean, speed or multi-condition copy) drawn at random.
        batch_size: Recordings per step.
        lr: AdamW's peak learning rate (cosine decay to 1 % over the epochs).
        weight_decay: AdamW's weight decay.
        alpha: Weight of the teacher's probabilities in the target (the rest: the label).
        crop_seconds: Longer training inputs are cut to a random stretch this long.
        freq_masks: Frequency masks per input (each up to ``freq_width`` bands).
        time_masks: Time masks per input (each up to ``time_width`` frames of 10 ms).
        hint: Weight of the hint loss: the student's pooled frames, through a linear layer
            used in training only, regress the teacher's own representation of the recording
            (each version's 4th item, e.g. its standardised pooled encoder statistics, reduced);
            0: no hint.
        frame_hint: Weight of the frame hint loss: every frame of the student, through a
            linear layer used in training only, regresses the teacher's own frames at the same
            time (each version's 5th item ``[T', K]``, one row per student frame, e.g. the
            teacher encoder's frames reduced; DistilHuBERT's layer prediction); 0: none.
        mixup: Share of inputs mixed with another of the batch (log-mel and target alike,
            weight drawn from Beta(0.4, 0.4); the gate keeps the frames either keeps).
        channels: Channels of the convolution stages.
        members: Students trained alike with seeds ``seed``, ``seed + 1``, ...; the model is
            one network whose frames are theirs side by side and whose head averages their
            logits (:func:`ensemble`).
        seed: Seed of everything random in training.
        stem: What turns the spectrum into features: ``"conv"``, the network's own
            convolutions on :data:`N_MELS` log-mel bands (:func:`filterbank`, :func:`log_mel`);
            ``"whisper"``, Whisper tiny.en's convolution stem, frozen, on Whisper's 80 log-mel
            bands (:func:`whisper_filterbank`, :func:`whisper_mel`; needs the ``whisper``
            extra to train), then a trainable strided projection (``channels`` unused).
    """

    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    alpha: float = 0.7
    crop_seconds: float = 4.0
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 20
    hint: float = 0.0
    frame_hint: float = 0.0
    mixup: float = 0.0
    channels: tuple[int, int, int] = (24, 48, 64)
    members: int = 1
    seed: int = 0
    stem: str = "conv"


#: The stems a student can have (:attr:`DistillConfig.stem`).
STEMS = ("conv", "whisper")


def _register_inputs(module: Any, filterbank: np.ndarray, mel_mean: np.ndarray,
                     mel_std: np.ndarray) -> None:
    """The buffers every edge network keeps: its filterbank and its inputs' statistics."""
    import torch

    for name, value in (("filterbank", filterbank), ("mel_mean", mel_mean),
                        ("mel_std", mel_std)):
        module.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))


def _temporal_block(dilation: int) -> Any:
    import torch
    from torch import nn

    class Temporal(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(DIM, DIM, 3, padding=dilation, dilation=dilation, bias=False)
            self.norm = nn.BatchNorm1d(DIM)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.norm(self.conv(x)))

    return Temporal()


def _build_whisper_net(filterbank: np.ndarray, mel_mean: np.ndarray,
                       mel_std: np.ndarray) -> Any:
    """The ``whisper`` stem's network: Whisper log-mel ``[B, T, 80]`` -> frames ``[B, T', DIM]``.

    Whisper tiny.en's convolution stem (frozen), a strided projection and two dilated temporal
    convolutions.
    """
    import copy

    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    from .features.whisper import WhisperFrontend

    encoder = WhisperFrontend(layer=0, pooled=False).encoder()

    class WhisperStemNet(nn.Module):
        filterbank: torch.Tensor
        mel_mean: torch.Tensor
        mel_std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            # mel_mean, mel_std: for the masks training fills (the stem reads Whisper's scale)
            _register_inputs(self, filterbank, mel_mean, mel_std)
            self.conv1 = copy.deepcopy(encoder.conv1).requires_grad_(False)
            self.conv2 = copy.deepcopy(encoder.conv2).requires_grad_(False)
            width = int(self.conv2.out_channels)
            self.project = nn.Sequential(nn.Conv1d(width, DIM, 3, stride=2, padding=1,
                                                   bias=False),
                                         nn.BatchNorm1d(DIM), nn.ReLU())
            self.temporal = nn.Sequential(_temporal_block(1), _temporal_block(2))

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            x = F.gelu(self.conv2(F.gelu(self.conv1(mel.transpose(1, 2)))))  # [B, 384, T/2]
            return self.temporal(self.project(x)).transpose(1, 2)  # [B, T', DIM]

        def from_power(self, power: torch.Tensor) -> torch.Tensor:
            """The exported entry: power ``[1, T, 257]`` -> frames ``[T', DIM]``."""
            mel = torch.clamp(torch.matmul(power, self.filterbank), min=1e-10).log10()
            mel = torch.maximum(mel, mel.max() - 8.0)
            return self.forward((mel + 4.0) / 4.0)[0]

    return WhisperStemNet()


def _build_net(channels: Sequence[int], filterbank: np.ndarray, mel_mean: np.ndarray,
               mel_std: np.ndarray, stem: str = "conv") -> Any:
    if stem == "whisper":
        return _build_whisper_net(filterbank, mel_mean, mel_std)
    import torch
    from torch import nn

    c0, c1, c2 = (int(c) for c in channels)

    def separable(cin: int, cout: int, stride: tuple[int, int]) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin), nn.ReLU(),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class EdgeNet(nn.Module):
        """log-mel ``[B, T, 64]`` -> frames ``[B, T', DIM]`` (``T' = edge_frames(T)``)."""

        filterbank: torch.Tensor
        mel_mean: torch.Tensor
        mel_std: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            _register_inputs(self, filterbank, mel_mean, mel_std)
            self.stem = nn.Sequential(nn.Conv2d(1, c0, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(c0), nn.ReLU())
            self.block1 = separable(c0, c1, (2, 2))  # time / 4, frequency / 4
            self.block2 = separable(c1, c2, (1, 2))  # frequency / 8
            self.project = nn.Sequential(nn.Conv1d(c2 * (N_MELS // 8), DIM, 1, bias=False),
                                         nn.BatchNorm1d(DIM), nn.ReLU())
            self.temporal = nn.Sequential(_temporal_block(1), _temporal_block(2))

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            x = ((mel - self.mel_mean) / self.mel_std)[:, None]  # [B, 1, T, F]
            x = self.block2(self.block1(self.stem(x)))  # [B, C, T', F / 8]
            b, c, t, f = x.shape
            x = x.permute(0, 1, 3, 2).reshape(b, c * f, t)
            return self.temporal(self.project(x)).transpose(1, 2)  # [B, T', DIM]

        def from_power(self, power: torch.Tensor) -> torch.Tensor:
            """The exported entry: power ``[1, T, 257]`` -> frames ``[T', DIM]``."""
            mel = torch.log(torch.matmul(power, self.filterbank) + 1e-6)
            return self.forward(mel)[0]

    return EdgeNet()


def filterbank() -> np.ndarray:
    """The edge model's mel filterbank ``[257, 64]`` (20 Hz to 8 kHz; needs PyTorch)."""
    from .features.mel import mel_filterbank

    return mel_filterbank(N_FFT, N_MELS, SAMPLE_RATE, f_min=20.0).numpy()


def whisper_filterbank() -> np.ndarray:
    """Whisper's 80 mel filters (slaney, 0-8 kHz) over this spectrum's 257 bins ``[257, 80]``.

    Scaled by 400 / 512, so that :func:`whisper_mel` of a 512-point spectrum of 25 ms windows
    gives what Whisper's 400-point one gives (needs PyTorch).
    """
    from .features.mel import mel_filterbank

    fb = mel_filterbank(N_FFT, 80, SAMPLE_RATE, 0.0, 8000.0, "slaney", "slaney").numpy()
    return (fb * (WIN / N_FFT)).astype(np.float32)


def whisper_mel(power: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """Whisper's log-mel scale from :func:`power_frames` (what the ``whisper`` stem reads).

    ``log10`` of the mel power, raised to at least its maximum - 8, then ``(x + 4) / 4``.
    """
    mel = np.log10(np.maximum(power @ fb, 1e-10))
    return ((np.maximum(mel, mel.max() - 8.0) + 4.0) / 4.0).astype(np.float32)


def stem_mel(power: np.ndarray, fb: np.ndarray, stem: str = "conv") -> np.ndarray:
    """What a student with this stem reads from :func:`power_frames`.

    :func:`whisper_mel` for the ``whisper`` stem, :func:`log_mel` otherwise.
    """
    return whisper_mel(power, fb) if stem == "whisper" else log_mel(power, fb)


def log_mel(power: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """What the graph computes first from :func:`power_frames`: ``log(power @ fb + 1e-6)``."""
    return np.log(power @ fb + 1e-6).astype(np.float32)


@dataclass
class Student:
    """A trained edge network and its linear head (before export)."""

    net: Any
    coef: np.ndarray  # [C, 2 DIM]
    intercept: np.ndarray  # [C]
    history: list[dict[str, float]] = field(default_factory=list)

    def frames(self, mel: np.ndarray) -> np.ndarray:
        """Frames ``[T', DIM]`` of one log-mel matrix ``[T, 64]`` (eval mode)."""
        import torch

        self.net.eval()
        with torch.inference_mode():
            return self.net(torch.from_numpy(np.ascontiguousarray(mel))[None])[0].numpy()


def _masked_stats(frames: Any, mask: Any) -> Any:
    import torch

    m = mask.to(frames.dtype)[..., None]
    count = m.sum(dim=1).clamp_min(1.0)
    mean = (frames * m).sum(dim=1) / count
    var = (((frames - mean[:, None]) ** 2) * m).sum(dim=1) / count
    return torch.cat([mean, var.clamp_min(1e-8).sqrt()], dim=-1)


def distill(items: Sequence[Sequence[tuple[np.ndarray, ...]]],
            labels: Sequence[int], num_classes: int, config: DistillConfig | None = None,
            *, fb: np.ndarray, progress: bool = True,
            class_weight: Sequence[float] | None = None) -> Student:
    """Train an edge student on what a teacher said.

    Args:
        items: Per training recording, its versions: ``(log_mel [T, 64], gate [T'] bool,
            teacher probabilities [C])`` each (the gate marks the frames the voice fills),
            plus the teacher's representation ``[E]`` as a 4th item when ``config.hint`` (any
            value otherwise) and its frames ``[T', K]`` (one per student frame) as a 5th when
            ``config.frame_hint``.
        labels: Each recording's class index, or -1 for a recording without a label (its
            target is the teacher's probabilities alone).
        num_classes: Classes of the output.
        config: Training settings.
        fb: The filterbank the log-mels were made with (kept in the graph).
        progress: A line per epoch on stderr.
        class_weight: Each recording's weight in the loss on the class targets (default: 1
            for every recording). A recording of weight 0 teaches the student only through
            the hint losses: the teacher's representation of audio, without its answer (e.g.
            recordings of another corpus, DistilHuBERT's way of using unlabelled speech).

    Returns:
        The :class:`Student`.
    """
    import dataclasses
    import sys
    import time

    import torch

    cfg = config or DistillConfig()
    if not items or len(items) != len(labels):
        raise EmovoxError("distill needs one list of versions per labelled recording")
    if cfg.members < 1:
        raise EmovoxError(f"config.members must be at least 1, not {cfg.members}")
    if cfg.stem not in STEMS:
        raise EmovoxError(f"config.stem must be 'conv' or 'whisper', not {cfg.stem!r}")
    weights = (np.ones(len(items), dtype=np.float32) if class_weight is None
               else np.asarray(class_weight, dtype=np.float32))
    if weights.shape != (len(items),) or not np.all(np.isfinite(weights)) or (weights < 0).any():
        raise EmovoxError("class_weight needs one finite weight >= 0 per recording")
    if not (weights > 0).any():
        raise EmovoxError("class_weight leaves no recording with a class target")
    if (weights == 0).any() and cfg.hint <= 0 and cfg.frame_hint <= 0:
        raise EmovoxError("recordings of class weight 0 need a hint loss (config.hint or "
                          "config.frame_hint) to teach anything")
    if cfg.members > 1:
        return ensemble([distill(items, labels, num_classes,
                                 dataclasses.replace(cfg, members=1, seed=cfg.seed + k), fb=fb,
                                 progress=progress, class_weight=class_weight)
                         for k in range(cfg.members)])
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    sample = np.concatenate([v[0] for versions in items for v in versions[:1]])
    bands = 80 if cfg.stem == "whisper" else N_MELS
    if fb.shape != (N_FFT // 2 + 1, bands) or sample.shape[1] != bands:
        raise EmovoxError(f"the {cfg.stem!r} stem needs {bands} mel bands (filterbank "
                          f"{fb.shape}, inputs {sample.shape[1]})")
    net = _build_net(cfg.channels, fb, sample.mean(axis=0), sample.std(axis=0) + 1e-3,
                     cfg.stem)
    head = torch.nn.Linear(2 * DIM, num_classes)
    params = [p for p in net.parameters() if p.requires_grad] + list(head.parameters())
    hint_head = None
    if cfg.hint > 0:
        if len(items[0][0]) < 4:
            raise EmovoxError("config.hint needs the teacher's representation as each "
                              "version's 4th item")
        hint_head = torch.nn.Linear(2 * DIM, int(np.asarray(items[0][0][3]).size))
        params += list(hint_head.parameters())
    frame_head = None
    if cfg.frame_hint > 0:
        if len(items[0][0]) < 5:
            raise EmovoxError("config.frame_hint needs the teacher's frames as each version's "
                              "5th item")
        frame_head = torch.nn.Linear(DIM, int(np.asarray(items[0][0][4]).shape[-1]))
        params += list(frame_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * int(np.ceil(len(items) / cfg.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps,
                                                    pct_start=0.1, final_div_factor=100.0)
    known = np.asarray(labels) >= 0
    onehot = np.eye(num_classes, dtype=np.float32)[np.where(known, np.asarray(labels), 0)]
    crop = max(STRIDE, int(cfg.crop_seconds * SAMPLE_RATE / HOP) // STRIDE * STRIDE)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.time()
        net.train()
        head.train()
        order = rng.permutation(len(items))
        total, batches = 0.0, 0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            mels: list[Any] = []
            gates: list[Any] = []
            targets: list[Any] = []
            batch_weight = weights[idx]
            hints: list[Any] = []
            teacher_frames: list[Any] = []
            for i in idx:
                versions = items[i]
                mel, gate, probs, *rest = versions[int(rng.integers(len(versions)))]
                hints.append(np.asarray(rest[0], dtype=np.float32) if hint_head else None)
                tf = np.asarray(rest[1], dtype=np.float32) if frame_head else None
                mel = mel.copy()
                if len(mel) > crop:  # a stretch starting on an output-frame boundary
                    first = int(rng.integers((len(mel) - crop) // STRIDE + 1)) * STRIDE
                    mel = mel[first : first + crop]
                    gate = gate[first // STRIDE : first // STRIDE + edge_frames(crop)]
                    if tf is not None:
                        tf = tf[first // STRIDE : first // STRIDE + edge_frames(crop)]
                teacher_frames.append(tf)
                for _ in range(cfg.freq_masks):
                    w = int(rng.integers(cfg.freq_width + 1))
                    f0 = int(rng.integers(bands - w + 1))
                    mel[:, f0 : f0 + w] = net.mel_mean.numpy()[f0 : f0 + w]
                for _ in range(cfg.time_masks):
                    w = int(rng.integers(min(cfg.time_width, len(mel) // 4) + 1))
                    t_0 = int(rng.integers(len(mel) - w + 1))
                    mel[t_0 : t_0 + w] = net.mel_mean.numpy()
                mels.append(mel)
                gates.append(np.asarray(gate, dtype=bool))
                alpha = cfg.alpha if known[i] else 1.0
                targets.append(alpha * probs + (1 - alpha) * onehot[i])
            if cfg.mixup > 0 and len(mels) > 1:
                partner = rng.permutation(len(mels))
                plain = list(zip(mels, gates, targets, hints, teacher_frames, strict=True))
                for k in np.flatnonzero(rng.random(len(mels)) < cfg.mixup):
                    (m1, g1, t1, h1, f1), (m2, g2, t2, h2, f2) = plain[k], plain[int(partner[k])]
                    if int(partner[k]) == k:
                        continue
                    lam = float(rng.beta(0.4, 0.4))
                    n = min(len(m1), len(m2))
                    width = min(len(g1), len(g2), edge_frames(n))
                    mels[k] = lam * m1[:n] + (1 - lam) * m2[:n]
                    gates[k] = g1[:width] | g2[:width]
                    targets[k] = lam * t1 + (1 - lam) * t2
                    batch_weight[k] = (lam * weights[idx[k]]
                                       + (1 - lam) * weights[idx[int(partner[k])]])
                    if hint_head is not None:
                        hints[k] = lam * h1 + (1 - lam) * h2
                    if frame_head is not None:
                        both = min(len(f1), len(f2), edge_frames(n))
                        teacher_frames[k] = lam * f1[:both] + (1 - lam) * f2[:both]
            longest = max(len(m) for m in mels)
            x = np.zeros((len(mels), longest, bands), dtype=np.float32)
            x[:] = net.mel_mean.numpy()
            out_len = edge_frames(longest)
            mask = np.zeros((len(mels), out_len), dtype=bool)
            for row, (mel, gate) in enumerate(zip(mels, gates, strict=True)):
                x[row, : len(mel)] = mel
                valid = edge_frames(len(mel))
                kept = np.asarray(gate[:valid], dtype=bool)
                mask[row, : len(kept)] = kept
                if mask[row].sum() < 1:
                    mask[row, :valid] = True
            frames = net(torch.from_numpy(x))
            pooled = _masked_stats(frames, torch.from_numpy(mask))
            logits = head(pooled)
            target = torch.from_numpy(np.stack(targets).astype(np.float32))
            per_item = -(target * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
            item_weight = torch.from_numpy(batch_weight)
            loss = (per_item * item_weight).sum() / item_weight.sum().clamp_min(1e-8)
            if hint_head is not None:
                hint = torch.from_numpy(np.stack(hints))
                loss = loss + cfg.hint * ((hint_head(pooled) - hint) ** 2).mean()
            if frame_head is not None:  # every frame both have (silence too), no padding
                width = int(np.asarray(teacher_frames[0]).shape[-1])
                goal = np.zeros((len(mels), out_len, width), dtype=np.float32)
                have = np.zeros((len(mels), out_len), dtype=np.float32)
                for row, (mel, tf) in enumerate(zip(mels, teacher_frames, strict=True)):
                    count = min(len(tf), edge_frames(len(mel)))
                    goal[row, :count] = tf[:count]
                    have[row, :count] = 1.0
                err = ((frame_head(frames) - torch.from_numpy(goal)) ** 2).mean(dim=-1)
                weight = torch.from_numpy(have)
                loss = loss + cfg.frame_hint * (err * weight).sum() / weight.sum().clamp_min(1.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
            batches += 1
        history.append({"epoch": epoch, "loss": round(total / max(1, batches), 4),
                        "seconds": round(time.time() - t0, 1)})
        if progress:
            print(f"edge epoch {epoch:3d}  loss {total / max(1, batches):.4f}  "
                  f"({time.time() - t0:.1f} s)", file=sys.stderr, flush=True)
    net.eval()
    return Student(net=net, coef=head.weight.detach().numpy().astype(np.float64),
                   intercept=head.bias.detach().numpy().astype(np.float64), history=history)


def ensemble(students: Sequence[Student]) -> Student:
    """One :class:`Student` made of several.

    Its network runs each member's on the same input and puts their frames side by side
    (``[T', K DIM]``); its head, on the pooled mean and standard deviation of those frames,
    gives the mean of the members' logits.
    """
    import torch

    if not students:
        raise EmovoxError("an ensemble needs at least one student")
    if len(students) == 1:
        return students[0]
    nets = [s.net.eval() for s in students]

    class Ensemble(torch.nn.Module):
        """Members' frames side by side: ``[B, T', K DIM]``."""

        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList(nets)

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            return torch.cat([m(mel) for m in self.members], dim=-1)

        def from_power(self, power: torch.Tensor) -> torch.Tensor:
            return torch.cat([m.from_power(power) for m in self.members],  # type: ignore[operator]
                             dim=-1)

    k = len(students)
    width = [s.coef.shape[1] // 2 for s in students]
    coef = np.hstack([s.coef[:, :w] for s, w in zip(students, width, strict=True)]
                     + [s.coef[:, w:] for s, w in zip(students, width, strict=True)]) / k
    intercept = np.mean([s.intercept for s in students], axis=0)
    history = [{"member": i + 1, **h} for i, s in enumerate(students) for h in s.history]
    return Student(net=Ensemble().eval(), coef=coef, intercept=intercept, history=history)


def export_edge(student: Student, path: str | os.PathLike[str], *, int8: bool = False,
                half: bool = False) -> str:
    """Write the student's network (power spectrum in, frames out) as one ONNX file.

    The metadata names the network by a digest of its weights (a checkpoint's frontend
    ``"model"``), so a model refuses another network's graph. With ``half`` every float
    weight of 1,024 values or more is stored as float16 and cast back to float32 inside
    the graph (ONNX Runtime folds the casts when it loads the file): half the file, the
    same speed, frames within float16 rounding of the network's.
    """
    import torch

    from .export import _MAX_SECONDS, ENCODER_NOTICE, _write_graph

    net = student.net.eval()
    digest = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().numpy().tobytes())
    metadata = {
        "format": _FORMAT, "kind": "edge", "network": digest.hexdigest()[:16],
        "dim": str(student.coef.shape[1] // 2), "sample_rate": str(SAMPLE_RATE),
        "int8": "true" if int8 else "false",
        "weights": "float16, computed in float32" if half else "float32",
        "input": f"power [1, T, {N_FFT // 2 + 1}] float32: emovox.edge.power_frames of the "
                 "conditioned signal",
        "output": f"frames [T', {student.coef.shape[1] // 2}]: one per "
                  f"{FRAME_SECONDS * 1000:g} ms",
        "config": json.dumps({"n_fft": N_FFT, "win": WIN, "hop": HOP, "n_mels": next(
            int(v.shape[1]) for k, v in net.state_dict().items() if k.endswith("filterbank"))}),
    }
    if any(k.endswith("conv1.weight") for k in net.state_dict()):  # Whisper's stem inside
        metadata["encoder_licence"] = ENCODER_NOTICE

    class Entry(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, power: torch.Tensor) -> torch.Tensor:
            return self.net.from_power(power)

    example = torch.rand(1, 300, N_FFT // 2 + 1)
    max_frames = 1 + int(_MAX_SECONDS * SAMPLE_RATE) // HOP
    out = _write_graph(Entry().eval(), example, "power", 8, max_frames, "frames", metadata,
                       path, int8)
    if half:
        _store_half(out)
    return out


def _store_half(path: str, smallest: int = 1024) -> None:
    """Store the float32 initializers of ``smallest`` values or more as float16.

    Each is cast back to float32 by a ``Cast`` node at the top of the graph; the file is
    rewritten atomically.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .files import atomic_open

    proto = onnx.load(path)
    graph = proto.graph
    casts = []
    for init in list(graph.initializer):
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or value.size < smallest:
            continue
        graph.initializer.remove(init)
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float16),
                                                         init.name + "__float16"))
        casts.append(helper.make_node("Cast", [init.name + "__float16"], [init.name],
                                      to=TensorProto.FLOAT, name=init.name + "__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    with atomic_open(path, "wb") as out:
        out.write(proto.SerializeToString())


def edge_bundle(student: Student, teacher: Any, network: str, *,
                info: dict[str, Any] | None = None) -> Any:
    """The :class:`~emovox.bundle.Bundle` of a student.

    It has the teacher's labels and conditioning, the ``edge`` frontend (network ``network``,
    :func:`export_edge`'s digest), no standardisation, the student's linear layer as the head.
    """
    import dataclasses

    from .bundle import Bundle, LinearHead, Normalizer
    from .features import CONDITIONING_OPTIONS

    conditioning = {k: v for k, v in teacher.frontend_config.items()
                    if k in CONDITIONING_OPTIONS}
    frontend = {"name": "edge", "model": network, "sample_rate": SAMPLE_RATE, **conditioning}
    config = dataclasses.replace(
        teacher.config, method="logreg", frontend=dict(frontend),
        data=dataclasses.replace(teacher.config.data, normalization="none"))
    width = student.coef.shape[1]
    head = LinearHead(np.zeros(width), np.ones(width), student.coef, student.intercept)
    return Bundle(config=config, labels=list(teacher.labels), sample_rate=SAMPLE_RATE,
                  frontend_config=frontend, normalizer=Normalizer("none", {}), network=head,
                  info=dict(info or {}))


def save_edge(student: Student, teacher: Any, folder: str | os.PathLike[str],
              name: str = "edge", *, int8: bool = False, half: bool = False,
              info: dict[str, Any] | None = None) -> str:
    """Write a student as a torch-free emovox model; return the ``.npz`` path.

    ``folder/name.npz`` holds the head and names the graph written beside it
    (``edge-<digest>.onnx``).
    """
    from .bundle import save_checkpoint

    folder = os.fspath(folder)
    staged = os.path.join(folder, f".{name}-graph.onnx")
    export_edge(student, staged, int8=int8, half=half)
    network = _graph_network(staged)
    graph = f"edge-{network}{'-int8' if int8 else ''}.onnx"
    os.replace(staged, os.path.join(folder, graph))
    path = os.path.join(folder, f"{name}.npz")
    save_checkpoint(edge_bundle(student, teacher, network, info=info), path, encoder=graph)
    return path


def _graph_network(path: str) -> str:
    import onnx

    proto = onnx.load(path, load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    return meta[_PREFIX + "network"]
