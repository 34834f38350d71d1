import math

import pytest
import torch
from torch.nn import functional as F

from emovox.errors import ConfigError
from emovox.losses import (
    LOSSES,
    CenterLoss,
    LossConfig,
    LossScaler,
    MLLLoss,
    combine_losses,
    cross_entropy_loss,
    focal_loss,
    kl_div_loss,
    supcon_loss,
)
from emovox.models import ModelConfig, ModelOutput, SERModel


def _one_hot(labels, c=4):
    return F.one_hot(torch.tensor(labels), c).float()


def test_kl_against_one_hot_equals_ce():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    target = _one_hot([0, 1, 2, 3, 1])
    torch.testing.assert_close(kl_div_loss(logits, target), cross_entropy_loss(logits, target))
    torch.testing.assert_close(
        cross_entropy_loss(logits, target), F.cross_entropy(logits, torch.tensor([0, 1, 2, 3, 1]))
    )
    # integer labels are accepted too
    torch.testing.assert_close(
        kl_div_loss(logits, torch.tensor([0, 1, 2, 3, 1])), kl_div_loss(logits, target)
    )


def test_kl_hand_computed_and_zero_safe():
    logits = torch.zeros(1, 3, requires_grad=True)
    target = torch.tensor([[0.5, 0.5, 0.0]])
    loss = kl_div_loss(logits, target)
    assert loss.item() == pytest.approx(math.log(1.5), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert kl_div_loss(torch.log(target + 1e-30), target).item() == pytest.approx(0.0, abs=1e-6)
    soft = torch.tensor([[0.2, 0.3, 0.5]])
    torch.testing.assert_close(
        kl_div_loss(torch.zeros(1, 3), soft),
        F.kl_div(torch.log_softmax(torch.zeros(1, 3), -1), soft, reduction="batchmean"),
    )


def test_focal():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    soft = torch.softmax(torch.randn(6, 4), -1)
    torch.testing.assert_close(
        focal_loss(logits, soft, gamma=0.0), cross_entropy_loss(logits, soft)
    )
    confident = torch.tensor([[5.0, 0.0, 0.0, 0.0]])
    target = _one_hot([0])
    assert focal_loss(confident, target) < cross_entropy_loss(confident, target)
    # hand-computed: p = [0.75, 0.25]
    logits = torch.tensor([[math.log(3.0), 0.0]])
    expected = -(0.25**2) * math.log(0.75)
    assert focal_loss(logits, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        expected, rel=1e-5
    )
    soft_expected = -0.5 * (0.25**2) * math.log(0.75) - 0.5 * (0.75**2) * math.log(0.25)
    assert focal_loss(logits, torch.tensor([[0.5, 0.5]])).item() == pytest.approx(
        soft_expected, rel=1e-5
    )
    weighted = focal_loss(logits, torch.tensor([[1.0, 0.0]]), alpha=[0.5, 2.0])
    assert weighted.item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_center_loss():
    center = CenterLoss(3, 4)
    with torch.no_grad():
        center.centers.copy_(torch.randn(3, 4))
    labels = [2, 0, 2]
    embedding = center.centers.detach()[labels].clone()
    assert center(embedding, _one_hot(labels, 3)).item() == 0.0
    shifted = embedding + torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert center(shifted, torch.tensor(labels)).item() == pytest.approx(0.5)
    # soft targets use the dominant label
    soft = torch.tensor([[0.1, 0.2, 0.7], [0.6, 0.4, 0.0], [0.0, 0.3, 0.7]])
    assert center(embedding, soft).item() == 0.0
    assert center.center_parameters()[0] is center.centers


def test_direct_center_update_moves_the_centers_at_the_stated_rate_whatever_the_weight():
    """center_update = "direct": one step of lr x the unweighted loss's gradient per batch."""
    from emovox.config import LossConfig
    from emovox.losses import MLLLoss

    lr = 0.1
    center = CenterLoss(2, 3, direct_lr=lr)
    assert center.center_parameters() == [] and not center.centers.requires_grad
    x = torch.tensor([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]], requires_grad=True)
    loss = center(x, torch.tensor([0, 0, 1]))
    # by hand: c0 <- 0 + lr * ((1 - 0) + (3 - 0)) / 3, c1 <- 0 + lr * (2 - 0) / 3
    expected = torch.tensor([[lr * 4 / 3, 0.0, 0.0], [0.0, lr * 2 / 3, 0.0]])
    torch.testing.assert_close(center.centers.detach(), expected)
    loss.backward()  # the loss (on the centers before the step) still pulls the embeddings
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 0, 0], [3.0, 0, 0], [0, 2.0, 0]]) / 3)
    center.eval()  # no update outside training
    before = center.centers.detach().clone()
    center(x, torch.tensor([0, 0, 1]))
    assert torch.equal(center.centers.detach(), before)
    # through the objective, the weight does not change the centers' step
    for weight in (0.01, 1.0):
        loss_fn = MLLLoss(LossConfig(kl=1.0, focal=0.0, center=weight, supcon=0.0,
                                     center_update="direct", center_lr=lr), 2, 3)
        assert loss_fn.center_parameters() == []
        assert loss_fn.center is not None and loss_fn.center.direct_lr == lr
    with pytest.raises(ConfigError, match="center_update"):
        LossConfig(center_update="sometimes")


def test_supcon_hand_computed():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    tau = 0.5
    # anchor 0: positive 1 (sim 0), others {1: 0, 2: 1}
    # anchor 1: positive 0 (sim 0), others {0: 0, 2: 0}
    anchor0 = -math.log(math.exp(0) / (math.exp(0) + math.exp(1 / tau)))
    anchor1 = -math.log(0.5)
    expected = (anchor0 + anchor1) / 2
    assert supcon_loss(z, labels, tau).item() == pytest.approx(expected, rel=1e-6)
    assert supcon_loss(z, _one_hot([0, 0, 1], 2), tau).item() == pytest.approx(expected, rel=1e-6)


def test_supcon_clustered_lower_than_shuffled_and_no_positive():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    centers = F.normalize(torch.randn(4, 16), dim=-1)
    z = F.normalize(centers[labels] + 0.05 * torch.randn(8, 16), dim=-1)
    shuffled = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    assert supcon_loss(z, labels) < supcon_loss(z, shuffled)
    lonely = torch.randn(4, 16, requires_grad=True)
    loss = supcon_loss(lonely, torch.arange(4))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(lonely.grad).all()
    assert supcon_loss(torch.randn(1, 16), torch.tensor([0])).item() == 0.0


def test_combine_losses_weights_and_skip():
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(3.0), "c": torch.tensor(float("nan"))}
    total, logs = combine_losses(terms, {"a": 1.0, "b": 0.5, "c": 0.0})
    assert total.item() == pytest.approx(3.5)
    assert "c" not in logs and logs["total"] == pytest.approx(3.5)
    with pytest.raises(ConfigError):
        combine_losses(terms, {"a": 1.0})
    with pytest.raises(ConfigError):
        combine_losses({"a": torch.tensor(1.0)}, {"a": 0.0})


@pytest.mark.parametrize("mode", ["max", "ema"])
def test_combine_losses_unit_scaling(mode):
    scaler = LossScaler(mode, momentum=0.5)
    torch.manual_seed(0)
    for step in range(30):
        values = {
            "kl": torch.tensor(2.0 * math.exp(-step / 10) + 0.1 * torch.rand(()).item()),
            "center": torch.tensor(50.0 * torch.rand(()).item()),
            "spiky": torch.tensor(100.0 if step == 20 else 1.0),
        }
        _, logs = combine_losses(values, {"kl": 1.0, "center": 1.0, "spiky": 1.0}, True, scaler)
        for name in values:
            assert 0.0 <= logs[f"{name}_unit"] <= 1.0 + 1e-9
    # per-batch rule without a scaler: each term scales to exactly 1, gradient of log L
    x = torch.tensor(4.0, requires_grad=True)
    total, logs = combine_losses({"a": x**2}, {"a": 1.0}, scale_to_unit=True)
    total.backward()
    assert logs["a_unit"] == 1.0 and x.grad.item() == pytest.approx(2 / 4)


def test_scaler_state_roundtrip_and_eval():
    scaler = LossScaler("max")
    scaler.denominator("kl", 3.0)
    assert scaler.denominator("kl", 1.0) == 3.0
    assert scaler.denominator("kl", 5.0, update=False) == 5.0
    assert scaler.state["kl"] == 3.0
    other = LossScaler()
    other.load_state_dict(scaler.state_dict())
    assert other.state == scaler.state


def _output(batch=6, classes=4):
    torch.manual_seed(0)
    model = SERModel(ModelConfig(input_dim=16, num_classes=classes, num_heads=4))
    return model, model(torch.randn(batch, 5, 16))


def test_mll_loss_terms_and_gradients():
    model, out = _output()
    target = _one_hot([0, 0, 1, 1, 2, 3])
    loss_fn = MLLLoss(LossConfig(ce=0.5), num_classes=4, embedding_dim=64)
    total, logs = loss_fn(out, target)
    assert set(logs) == {"kl", "focal", "center", "supcon", "ce", "total"}
    expected = (
        logs["kl"] + logs["focal"] + 0.01 * logs["center"] + 0.1 * logs["supcon"] + 0.5 * logs["ce"]
    )
    assert total.item() == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert loss_fn.center_parameters()[0].grad is not None


def test_mll_loss_zero_weights_skip_and_scaling():
    _, out = _output()
    target = torch.softmax(torch.randn(6, 4), -1)
    loss_fn = MLLLoss(LossConfig(focal=0.0, center=0.0, supcon=0.0), 4, 64)
    assert loss_fn.center is None and loss_fn.center_parameters() == []
    total, logs = loss_fn(out, target)
    assert set(logs) == {"kl", "total"}
    no_proj = ModelOutput(logits=out.logits, embedding=out.embedding)
    with pytest.raises(ConfigError):
        MLLLoss(LossConfig(), 4, 64)(no_proj, target)
    scaled = MLLLoss(LossConfig(scale_to_unit=True), 4, 64)
    total, logs = scaled(out, target)
    units = {k[: -len("_unit")]: logs[k] for k in logs if k.endswith("_unit")}
    assert set(units) == {"kl", "focal", "center", "supcon"}  # every active term is scaled
    assert all(0.0 <= v <= 1.0 for v in units.values())
    # the total is the weighted sum of the scaled terms, not of the raw ones
    weights = {"kl": 1.0, "focal": 1.0, "center": 0.01, "supcon": 0.1}
    assert total.item() == pytest.approx(sum(weights[k] * units[k] for k in units), rel=1e-5)
    assert total.item() != pytest.approx(sum(weights[k] * logs[k] for k in weights), rel=1e-3)
    scaled.eval()
    before = dict(scaled.scaler.state)
    scaled(out, target)
    assert scaled.scaler.state == before


def test_registry_and_config_errors():
    assert set(LOSSES) == {"kl", "ce", "focal", "center", "supcon", "vad", "sphere"}
    with pytest.raises(ConfigError):
        LossConfig(kl=-1.0)
    with pytest.raises(ConfigError):
        LossConfig(supcon_temperature=0.0)
