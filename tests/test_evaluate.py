import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)
from sklearn.metrics import confusion_matrix as sk_confusion

from emovox.evaluate import (
    ccc,
    classification_scores,
    confusion_matrix,
    macro_f1,
    per_class_recall,
    unweighted_accuracy,
    weighted_accuracy,
)

# A hand-computed case: 3 classes, 10 samples.
#   true a: 4 samples, predicted a a a b      -> recall 3/4
#   true b: 4 samples, predicted b b c c      -> recall 2/4
#   true c: 2 samples, predicted c a          -> recall 1/2
TRUE = list("aaaabbbbcc")
PRED = list("aaabbbccca")


def test_hand_computed_scores():
    assert weighted_accuracy(TRUE, PRED) == pytest.approx(6 / 10)
    assert unweighted_accuracy(TRUE, PRED) == pytest.approx((3 / 4 + 2 / 4 + 1 / 2) / 3)
    np.testing.assert_allclose(per_class_recall(TRUE, PRED, ["a", "b", "c"]), [0.75, 0.5, 0.5])
    # F1 a: tp 3, support 4, predicted 4 -> 6/8; b: tp 2, 4, 3 -> 4/7; c: tp 1, 2, 3 -> 2/5
    assert macro_f1(TRUE, PRED) == pytest.approx((6 / 8 + 4 / 7 + 2 / 5) / 3)
    cm = confusion_matrix(TRUE, PRED, ["a", "b", "c"])
    assert cm.tolist() == [[3, 1, 0], [0, 2, 2], [1, 0, 1]]


def test_label_order_is_respected():
    cm = confusion_matrix(TRUE, PRED, ["c", "b", "a"])
    assert cm.tolist() == [[1, 0, 1], [2, 2, 0], [0, 1, 3]]


def test_ua_ignores_absent_classes_but_wa_does_not():
    # "d" is a known label never present in the reference: it must not drag UA down.
    assert unweighted_accuracy(TRUE, PRED, ["a", "b", "c", "d"]) == pytest.approx(
        unweighted_accuracy(TRUE, PRED)
    )
    assert np.isnan(per_class_recall(TRUE, PRED, ["a", "b", "c", "d"])[3])


def test_unknown_label_and_shape_errors():
    with pytest.raises(ValueError, match="not in labels"):
        confusion_matrix(["a"], ["z"], ["a"])
    with pytest.raises(ValueError, match="equal length"):
        weighted_accuracy(["a", "b"], ["a"])


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 9))
    t = rng.integers(0, n_classes, size=200)
    # Correlated predictions with some classes never predicted.
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, max(2, n_classes - 1), size=200))
    assert weighted_accuracy(t, p) == pytest.approx(accuracy_score(t, p))
    assert unweighted_accuracy(t, p) == pytest.approx(balanced_accuracy_score(t, p))
    assert macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    labels = sorted(set(t) | set(p))
    np.testing.assert_array_equal(confusion_matrix(t, p, labels), sk_confusion(t, p, labels=labels))
    present = sorted(set(t))
    np.testing.assert_allclose(
        per_class_recall(t, p, present), recall_score(t, p, labels=present, average=None)
    )


def test_ccc_cases():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, 5 - x) == pytest.approx(-1.0)  # same mean, mirrored
    assert ccc(x, -x) == pytest.approx(-2.5 / 27.5)  # mean gap 5 counts against it
    # A constant shift keeps Pearson r = 1 but CCC drops: 2*cov/(vx+vy+(mx-my)^2)
    # vx = vy = cov = 1.25, shift 1 -> 2.5 / (2.5 + 1) = 0.714285...
    assert ccc(x, x + 1) == pytest.approx(2.5 / 3.5)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=500), rng.normal(size=500)
    ref = 2 * np.cov(a, b, bias=True)[0, 1] / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    assert ccc(a, b) == pytest.approx(ref)
    with pytest.raises(ValueError):
        ccc([1.0], [1.0])


def test_classification_scores_percent():
    scores = classification_scores(TRUE, PRED, ["a", "b", "c"])
    assert scores["wa"] == pytest.approx(60.0)
    assert scores["ua"] == pytest.approx(100 * (0.75 + 0.5 + 0.5) / 3)
    assert scores["per_class_recall"] == {"a": 75.0, "b": 50.0, "c": 50.0}
    assert scores["n"] == 10


def test_expected_calibration_error():
    from emovox.evaluate import expected_calibration_error

    rng = np.random.default_rng(0)
    n = 20000
    confidence = rng.uniform(0.5, 1.0, n)
    # calibrated: the top class is right with probability equal to its confidence
    correct = rng.uniform(size=n) < confidence
    probs = np.stack([confidence, 1 - confidence], axis=1)
    truth = np.where(correct, 0, 1)
    assert expected_calibration_error(truth, probs) < 0.02
    # always wrong at 0.9 confidence: ECE 0.9
    wrong = np.tile([[0.9, 0.1]], (10, 1))
    assert expected_calibration_error(np.ones(10, dtype=int), wrong) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1], [0.5, 0.5])
