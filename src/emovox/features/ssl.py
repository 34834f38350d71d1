"""Self-supervised speech encoders (WavLM, HuBERT, wav2vec 2.0, Whisper) from Hugging Face.

:class:`HFEncoder` wraps any speech encoder that ``transformers`` can load with
``AutoModel.from_pretrained(name_or_path)``, from the Hub or from a local directory:

* the wav2vec 2.0 family (``wav2vec2``, ``hubert``, ``wavlm``, ``data2vec-audio`` and relatives):
  raw waveform in, one frame per 20 ms out (the product of the convolutional strides);
* Whisper: only the encoder is kept; the waveform becomes Whisper's 80/128-bin log-mel spectrogram
  inside the module, so augmentation and fine-tuning see the raw waveform too.

It returns one chosen layer (``[time, dim]``), all layers (``[layers + 1, time, dim]``) or, for
training, a learned softmax-weighted sum of the layers (the SUPERB recipe). The encoder is frozen
by default; ``finetune="all"`` or ``"top:N"`` makes it (part of it) trainable through
:meth:`HFEncoder.torch_module`.

Layer numbering: index 0 is the input of the first transformer layer, index ``k`` the output of
layer ``k``, and the last index is the encoder's final output (``last_hidden_state``, i.e. after
the final layer norm of pre-norm models such as WavLM Large and Whisper). ``transformers`` 4.x
returns exactly that from ``output_hidden_states``; 5.x returns the last layer *before* that norm
for the wav2vec 2.0 family, so the last entry is replaced by ``last_hidden_state`` here to keep
one meaning across versions.

``transformers`` (and ``torch``) are the optional extra ``hf``: ``pip install 'emovox[hf]'``.
Weights for WavLM / HuBERT / wav2vec 2.0 need a network the first time; with ``HF_HUB_OFFLINE=1``
only what is already in the Hugging Face cache (or a local directory) loads.

Example (needs the weights once; 20 ms frames of WavLM Large's 1024-d last layer)::

    encoder = HFEncoder("microsoft/wavlm-large")
    features = encoder(signal)  # float32 [frames, 1024]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from typing import Any

import numpy as np

from emovox.errors import AudioError, ConfigError, EmovoxError, require

#: ``model_type`` values handled as Whisper (log-mel input, encoder only).
WHISPER_TYPES = frozenset({"whisper"})


class HFEncoder:
    """A Hugging Face speech encoder as a frontend: signal -> ``float32 [time, dim]``.

    The configuration and feature-extractor files are read when the object is built (cheap, and
    it fails early with a clear message); the weights are loaded on first use, so a feature cache
    can check :meth:`config` without touching them.

    Input handling follows the model's own feature extractor (``preprocessor_config.json``):
    wav2vec 2.0-style models get per-utterance zero-mean unit-variance normalisation when its
    ``do_normalize`` is true, or when there is no such file; padding is zeroed and an attention
    mask is passed when its ``return_attention_mask`` is true (no file: when
    ``feat_extract_norm == "layer"``). Models with group norm over time (``feat_extract_norm ==
    "group"``, e.g. wav2vec2-base, hubert-base) were trained without attention masks; for them a
    padded batch gives slightly different features than each clip alone, exactly as in
    ``transformers``. Whisper input is processed in windows of the model's context (30 s for the
    released models), each padded with zeros as Whisper expects; frames past the signal are
    dropped, so the output has one frame per 20 ms of signal.

    Layer drop is switched off (``layerdrop = 0``): it would drop entries of the per-layer output
    that ``"all"`` and ``"weighted"`` rely on. In training mode ``transformers`` still applies the
    model's dropout and SpecAugment-style time masking (``apply_spec_augment``) to the trainable
    encoder; a frozen encoder always stays in eval mode.

    Attributes:
        name: Frontend family name, ``"ssl"``.
        name_or_path: Hub name (``"microsoft/wavlm-large"``) or local directory.
        layer: Index into the ``layers + 1`` outputs, ``"all"`` or ``"weighted"``.
        finetune: ``"none"``, ``"all"`` or ``"top:N"``.
        sample_rate: Input rate in Hz (16000 for every released model).
        dim: Features per frame (the model's hidden size).
        num_layers: Transformer layers; outputs are indexed ``0 .. num_layers``.
        frame_seconds: Hop between output frames in seconds (0.02 for the released models).
        min_samples: Shortest signal that yields one frame (400 samples for wav2vec 2.0 models).
        cacheable: False when the output depends on trained parameters (fine-tuning or the learned
            layer weights), so features must not be cached.
    """

    name = "ssl"

    def __init__(
        self,
        name_or_path: str,
        layer: int | str = -1,
        finetune: str = "none",
        sample_rate: int = 16000,
        model_config_sha256: str | None = None,
    ) -> None:
        """Read the model's configuration and check the options.

        Args:
            name_or_path: Hugging Face Hub name or local directory with ``config.json``.
            layer: Which output to return: an index (``-1`` = last, ``0`` = input of the first
                transformer layer), ``"all"`` for every layer stacked, or ``"weighted"`` for a
                learned softmax-weighted sum (trained through :meth:`torch_module`; uniform
                weights until then).
            finetune: ``"none"`` (frozen), ``"all"`` (every parameter trainable) or ``"top:N"``
                (only the last ``N`` transformer layers, plus the final layer norm of pre-norm
                models, are trainable).
            sample_rate: Rate of the signals passed in, Hz; must match the model's feature
                extractor when it names one.
            model_config_sha256: If given (it is part of :meth:`config`), the model's files must
                have this hash, so a checkpoint's frontend config refuses a different model.

        Raises:
            EmovoxError: If the model cannot be loaded (offline and not cached, for example).
            ConfigError: If an option is invalid or the model is not a supported speech encoder.
            MissingExtraError: If ``transformers`` or ``torch`` is not installed.
        """
        transformers = require("transformers", "hf")
        require("torch", "hf")
        self.name_or_path = str(name_or_path)
        self.layer = _parse_layer(layer)
        self.finetune = _parse_finetune(finetune)
        self.sample_rate = int(sample_rate)

        hf_config = _load(transformers.AutoConfig, self.name_or_path)
        model_type = str(getattr(hf_config, "model_type", ""))
        self._whisper = model_type in WHISPER_TYPES
        if not self._whisper and not (
            hasattr(hf_config, "conv_kernel") and hasattr(hf_config, "conv_stride")
        ):
            raise ConfigError(
                f"'{self.name_or_path}' is a '{model_type}' model, not a speech encoder: "
                "use a wav2vec2, HuBERT, WavLM, Data2Vec-audio or Whisper checkpoint"
            )
        if getattr(hf_config, "add_adapter", False):
            raise ConfigError(
                f"'{self.name_or_path}' has a length-changing adapter (add_adapter=true), "
                "which emovox does not support"
            )
        self._config_sha256 = _files_hash(transformers, self.name_or_path)
        if model_config_sha256 is not None and model_config_sha256 != self._config_sha256:
            raise ConfigError(
                f"'{self.name_or_path}' is not the model this frontend config was made with "
                f"(config sha256 {self._config_sha256[:12]}, expected {model_config_sha256[:12]})"
            )
        for key in ("layerdrop", "encoder_layerdrop"):  # see the class docstring
            if hasattr(hf_config, key):
                setattr(hf_config, key, 0.0)
        self._hf_config = hf_config

        extractor = _load_feature_extractor(transformers, self.name_or_path)
        if self._whisper and extractor is None:
            extractor = transformers.WhisperFeatureExtractor(
                feature_size=hf_config.num_mel_bins, sampling_rate=self.sample_rate
            )
        extractor_rate = getattr(extractor, "sampling_rate", None)
        if extractor_rate is not None and int(extractor_rate) != self.sample_rate:
            raise ConfigError(
                f"'{self.name_or_path}' expects {extractor_rate} Hz input, "
                f"not sample_rate={self.sample_rate}"
            )
        self._extractor = extractor
        self.do_normalize = bool(getattr(extractor, "do_normalize", not self._whisper))
        if self._whisper:
            self.num_layers = int(hf_config.encoder_layers)
            self.dim = int(hf_config.d_model)
            hop = int(extractor.hop_length)
            # Whisper's frames: mel hop, then a stride-2 convolution; as one "conv" layer with
            # kernel 1 (a frame per started 2 * hop samples, see _num_frames).
            self._conv: list[tuple[int, int]] = [(1, 2 * hop)]
            self.frame_seconds = 2 * hop / self.sample_rate
            self.min_samples = 1
            self._use_attention_mask = False  # the Whisper encoder ignores attention masks
        else:
            self.num_layers = int(hf_config.num_hidden_layers)
            self.dim = int(hf_config.hidden_size)
            self._conv = [
                (int(k), int(s))
                for k, s in zip(hf_config.conv_kernel, hf_config.conv_stride, strict=True)
            ]
            self.frame_seconds = math.prod(s for _, s in self._conv) / self.sample_rate
            self.min_samples = _receptive_field(self._conv)
            self._use_attention_mask = bool(
                getattr(
                    extractor,
                    "return_attention_mask",
                    getattr(hf_config, "feat_extract_norm", "layer") == "layer",
                )
            )
        if (
            isinstance(self.layer, int)
            and not -self.num_layers - 1 <= self.layer <= self.num_layers
        ):
            raise ConfigError(
                f"layer={self.layer} is out of range for '{self.name_or_path}', which has "
                f"outputs 0..{self.num_layers} (or -1..-{self.num_layers + 1})"
            )
        top = _top_layers(self.finetune)
        if top is not None and not 1 <= top <= self.num_layers:
            raise ConfigError(
                f"finetune='{self.finetune}': '{self.name_or_path}' has {self.num_layers} layers"
            )
        self.cacheable = self.finetune == "none" and self.layer != "weighted"
        self._module: Any = None

    def config(self) -> dict[str, Any]:
        """Plain JSON values that determine the output of the *pretrained* encoder.

        ``model_config_sha256`` hashes the model's ``config.json`` and
        ``preprocessor_config.json`` as stored (without bookkeeping keys such as the
        ``transformers`` version), so another model under the same name or local path changes
        the key; new weights under unchanged configuration files do not. Integer layers are
        normalised to ``0 .. num_layers``. Features of a fine-tuned encoder or of learned layer
        weights also depend on training (see :attr:`cacheable`). ``build_frontend(config)`` (all
        keys but ``name`` are constructor arguments) rebuilds an equal frontend.
        """
        layer = self.layer
        if isinstance(layer, int):
            layer %= self.num_layers + 1
        return {
            "name": self.name,
            "name_or_path": self.name_or_path,
            "layer": layer,
            "finetune": self.finetune,
            "sample_rate": self.sample_rate,
            "model_config_sha256": self._config_sha256,
        }

    def num_frames(self, num_samples: int) -> int:
        """Output frames for a signal of ``num_samples`` samples.

        wav2vec 2.0 family: the convolutional feature encoder's length formula
        (``floor((n - kernel) / stride) + 1`` per layer). Whisper: one frame per 20 ms started,
        ``ceil(n / (2 * hop))``.
        """
        return _num_frames(int(num_samples), self._conv)

    def torch_module(self) -> Any:
        """The encoder as a ``torch.nn.Module`` (built on first call, then the same object).

        ``forward(wave, lengths)`` takes ``wave`` float ``[batch, samples]`` at
        :attr:`sample_rate`, zero-padded, and ``lengths`` long ``[batch]`` in samples, and returns
        ``(features, mask)``: ``features`` float ``[batch, frames, dim]`` (``[batch, layers + 1,
        frames, dim]`` for ``layer="all"``), zero on padding frames, and ``mask`` bool ``[batch,
        frames]``, True on valid frames. Its only own parameters are ``layer_weights``
        (a :class:`~emovox.layers.LayerWeighting` over the ``layers + 1`` hidden states, for
        ``layer="weighted"``); the Hugging Face model is ``.model``.
        """
        if self._module is None:
            transformers = require("transformers", "hf")
            model = _load(transformers.AutoModel, self.name_or_path, config=self._hf_config)
            if self._whisper:
                model = model.get_encoder()
            model = model.float()
            self._module = _module_class()(self, model)
        return self._module

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """Encode one clip with the current weights, in eval mode and without gradients.

        Args:
            signal: Mono waveform, float, shape ``[samples]``, at :attr:`sample_rate`.

        Returns:
            ``float32 [frames, dim]``, or ``[layers + 1, frames, dim]`` for ``layer="all"``, with
            ``frames == num_frames(len(signal))``.

        Raises:
            AudioError: If the signal is not one-dimensional or shorter than :attr:`min_samples`.
        """
        torch = require("torch", "hf")
        signal = np.asarray(signal, dtype=np.float32)
        if signal.ndim != 1:
            raise AudioError(f"the encoder needs a mono signal [samples], got shape {signal.shape}")
        module = self.torch_module()
        device = next(module.parameters()).device
        wave = torch.from_numpy(np.ascontiguousarray(signal))[None].to(device)
        lengths = torch.tensor([signal.size], dtype=torch.long, device=device)
        training = module.training
        module.eval()
        try:
            with torch.no_grad():
                features, _ = module(wave, lengths)
        finally:
            module.train(training)
        result: np.ndarray = features[0].float().cpu().numpy()
        return result

    def __repr__(self) -> str:
        return (
            f"HFEncoder({self.name_or_path!r}, layer={self.layer!r}, "
            f"finetune={self.finetune!r}, sample_rate={self.sample_rate})"
        )


def _parse_layer(layer: int | str) -> int | str:
    if isinstance(layer, str) and layer.lstrip("-").isdigit():
        layer = int(layer)
    if isinstance(layer, bool) or not (isinstance(layer, int) or layer in ("all", "weighted")):
        raise ConfigError(f"layer must be an integer, 'all' or 'weighted', not {layer!r}")
    return layer


def _parse_finetune(finetune: str) -> str:
    if finetune in ("none", "all"):
        return finetune
    if isinstance(finetune, str) and finetune.startswith("top:") and finetune[4:].isdigit():
        return f"top:{int(finetune[4:])}"
    raise ConfigError(f"finetune must be 'none', 'all' or 'top:N', not {finetune!r}")


def _top_layers(finetune: str) -> int | None:
    return int(finetune[4:]) if finetune.startswith("top:") else None


def _num_frames(num_samples: int, conv: list[tuple[int, int]]) -> int:
    """Output length of a stack of unpadded 1-d convolutions ``[(kernel, stride), ...]``."""
    n = num_samples
    for kernel, stride in conv:
        n = 0 if n < kernel else (n - kernel) // stride + 1
    return n


def _receptive_field(conv: list[tuple[int, int]]) -> int:
    """Samples one output frame of a stack of 1-d convolutions ``[(kernel, stride), ...]`` sees."""
    field = 1
    for kernel, stride in reversed(conv):
        field = (field - 1) * stride + kernel
    return field


def _files_hash(transformers: Any, name_or_path: str) -> str:
    """sha256 of the model's configuration files as stored, without bookkeeping keys.

    Hashing the files, not the loaded config object, keeps the hash independent of the
    ``transformers`` version (new versions add default attributes to config objects).
    """
    contents: dict[str, Any] = {}
    for filename in ("config.json", "preprocessor_config.json"):
        try:
            path = transformers.utils.cached_file(name_or_path, filename)
            with open(path, encoding="utf-8") as handle:
                values = json.load(handle)
        except (OSError, ValueError, TypeError):
            continue  # no preprocessor file: the defaults apply
        contents[filename] = {
            key: value
            for key, value in values.items()
            if not key.startswith("_") and key != "transformers_version"
        }
    text = json.dumps(contents, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load(factory: Any, name_or_path: str, **kwargs: Any) -> Any:
    """``factory.from_pretrained(name_or_path)`` with a one-line EmovoxError on failure."""
    try:
        return factory.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        if os.path.exists(name_or_path):
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise EmovoxError(f"cannot load '{name_or_path}': {reason}") from exc
        raise EmovoxError(
            f"cannot load '{name_or_path}': not a local path and not in the Hugging Face cache "
            "(offline?)"
        ) from exc


def _load_feature_extractor(transformers: Any, name_or_path: str) -> Any:
    """The model's feature extractor, or None when it has no ``preprocessor_config.json``."""
    try:
        return transformers.AutoFeatureExtractor.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError):
        return None


_MODULE_CLASS: Any = None


def _module_class() -> Any:
    """Define the torch module class on first use, so importing emovox never imports torch."""
    global _MODULE_CLASS
    if _MODULE_CLASS is not None:
        return _MODULE_CLASS
    torch = require("torch", "hf")
    from emovox.layers import LayerWeighting

    module_base: Any = torch.nn.Module

    class HFEncoderModule(module_base):
        """Waveform -> (features, mask) with a Hugging Face encoder; see HFEncoder.torch_module."""

        def __init__(self, encoder: HFEncoder, model: Any) -> None:
            super().__init__()
            self.model = model
            self.layer = encoder.layer
            self.frozen = encoder.finetune == "none"
            self.whisper = encoder._whisper
            self.do_normalize = encoder.do_normalize
            self.use_attention_mask = encoder._use_attention_mask
            self.min_samples = encoder.min_samples
            self.conv = encoder._conv
            self.num_layers = encoder.num_layers
            self.layer_weights = (LayerWeighting(encoder.num_layers + 1)
                                  if encoder.layer == "weighted" else None)
            if self.whisper:
                extractor = encoder._extractor
                self.hop = int(extractor.hop_length)
                self.n_fft = int(extractor.n_fft)
                # Whisper's context: max_source_positions frames after the stride-2 conv.
                self.window_samples = 2 * int(model.config.max_source_positions) * self.hop
                filters = np.asarray(extractor.mel_filters, dtype=np.float32).T  # [mels, freqs]
                self.register_buffer("mel_filters", torch.from_numpy(filters), persistent=False)
                self.register_buffer("stft_window", torch.hann_window(self.n_fft), persistent=False)
            self._set_trainable(encoder.finetune)

        def _set_trainable(self, finetune: str) -> None:
            # "all" keeps the model's own defaults (Whisper's position table stays frozen).
            if finetune == "all":
                return
            self.model.requires_grad_(False)
            top = _top_layers(finetune)
            if top is None:
                self.model.eval()
                return
            stack = self.model if self.whisper else self.model.encoder
            for block in stack.layers[-top:]:
                block.requires_grad_(True)
            # Pre-norm models apply one more layer norm after the last layer.
            if self.whisper or getattr(self.model.config, "do_stable_layer_norm", False):
                stack.layer_norm.requires_grad_(True)

        def train(self, mode: bool = True) -> Any:
            """Set training mode; a frozen encoder stays in eval mode (no dropout, no masking)."""
            super().train(mode)
            if self.frozen:
                self.model.eval()
            return self

        def forward(self, wave: Any, lengths: Any) -> tuple[Any, Any]:
            """Encode a zero-padded batch; see HFEncoder.torch_module."""
            if wave.dim() != 2 or lengths.shape != wave.shape[:1]:
                raise AudioError(
                    f"expected wave [batch, samples] and lengths [batch], got "
                    f"{tuple(wave.shape)} and {tuple(lengths.shape)}"
                )
            shortest = int(lengths.min())
            if shortest < self.min_samples:
                raise AudioError(
                    f"signal too short for the encoder: {shortest} samples, "
                    f"it needs at least {self.min_samples}"
                )
            lengths = lengths.to(wave.device)
            grad = torch.no_grad() if self.frozen else contextlib.nullcontext()
            with grad:
                hidden = self._hidden_states(wave.float(), lengths)  # [L + 1, B, T, D]
            frames = self._frame_lengths(lengths)
            mask = torch.arange(hidden.shape[2], device=wave.device)[None] < frames[:, None]
            if self.layer == "all":
                features = hidden.transpose(0, 1)  # [B, L + 1, T, D]
                return features * mask[:, None, :, None], mask
            if self.layer_weights is not None:  # hidden is [L + 1, B, T, D]
                features = self.layer_weights(hidden.transpose(0, 1))
            else:
                features = hidden[self.layer]
            return features * mask[..., None], mask

        def _frame_lengths(self, lengths: Any) -> Any:
            lengths_fn = getattr(self.model, "_get_feat_extract_output_lengths", None)
            if lengths_fn is not None and not self.whisper:
                return lengths_fn(lengths).long()
            return torch.tensor(
                [_num_frames(int(n), self.conv) for n in lengths.tolist()], device=lengths.device
            )

        def _normalize(self, wave: Any, sample_mask: Any, lengths: Any) -> Any:
            # Per-utterance zero mean, unit (population) variance over the valid samples, as
            # the models' feature extractors do; padding stays zero.
            count = lengths.clamp(min=1)[:, None].to(wave.dtype)
            mean = wave.sum(dim=1, keepdim=True) / count
            centred = (wave - mean) * sample_mask
            variance = centred.pow(2).sum(dim=1, keepdim=True) / count
            return centred / torch.sqrt(variance + 1e-7)

        def _hidden_states(self, wave: Any, lengths: Any) -> Any:
            num_samples = wave.shape[1]
            sample_mask = torch.arange(num_samples, device=wave.device)[None] < lengths[:, None]
            wave = wave * sample_mask
            if self.do_normalize:
                wave = self._normalize(wave, sample_mask, lengths)
            if self.whisper:
                return self._whisper_hidden_states(wave)
            attention_mask = sample_mask.long() if self.use_attention_mask else None
            out = self.model(wave, attention_mask=attention_mask, output_hidden_states=True)
            return self._stack(out)

        def _stack(self, out: Any) -> Any:
            hidden = list(out.hidden_states)
            if len(hidden) != self.num_layers + 1:
                raise RuntimeError(
                    f"expected {self.num_layers + 1} hidden states, got {len(hidden)}"
                )
            hidden[-1] = out.last_hidden_state  # one meaning across transformers versions
            return torch.stack(hidden)

        def log_mel(self, wave: Any) -> Any:
            """Whisper's log-mel spectrogram: ``wave [batch, samples] -> [batch, mels, frames]``.

            Power STFT (Hann window, ``n_fft`` 400, hop 160, centred, last frame dropped) through
            the model's mel filter bank, log10 floored at 1e-10 and at the clip maximum minus 8,
            then scaled as ``(x + 4) / 4`` (Radford et al., 2022).
            """
            spec = torch.stft(
                wave,
                self.n_fft,
                self.hop,
                window=self.stft_window.to(wave.dtype),
                return_complex=True,
            )
            power = spec[..., :-1].abs().pow(2)
            log_spec = torch.matmul(self.mel_filters, power).clamp(min=1e-10).log10()
            ceiling = log_spec.amax(dim=(1, 2), keepdim=True)
            return (torch.maximum(log_spec, ceiling - 8.0) + 4.0) / 4.0

        def _whisper_hidden_states(self, wave: Any) -> Any:
            # Cut into windows of the model's context, each zero-padded to full length (the
            # encoder accepts nothing else), then glue the frames back together and drop the
            # frames past the end of the batch.
            batch, num_samples = wave.shape
            windows = max(1, -(-num_samples // self.window_samples))
            padded = torch.nn.functional.pad(wave, (0, windows * self.window_samples - num_samples))
            chunks = padded.reshape(batch * windows, self.window_samples)
            out = self.model(self.log_mel(chunks), output_hidden_states=True)
            hidden = self._stack(out)  # [L + 1, B * windows, P, D]
            layers, _, positions, dim = hidden.shape
            hidden = hidden.reshape(layers, batch, windows * positions, dim)
            return hidden[:, :, : _num_frames(num_samples, self.conv)]

    _MODULE_CLASS = HFEncoderModule
    return HFEncoderModule
