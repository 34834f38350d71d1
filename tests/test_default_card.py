"""The default model's card: the nested-selection paragraph comes from the committed summary."""

import json

import pytest


@pytest.fixture()
def card(load_benchmark):
    return load_benchmark("default_model")


def test_the_selection_paragraph_states_the_run_or_nothing(card, tmp_path, monkeypatch):
    monkeypatch.setattr(card, "REPO", tmp_path)
    assert card._selection_line() == ""  # not run yet: nothing claimed
    folder = tmp_path / "benchmarks" / "results" / "selection" / "default"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({
        "folds": 5, "chosen": {"C=0.1, equal": 3, "C=0.03, equal": 2},
        "committed_default": {"C": 0.1, "layer_weights": [1.0, 1.0, 1.0, 0.5, 0.5]},
        "mean_over_folds": {"ravdess": 76.04, "emodb": 83.26},
        "pooled": {"ravdess": 75.5, "emodb": 84.0}}))
    text = card._selection_line()
    assert "C=0.03, equal in 2 of 5 folds; C=0.1, equal in 3 of 5 folds" in text
    assert "UA ravdess 76.0, emodb 83.3 (mean over folds" in text
    assert "which gives ravdess 75.5, emodb 84.0" in text
