import pytest
import torch

from emovox.errors import ConfigError
from emovox.models import (
    FLAM,
    POOLINGS,
    AttentionPooling,
    AttentiveStatisticsPooling,
    MaxPooling,
    MeanPooling,
    ModelConfig,
    ModelOutput,
    SERModel,
    build_model,
    masked_softmax,
)

D = 32


def _padded(x, extra=5, fill="garbage"):
    """Append `extra` padded frames of garbage to x [B, T, D]; return padded x and mask."""
    b, t, d = x.shape
    pad = 100.0 * torch.randn(b, extra, d)
    if fill == "nan":
        pad[:, 0] = float("nan")
    xp = torch.cat([x, pad], dim=1)
    mask = torch.cat(
        [torch.ones(b, t, dtype=torch.bool), torch.zeros(b, extra, dtype=torch.bool)], 1
    )
    return xp, mask


def _pool(name):
    torch.manual_seed(0)
    if name == "flam":
        return FLAM(D, num_heads=4, dropout=0.0, context_broadcast=True).eval()
    return POOLINGS[name](D).eval()


@pytest.mark.parametrize("name", list(POOLINGS))
@pytest.mark.parametrize("fill", ["garbage", "nan"])
def test_padding_does_not_change_result(name, fill):
    pool = _pool(name)
    x = torch.randn(3, 7, D)
    ref, ref_w = pool(x, torch.ones(3, 7, dtype=torch.bool))
    xp, mask = _padded(x, fill=fill)
    out, w = pool(xp, mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert out.shape[-1] == pool.out_dim
    if w is not None:
        assert w.shape == (3, 12)
        torch.testing.assert_close(w[:, :7], ref_w, atol=1e-6, rtol=1e-5)
        assert torch.all(w[:, 7:] == 0)


def test_ragged_batch_matches_single():
    pool = _pool("flam")
    x = torch.randn(2, 9, D)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 4:] = False
    out, _ = pool(x, mask)
    single, _ = pool(x[1:, :4], None)
    torch.testing.assert_close(out[1], single[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["attention", "attstats", "flam"])
def test_attention_weights_sum_to_one(name):
    pool = _pool(name)
    x = torch.randn(4, 10, D)
    mask = torch.ones(4, 10, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 1:] = False
    _, w = pool(x, mask)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(4))
    assert torch.all(w[~mask] == 0) and torch.all(w >= 0)


def test_max_pooling_ignores_padding():
    x = -torch.ones(1, 3, 2)
    xp = torch.cat([x, 5 * torch.ones(1, 2, 2)], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    out, _ = MaxPooling(2)(xp, mask)
    torch.testing.assert_close(out, -torch.ones(1, 2))


def test_stats_pooling_is_mean_and_std_of_valid_frames():
    from emovox.models import StatsPooling

    x = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    out, w = StatsPooling(2)(x, mask)
    assert w is None and out.shape == (1, 4)
    torch.testing.assert_close(out[0], torch.tensor([2.0, 0.0, 1.0, 0.0]))


def test_mean_and_attstats_values():
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    mask = torch.tensor([[True, True, False]])
    out, w = MeanPooling(1)(x, mask)
    assert w is None and out.item() == pytest.approx(2.0)
    pool = AttentiveStatisticsPooling(1)
    torch.nn.init.zeros_(pool.score[2].weight)  # uniform attention
    out, _ = pool(x, mask)
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.0]]))


@pytest.mark.parametrize("name", list(POOLINGS))
def test_all_padded_row_is_finite(name):
    pool = _pool(name).train()
    x = torch.randn(2, 5, D, requires_grad=True)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1] = False
    out, w = pool(x, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], torch.zeros_like(out[1]))
    if w is not None:
        assert torch.all(w[1] == 0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_masked_softmax_empty_row():
    w = masked_softmax(torch.randn(2, 3), torch.tensor([[True, False, True], [False] * 3]))
    assert w[0, 1] == 0 and w[0].sum().item() == pytest.approx(1.0)
    assert torch.all(w[1] == 0)


def test_flam_heads_must_divide():
    with pytest.raises(ConfigError, match="hidden_dim"):
        FLAM(30, num_heads=16)
    with pytest.raises(ConfigError):
        SERModel(ModelConfig(input_dim=30, num_classes=4))
    SERModel(ModelConfig(input_dim=30, num_classes=4, hidden_dim=32))
    FLAM(384, num_heads=16)  # whisper tiny


@pytest.mark.parametrize("pooling", list(POOLINGS))
def test_model_forward_shapes_and_gradients(pooling):
    torch.manual_seed(0)
    config = ModelConfig(
        input_dim=20, num_classes=5, pooling=pooling, num_heads=4, hidden_dim=16, num_regression=3
    )
    model = build_model(config)
    x = torch.randn(3, 8, 20)
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[0, 5:] = False
    out = model(x, mask)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (3, 5) and out.embedding.shape == (3, 64)
    assert out.projection.shape == (3, 128) and out.regression.shape == (3, 3)
    torch.testing.assert_close(out.projection.norm(dim=-1), torch.ones(3))
    if pooling in ("mean", "max", "stats"):
        assert out.frame_weights is None
    else:
        assert out.frame_weights.shape == (3, 8)
    embedding, _ = model.features(x, mask)
    model.eval()
    torch.testing.assert_close(model.head(model.features(x, mask)[0]), model(x, mask).logits)
    model.train()
    (out.logits.sum() + out.projection.sum() + out.regression.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_model_padding_invariant_and_all_padded():
    torch.manual_seed(0)
    model = SERModel(ModelConfig(input_dim=D, num_classes=4, num_heads=4)).eval()
    x = torch.randn(2, 6, D)
    ref = model(x).logits
    xp, mask = _padded(x, fill="nan")
    torch.testing.assert_close(model(xp, mask).logits, ref, atol=1e-5, rtol=1e-5)
    mask[1] = False
    out = model(xp, mask)
    assert all(torch.isfinite(t).all() for t in (out.logits, out.embedding, out.projection))


def test_model_without_heads_and_config_errors():
    model = SERModel(ModelConfig(input_dim=8, num_classes=2, pooling="mean", projection_dim=0))
    out = model(torch.randn(1, 3, 8))
    assert out.projection is None and out.regression is None
    with pytest.raises(ConfigError):
        ModelConfig(input_dim=8, num_classes=2, pooling="lstm")
    with pytest.raises(ConfigError):
        ModelConfig(input_dim=8, num_classes=0)
    with pytest.raises(ValueError):
        model(torch.randn(3, 8))
    with pytest.raises(ValueError):
        model(torch.randn(1, 3, 8), torch.ones(1, 4, dtype=torch.bool))


def test_attention_pooling_learns_weights():
    pool = AttentionPooling(2)
    with torch.no_grad():
        pool.score.weight.copy_(torch.tensor([[10.0, 0.0]]))
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    _, w = pool(x)
    assert w[0, 0] > 0.99


def test_frame_stride_groups_frames_and_keeps_padding_invariance():
    torch.manual_seed(0)
    config = ModelConfig(input_dim=8, num_classes=3, num_heads=2, frame_stride=2)
    model = SERModel(config).eval()
    x = torch.randn(1, 7, 8)
    out = model(x, torch.ones(1, 7, dtype=torch.bool))
    # Weights come back at the input frame rate and sum to 1; frames of a group share one.
    w = out.frame_weights[0]
    assert w.shape == (7,) and torch.isclose(w.sum(), torch.tensor(1.0))
    assert torch.isclose(w[0], w[1]) and torch.isclose(w[2], w[3])
    padded = torch.cat([x, torch.full((1, 5, 8), 99.0)], dim=1)
    mask = torch.zeros(1, 12, dtype=torch.bool)
    mask[0, :7] = True
    out_padded = model(padded, mask)
    assert torch.allclose(out.logits, out_padded.logits, atol=1e-5)
    assert torch.all(out_padded.frame_weights[0, 7:] == 0)
    # Strided frames are the masked means of each pair.
    from emovox.models import _stride_frames

    pooled = _stride_frames(x, torch.ones(1, 7, dtype=torch.bool), 2)
    assert pooled.shape == (1, 4, 8)
    assert torch.allclose(pooled[0, 1], x[0, 2:4].mean(dim=0))
    assert torch.allclose(pooled[0, 3], x[0, 6])
    with pytest.raises(ConfigError):
        ModelConfig(input_dim=8, num_classes=3, frame_stride=0)


def test_flam_with_attentive_statistics_pooling():
    torch.manual_seed(0)
    model = SERModel(ModelConfig(input_dim=8, num_classes=3, num_heads=2, flam_pool="attstats"))
    assert model.pooling.out_dim == 16
    model.eval()
    x = torch.randn(2, 6, 8)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    out = model(x, mask)
    alone = model(x[1:, :4], mask[1:, :4])
    assert torch.allclose(out.logits[1], alone.logits[0], atol=1e-5)
    assert torch.allclose(out.frame_weights.sum(dim=1), torch.ones(2))
    with pytest.raises(ConfigError):
        FLAM(8, 2, pool="median")
