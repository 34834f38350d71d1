"""Log-mel filterbank frontend: ``log(mel power + 1e-6)`` frames, the classic SER input.

Example:
    >>> import numpy as np
    >>> frontend = LogMel(n_mels=64)
    >>> features = frontend(np.zeros(16000, dtype=np.float32))
    >>> features.shape  # 1 s at a 10 ms hop: 1 + 16000 // 160 centred frames
    (101, 64)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from emovox.errors import AudioError, ConfigError
from emovox.features.mel import (
    MelNorm,
    MelScale,
    check_signal,
    frame_counts,
    lengths_to_mask,
    mel_filterbank,
    pad_for_frames,
    stft_power,
)

#: Floor added to the mel power before the log: -13.8 for digital silence, no -inf.
LOG_FLOOR = 1e-6


class LogMelModule(torch.nn.Module):
    """Batched log-mel computation with masks (no trainable parameters).

    Frames are centred (see :mod:`emovox.features.mel` for the edge convention): an utterance
    of ``n`` samples gives ``1 + n // hop`` frames, frame ``t`` centred on sample ``t * hop``.
    """

    filterbank: Tensor

    def __init__(self, n_fft: int, win: int, hop: int, filterbank: Tensor) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.win = win
        self.hop = hop
        self.register_buffer("filterbank", filterbank, persistent=False)

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Compute log-mel features for a padded batch.

        Args:
            wave: Waveforms ``[B, N]`` (float), padded on the right.
            lengths: Valid samples per row ``[B]`` (int64); each must be >= 1.

        Returns:
            ``(features [B, T, n_mels], mask [B, T])``; mask True = valid frame, padded frames
            hold zeros. ``T = 1 + max(lengths) // hop``.
        """
        lengths = lengths.to(wave.device)
        if bool((lengths < 1).any()):
            raise AudioError("log-mel needs at least one sample per utterance")
        counts = frame_counts(lengths, self.hop)
        width = int(counts.max())
        wave = pad_for_frames(wave[:, : int(lengths.max())].float(), lengths, self.n_fft)
        power = stft_power(wave, self.n_fft, self.hop, self.win)[:, :, :width]
        mel = torch.matmul(power.transpose(1, 2), self.filterbank)  # [B, T, n_mels]
        mask = lengths_to_mask(counts, width)
        features = torch.log(mel + LOG_FLOOR) * mask[:, :, None]
        return features, mask


class LogMel:
    """Log-mel filterbank frontend.

    Features are ``log(mel power + 1e-6)`` with a periodic Hann window, centred frames, slaney
    mel scale and slaney (equal-area) filter normalisation, the librosa defaults. No mean or
    variance normalisation is applied; models normalise if they need to.

    Args:
        n_mels: Number of mel bands (the feature dimension).
        win_ms: Window length in milliseconds (also the FFT size).
        hop_ms: Hop between frames in milliseconds.
        sample_rate: Input sample rate in Hz.
        f_min: Lowest mel edge in Hz. 20 Hz is a choice (not from a paper): it drops the DC
            bin and sub-audible rumble that carry no emotion cue.
        f_max: Highest mel edge in Hz; ``None`` means ``sample_rate / 2``.

    Attributes:
        name: ``"logmel"``.
        dim: ``n_mels``.
        frame_seconds: Hop of the output frames in seconds.
    """

    name = "logmel"

    def __init__(
        self,
        n_mels: int = 64,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        sample_rate: int = 16000,
        f_min: float = 20.0,
        f_max: float | None = None,
    ) -> None:
        self.n_mels = int(n_mels)
        self.win_ms = float(win_ms)
        self.hop_ms = float(hop_ms)
        self.sample_rate = int(sample_rate)
        self.f_min = float(f_min)
        self.f_max = None if f_max is None else float(f_max)
        self.win = round(self.win_ms * self.sample_rate / 1000.0)
        self.hop = round(self.hop_ms * self.sample_rate / 1000.0)
        if self.win < 2 or self.hop < 1:
            raise ConfigError(
                f"log-mel window/hop too short: win_ms={win_ms}, hop_ms={hop_ms} "
                f"at {sample_rate} Hz"
            )
        self.n_fft = self.win
        self.dim = self.n_mels
        self.frame_seconds = self.hop / self.sample_rate
        self.norm: MelNorm = "slaney"
        self.scale: MelScale = "slaney"
        self._filterbank = mel_filterbank(
            self.n_fft, self.n_mels, self.sample_rate, self.f_min, self.f_max, self.norm, self.scale
        )
        self._module: LogMelModule | None = None

    def config(self) -> dict[str, Any]:
        """Plain JSON values that fully determine the output (a cache key)."""
        return {
            "name": self.name,
            "n_mels": self.n_mels,
            "win_ms": self.win_ms,
            "hop_ms": self.hop_ms,
            "sample_rate": self.sample_rate,
            "f_min": self.f_min,
            "f_max": self.f_max,
        }

    def torch_module(self) -> LogMelModule:
        """A module mapping ``(wave [B, N], lengths [B]) -> (features [B, T, n_mels], mask)``.

        Each call returns a new module (it has no trainable parameters).
        """
        return LogMelModule(self.n_fft, self.win, self.hop, self._filterbank.clone())

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Compute features for one signal.

        Args:
            signal: Mono waveform ``[samples]`` at ``sample_rate`` (float).

        Returns:
            Features ``[1 + samples // hop, n_mels]`` (float32).

        Raises:
            AudioError: If the signal is not 1-D, is empty or holds NaN/inf.
        """
        wave = check_signal(signal)
        if self._module is None:
            self._module = self.torch_module()
        with torch.inference_mode():
            tensor = torch.from_numpy(wave)[None, :]
            features, _ = self._module(tensor, torch.tensor([wave.shape[0]]))
        return features[0].numpy()

    def __getstate__(self) -> dict[str, Any]:
        # Data-loader workers get the options only; the module is rebuilt on first use.
        state = self.__dict__.copy()
        state["_module"] = None
        return state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"LogMel({args})"
