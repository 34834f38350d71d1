"""The default model's card: the nested-selection paragraph comes from the committed summary."""

import json

import pytest


@pytest.fixture()
def card(load_benchmark):
    return load_benchmark("default_model")


def recipe(**changes):
    from emovox.config import load_recipe

    doc = load_recipe("default").to_dict()
    for key, value in changes.items():
        section, name = key.split("__")
        doc[section][name] = value
    return doc


def test_the_selection_paragraph_states_the_run_or_nothing(card, tmp_path, monkeypatch):
    monkeypatch.setattr(card, "REPO", tmp_path)
    assert card._selection_line(recipe()) == ""  # not run yet: nothing claimed
    folder = tmp_path / "benchmarks" / "results" / "selection" / "default"
    folder.mkdir(parents=True)
    (folder / "fold_1.json").write_text("{}")
    assert "being run for this recipe: 1 of 5 outer folds done" in card._selection_line(recipe())
    (folder / "summary.json").write_text(json.dumps({
        "folds": 5, "chosen": {"C=0.1, equal": 3, "C=0.03, equal": 2},
        "committed_default": {"C": 0.1, "layer_weights": [1.0, 1.0, 1.0, 0.5, 0.5]},
        "mean_over_folds": {"ravdess": 76.04, "emodb": 83.26},
        "pooled": {"ravdess": 75.5, "emodb": 84.0}}))
    before = recipe(frontend__depth=None, classic__prior=None,
                    classic__layer_weights=[1.0, 1.0, 1.0, 0.5, 0.5])
    text = card._selection_line(before)
    assert "C=0.03, equal in 2 of 5 folds; C=0.1, equal in 3 of 5 folds" in text
    assert "UA ravdess 76.0, emodb 83.3 (mean over folds" in text
    assert "which gives ravdess 75.5, emodb 84.0" in text
    assert "Inner UA of each choice" not in text  # no fold files: nothing to average
    for k, shift in ((1, 0.0), (2, 2.0)):
        (folder / f"fold_{k}.json").write_text(json.dumps({"candidates": [
            {"C": c, "layers": name, "inner_ua": ua + shift}
            for c in (0.1, 0.3) for name, ua in (("equal", 70.0), ("first_two_layers", 66.0))]}))
    text = card._selection_line(before)
    assert "averaged over C and the outer folds: equal 71.0, first_two_layers 67.0." in text
    assert "earlier default recipe" not in text
    # the recipe changed since: the paragraph says the run is for the earlier one
    stale = card._selection_line(recipe(frontend__depth=2, classic__layer_weights=None,
                                        classic__prior=None))
    assert ("**This run was made for an earlier default recipe** (layer_weights "
            "[1.0, 1.0, 1.0, 0.5, 0.5], depth None; today layer_weights None, depth 2)") in stale
    # a run that does not record the class prior was made without one
    unprior = card._selection_line(recipe(frontend__depth=None, classic__prior="uniform",
                                          classic__layer_weights=[1.0, 1.0, 1.0, 0.5, 0.5]))
    assert "earlier default recipe** (prior None; today prior uniform)" in unprior


def test_the_card_says_when_the_training_class_mix_is_taken_out(card):
    assert card._prior_line({"prior": None}) == ""
    assert "classic.prior" in card._prior_line({"prior": "uniform"})


def test_the_card_averages_folds_as_the_readme_does_and_says_so(card):
    doc = json.loads((card.OUT_JSON).read_text())
    for scores in doc["cv"].values():
        scores.pop("ua_fold_mean", None)
    pooled = card.render_card(doc, 1702)
    assert "UA (pooled over folds)" in pooled and "predates the per-fold record" in pooled
    doc["cv"]["ravdess"]["ua_fold_mean"] = 12.34  # impossible values, to find them again
    doc["cv"]["emodb"]["ua_fold_mean"] = 56.78
    per_fold = card.render_card(doc, 1702)
    assert "UA (mean of the folds) | UA (pooled)" in per_fold
    ravdess = doc["cv"]["ravdess"]
    assert f"| ravdess | {ravdess['n']} | 12.3 | {ravdess['ua']:.1f} |" in per_fold
    assert card.card_summary(doc)["cv_ua"] == {"ravdess": 12.3, "emodb": 56.8}
    assert card.card_summary(doc)["cv_averaging"] == "mean of the folds' UA"


def test_the_augment_paragraph_reads_every_outer_fold(card, tmp_path, monkeypatch):
    monkeypatch.setattr(card, "REPO", tmp_path)
    assert card._augment_line(recipe()) == ""  # not run yet: nothing claimed
    folder = tmp_path / "benchmarks" / "results" / "selection" / "default-augment"
    folder.mkdir(parents=True)
    (folder.with_name("default-augment-v3")).mkdir()
    (folder / "fold_3.json").write_text("{}")
    note = card._augment_line(recipe())
    assert "the training copies (`select_default.py --grid augment`: chosen inside" in note
    assert "2 of 5" not in note and "1 of 5 outer folds done" in note
    assert "`benchmarks/results/selection/default-augment-v3/`" in note
    (folder.with_name("default-augment-v10")).mkdir()  # the latest earlier run is named
    assert "`benchmarks/results/selection/default-augment-v10/`" in card._augment_line(recipe())
    (folder / "fold_3.json").unlink()

    def cand(speed, copies, clean, corrupted):
        return {"speed": speed, "condition_copies": copies, "inner_clean_ua": clean,
                "inner_corrupted_ua": corrupted}

    for k, shift in ((1, 0.0), (2, 2.0)):
        (folder / f"fold_{k}.json").write_text(json.dumps({"candidates": [
            cand(False, 0, 70 + shift, 60 + shift), cand(True, 4, 72 + shift, 71 - shift)]}))
    (folder / "summary.json").write_text(json.dumps({
        "folds": 2, "chosen": {"speed=True, condition_copies=4": 2},
        "committed_default": {"speed_factors": [0.9, 1.1], "condition_copies": 4,
                              "prior": "uniform"},
        "mean_over_folds": {"ravdess": 76.04, "emodb": 86.47}}))
    text = card._augment_line(recipe(augment__speed_factors=[0.9, 1.1],
                                     augment__condition_copies=4, frontend__depth=None))
    assert "speed perturbation 0.9x/1.1x and 4 multi-condition copies" in text
    assert "speed=True, condition_copies=4 in 2 of 2 folds" in text
    # each candidate's inner scores averaged over the outer folds
    assert "no copies 71.0 / 61.0; speed + 4 condition copies 73.0 / 70.0" in text
    assert "UA ravdess 76.0, emodb 86.5 (mean over folds)." in text
    assert "earlier default recipe" not in text
    assert "earlier default recipe** (condition_copies 4; today condition_copies 0)" in \
        card._augment_line(recipe(augment__speed_factors=[0.9, 1.1], augment__condition_copies=0,
                                  frontend__depth=None))
    # a run that did not record the encoder cut ran on the whole encoder
    assert "(depth None; today depth 2)" in card._augment_line(recipe(
        augment__speed_factors=[0.9, 1.1], augment__condition_copies=4, frontend__depth=2))


def test_what_costs_the_most_comes_from_the_committed_harness_runs(card, tmp_path, monkeypatch):
    monkeypatch.setattr(card, "REPO", tmp_path)
    assert card._costs_line().startswith("Babble (other people talking)")  # no runs: general
    runs = tmp_path / "benchmarks" / "results" / "robustness"
    cv = runs / "default_cv" / "emodb-emodb_loso" / "results.json"
    cv.parent.mkdir(parents=True)
    cv.write_text(json.dumps({"test": "emodb (emodb_loso)", "drop": {
        "babble_10db": {"none": {"ua": 2.5}}, "telephone": {"none": {"ua": 7.25}}}}))
    loco = runs / "default_loco" / "ravdess" / "results.json"
    loco.parent.mkdir(parents=True)
    share = {"class": "angry", "points": 12.0}
    loco.write_text(json.dumps({"test": "ravdess", "model": "default trained on emodb",
                                "results": {"clean": {"none": {"max_share_excess": {
                                    "class": "sad", "points": 50.0}}},
                                    "reverb_0.6s": {"none": {"max_share_excess": share}},
                                    "babble_10db": {"none": {"max_share_excess": {
                                        "class": "neutral", "points": 31.0}}}}}))
    text = card._costs_line()
    assert "emodb under telephone (7.2 points of UA)" in text  # the largest drop, not babble
    # the worst condition (clean is not a condition): neutral under babble
    assert "(emodb -> ravdess, babble_10db: `neutral` answered 31 points" in text
