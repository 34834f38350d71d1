"""HFEncoder on tiny randomly initialised models, saved and loaded back like a Hub checkpoint.

No pretrained weights are available offline, so each test model is a 2-layer, 32-wide version of
the real architecture, written with ``save_pretrained`` and loaded through the same
``from_pretrained(name_or_path)`` path a Hub name takes. Everything runs with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from emovox.errors import AudioError, ConfigError, EmovoxError  # noqa: E402
from emovox.features.ssl import HFEncoder  # noqa: E402

# transformers' WavLM attention mixes a bool padding mask with a float position bias.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Support for mismatched key_padding_mask:UserWarning"
)

SAMPLE_RATE = 16000
LAYERS = 2
DIM = 32

# A tiny wav2vec 2.0-style feature encoder: receptive field 20 samples, hop 10 samples.
TINY_W2V = dict(
    hidden_size=DIM,
    num_hidden_layers=LAYERS,
    num_attention_heads=2,
    intermediate_size=37,
    conv_dim=(32, 32),
    conv_kernel=(10, 3),
    conv_stride=(5, 2),
    num_conv_pos_embeddings=8,
    num_conv_pos_embedding_groups=2,
)
# A tiny Whisper whose context is 1 s (50 positions x 2 x 160-sample hop), so chunking is tested.
TINY_WHISPER = dict(
    d_model=DIM,
    encoder_layers=LAYERS,
    encoder_attention_heads=2,
    encoder_ffn_dim=37,
    decoder_layers=1,
    decoder_attention_heads=2,
    decoder_ffn_dim=37,
    num_mel_bins=80,
    max_source_positions=50,
    max_target_positions=16,
    vocab_size=16,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    decoder_start_token_id=3,
)


def w2v_frames(num_samples: int) -> int:
    """The tiny feature encoder's length formula, written out."""
    n = num_samples
    for kernel, stride in zip(TINY_W2V["conv_kernel"], TINY_W2V["conv_stride"], strict=True):
        n = (n - kernel) // stride + 1
    return n


def tone(seconds: float, f0_hz: float = 150.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = 0.3 * np.sin(2 * np.pi * f0_hz * t) + 0.01 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def offline():
    """HF_HUB_OFFLINE=1 for the whole module (huggingface_hub reads it once, at import)."""
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield


def save(model, path: Path, extractor=None) -> str:
    model.save_pretrained(path)
    if extractor is not None:
        extractor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Tiny checkpoints on disk: name -> directory."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("hf")
    t = transformers
    fe = t.Wav2Vec2FeatureExtractor
    return {
        # Layer-norm feature encoder + attention mask: padding does not leak into valid frames.
        "wavlm": save(
            t.WavLMModel(t.WavLMConfig(feat_extract_norm="layer", **TINY_W2V)),
            root / "wavlm",
            fe(do_normalize=True, return_attention_mask=True),
        ),
        # Pre-norm ("stable layer norm", like WavLM Large), no preprocessor file: fallbacks.
        "wav2vec2": save(
            t.Wav2Vec2Model(
                t.Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, **TINY_W2V)
            ),
            root / "wav2vec2",
        ),
        # Group norm over time (like hubert-base), trained without normalisation or masks.
        "hubert": save(
            t.HubertModel(t.HubertConfig(feat_extract_norm="group", **TINY_W2V)),
            root / "hubert",
            fe(do_normalize=False, return_attention_mask=False),
        ),
        "data2vec": save(
            t.Data2VecAudioModel(t.Data2VecAudioConfig(**TINY_W2V)), root / "data2vec"
        ),
        "whisper": save(
            t.WhisperModel(t.WhisperConfig(**TINY_WHISPER)),
            root / "whisper",
            t.WhisperFeatureExtractor(feature_size=80),
        ),
    }


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2", "hubert", "data2vec", "whisper"])
def test_frames_match_length_formula(models: dict[str, str], kind: str) -> None:
    encoder = HFEncoder(models[kind])
    out = encoder(tone(1.0))
    expected = 50 if kind == "whisper" else w2v_frames(SAMPLE_RATE)  # 20 ms / tiny conv hop
    assert out.shape == (expected, DIM)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert encoder.num_frames(SAMPLE_RATE) == expected
    assert encoder.dim == DIM and encoder.num_layers == LAYERS
    if kind == "whisper":
        assert math.isclose(encoder.frame_seconds, 0.02)
        assert encoder(tone(1.5)).shape == (75, DIM)  # two 1 s windows, the second cut short
    else:
        assert math.isclose(encoder.frame_seconds, 10 / SAMPLE_RATE)
        assert encoder.min_samples == 20


@pytest.mark.parametrize("kind", ["wav2vec2", "whisper"])
def test_all_layers_stack_the_single_layers(models: dict[str, str], kind: str) -> None:
    signal = tone(1.0)
    stacked = HFEncoder(models[kind], layer="all")(signal)
    frames = HFEncoder(models[kind]).num_frames(signal.size)
    assert stacked.shape == (LAYERS + 1, frames, DIM)
    np.testing.assert_allclose(stacked[0], HFEncoder(models[kind], layer=0)(signal), atol=1e-5)
    # The last entry is the encoder's final output (after the final layer norm of pre-norm models).
    np.testing.assert_allclose(stacked[-1], HFEncoder(models[kind])(signal), atol=1e-5)
    final = stacked[-1]
    assert np.allclose(final.mean(-1), 0.0, atol=1e-4)  # layer-normed: zero mean per frame


@pytest.mark.parametrize("kind", ["wavlm", "whisper"])
def test_padded_batch_matches_single_clips(models: dict[str, str], kind: str) -> None:
    # Holds for layer-norm feature encoders with attention masks (WavLM here) and for Whisper
    # (every window is zero-padded anyway); not for group-norm models such as hubert-base.
    encoder = HFEncoder(models[kind])
    long, short = tone(1.2, seed=1), tone(0.7, 220.0, seed=2)
    wave = torch.zeros(2, long.size)
    wave[0], wave[1, : short.size] = torch.from_numpy(long), torch.from_numpy(short)
    lengths = torch.tensor([long.size, short.size])
    with torch.no_grad():
        features, mask = encoder.torch_module()(wave, lengths)
    assert mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [encoder.num_frames(long.size), encoder.num_frames(short.size)]
    n_short = encoder.num_frames(short.size)
    np.testing.assert_allclose(features[1, :n_short].numpy(), encoder(short), atol=1e-4)
    np.testing.assert_allclose(features[0].numpy(), encoder(long), atol=1e-4)
    assert not features[1, n_short:].any()  # padding frames are zero


def test_matches_transformers_reference_pipeline(models: dict[str, str]) -> None:
    """Feature extractor + model.forward as transformers documents them give the same frames."""
    signal = tone(1.0)
    for kind in ("wavlm", "whisper"):
        model = transformers.AutoModel.from_pretrained(models[kind]).eval()
        if kind == "whisper":
            extractor = transformers.WhisperFeatureExtractor(feature_size=80, chunk_length=1)
            inputs = extractor(signal, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.no_grad():
                reference = model.get_encoder()(inputs.input_features).last_hidden_state[0]
        else:
            extractor = transformers.AutoFeatureExtractor.from_pretrained(models[kind])
            inputs = extractor(signal, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with torch.no_grad():
                reference = model(**inputs).last_hidden_state[0]
        np.testing.assert_allclose(HFEncoder(models[kind])(signal), reference.numpy(), atol=1e-4)


def test_group_norm_model_masks_frames(models: dict[str, str]) -> None:
    encoder = HFEncoder(models["hubert"])
    assert not encoder.do_normalize  # read from its preprocessor_config.json
    lengths = torch.tensor([16000, 9000])
    _, mask = encoder.torch_module()(torch.randn(2, 16000), lengths)
    assert mask.sum(1).tolist() == [w2v_frames(16000), w2v_frames(9000)]


def test_input_normalisation_follows_feature_extractor(models: dict[str, str]) -> None:
    signal = tone(0.5)
    # do_normalize=True (WavLM's preprocessor file) and the fallback without a file: gain-invariant.
    for kind in ("wavlm", "wav2vec2"):
        encoder = HFEncoder(models[kind])
        assert encoder.do_normalize
        np.testing.assert_allclose(encoder(signal), encoder(3.0 * signal), atol=1e-4)
    hubert = HFEncoder(models["hubert"])
    assert not np.allclose(hubert(signal), hubert(3.0 * signal), atol=1e-4)


def test_whisper_log_mel_matches_feature_extractor(models: dict[str, str]) -> None:
    module = HFEncoder(models["whisper"]).torch_module()
    signal = tone(1.0)
    extractor = transformers.WhisperFeatureExtractor(feature_size=80, chunk_length=1)
    reference = extractor(signal, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
    ours = module.log_mel(torch.from_numpy(signal)[None]).numpy()
    assert not HFEncoder(models["whisper"]).do_normalize
    assert ours.shape == reference.shape == (1, 80, 100)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_frozen_by_default(models: dict[str, str]) -> None:
    encoder = HFEncoder(models["wavlm"])
    module = encoder.torch_module()
    assert encoder.torch_module() is module
    assert not any(p.requires_grad for p in module.parameters())
    module.train()
    assert module.training and not module.model.training  # no dropout in a frozen encoder
    signal = tone(0.5)
    np.testing.assert_array_equal(encoder(signal), encoder(signal))
    assert encoder.cacheable


@pytest.mark.parametrize(
    ("kind", "trainable"),
    [
        ("wavlm", ("encoder.layers.1.",)),
        ("wav2vec2", ("encoder.layers.1.", "encoder.layer_norm.")),  # pre-norm: final LN too
        ("whisper", ("layers.1.", "layer_norm.")),
    ],
)
def test_top1_unfreezes_only_the_last_layer(
    models: dict[str, str], kind: str, trainable: tuple[str, ...]
) -> None:
    encoder = HFEncoder(models[kind], finetune="top:1")
    module = encoder.torch_module()
    names = [n for n, p in module.model.named_parameters() if p.requires_grad]
    assert names and all(n.startswith(trainable) for n in names)
    assert any(n.startswith(trainable[0]) for n in names)
    assert not encoder.cacheable
    features, mask = module(torch.from_numpy(tone(0.5))[None], torch.tensor([8000]))
    features[mask].sum().backward()
    assert all(p.grad is not None for n, p in module.model.named_parameters() if n in names)


def test_finetune_all(models: dict[str, str]) -> None:
    module = HFEncoder(models["wavlm"], finetune="all").torch_module()
    assert all(p.requires_grad for p in module.model.parameters())


def test_weighted_layers(models: dict[str, str]) -> None:
    path = models["wavlm"]
    encoder = HFEncoder(path, layer="weighted")
    module = encoder.torch_module()
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable == ["layer_weights.logits"]
    assert module.layer_weights.logits.shape == (LAYERS + 1,)
    signal = tone(0.5)
    # Untrained weights are uniform: the mean of all layers.
    np.testing.assert_allclose(
        encoder(signal), HFEncoder(path, layer="all")(signal).mean(0), atol=1e-5
    )
    features, mask = module(torch.from_numpy(signal)[None], torch.tensor([signal.size]))
    features.pow(2).mean().backward()
    grad = module.layer_weights.logits.grad
    assert grad is not None and grad.abs().sum() > 0


def test_torch_module_all_layers_shape(models: dict[str, str]) -> None:
    module = HFEncoder(models["wavlm"], layer="all").torch_module()
    features, mask = module(torch.randn(2, 8000), torch.tensor([8000, 4000]))
    assert features.shape == (2, LAYERS + 1, w2v_frames(8000), DIM)
    assert mask.shape == (2, w2v_frames(8000))


def test_config_is_json_and_rebuilds_the_frontend(models: dict[str, str]) -> None:
    config = HFEncoder(models["wavlm"], layer=-1).config()
    assert json.loads(json.dumps(config)) == config
    assert config["name_or_path"] == models["wavlm"]
    assert config["layer"] == LAYERS  # -1 normalised
    rebuilt = HFEncoder(**{k: v for k, v in config.items() if k != "name"})
    assert rebuilt.config() == config
    other = HFEncoder(models["wav2vec2"]).config()
    assert other["model_config_sha256"] != config["model_config_sha256"]
    # A checkpoint's frontend config refuses another model under the same options.
    with pytest.raises(ConfigError, match="not the model"):
        HFEncoder(models["wav2vec2"], model_config_sha256=config["model_config_sha256"])


def test_missing_model_offline_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(EmovoxError) as info:
        HFEncoder("emovox-tests/no-such-model")
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "cannot load 'emovox-tests/no-such-model': not a local path and not in the "
        "Hugging Face cache (offline?)"
    )
    with pytest.raises(EmovoxError, match="cannot load") as info:
        HFEncoder(str(tmp_path))  # exists, but has no config.json
    assert "\n" not in str(info.value)


def test_bad_options(models: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="out of range"):
        HFEncoder(models["wavlm"], layer=LAYERS + 1)
    with pytest.raises(ConfigError, match="layers"):
        HFEncoder(models["wavlm"], finetune=f"top:{LAYERS + 1}")
    with pytest.raises(ConfigError, match="finetune"):
        HFEncoder(models["wavlm"], finetune="some")
    with pytest.raises(ConfigError, match="layer"):
        HFEncoder(models["wavlm"], layer="last")
    with pytest.raises(ConfigError, match="expects 16000 Hz"):
        HFEncoder(models["wavlm"], sample_rate=8000)
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not a speech encoder"):
        HFEncoder(str(tmp_path))
    encoder = HFEncoder(models["wavlm"])
    with pytest.raises(AudioError, match="too short"):
        encoder(np.zeros(10, dtype=np.float32))
