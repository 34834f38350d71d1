"""The nested-selection script of the default recipe: its grid and its two averages."""

import json

import pytest


@pytest.fixture()
def select(load_benchmark):
    return load_benchmark("select_default")


def test_the_grid_holds_the_committed_default(select):
    from emovox.config import frontend_options, load_recipe
    from emovox.features import build_frontend

    def key(config):  # what the head sees: C, the frontend (cache key), the layer weights
        return (config.classic.C, json.dumps(build_frontend(frontend_options(config)).config()),
                tuple(config.classic.layer_weights or ()))

    committed = key(load_recipe("default"))
    made = [key(load_recipe("default", c["sets"])) for c in select.candidates()]
    assert committed in made
    assert len(set(made)) == len(made)  # all distinct
    assert len({m[1] for m in made}) == 2  # the whole encoder and the cut one


def test_the_augment_grid_holds_the_committed_default_and_its_ablations(select):
    from emovox.config import load_recipe

    committed = load_recipe("default").augment
    made = [load_recipe("default", c["sets"]).augment for c in select.candidates("augment")]
    keys = {(tuple(m.speed_factors), m.condition_copies) for m in made}
    assert keys == {((), 0), ((), 4), ((0.9, 1.1), 0), ((0.9, 1.1), 4)}
    assert (tuple(committed.speed_factors), committed.condition_copies) in keys
    # everything else stays the committed recipe
    base = load_recipe("default")
    for c in select.candidates("augment"):
        made = load_recipe("default", c["sets"])
        assert made.classic == base.classic and made.augment.conditions == base.augment.conditions


def test_summary_averages_per_fold_and_pools_separately(select):
    labels = ["angry", "sad"]
    # fold 1: ravdess 2 of 2 right (UA 100); fold 2: ravdess 4 utterances, half right (UA 50)
    one = {"chosen": {"C": 0.1, "layers": "equal"}, "outer_ua": {"ravdess": 100.0},
           "test": [["a", "ravdess", "angry", "angry"], ["b", "ravdess", "sad", "sad"]]}
    two = {"chosen": {"C": 0.3, "layers": "equal"}, "outer_ua": {"ravdess": 50.0},
           "test": [["c", "ravdess", "angry", "angry"], ["d", "ravdess", "angry", "sad"],
                    ["e", "ravdess", "sad", "sad"], ["f", "ravdess", "sad", "angry"]]}
    summary = select.summarise([one, two], labels)
    assert summary["mean_over_folds"]["ravdess"] == 75.0
    assert summary["pooled"]["ravdess"] == pytest.approx(66.67)  # 4 of 6 right, per class 2/3
    assert summary["chosen"] == {"C=0.1, equal": 1, "C=0.3, equal": 1}
    three = {**one, "chosen": {"speed": True, "condition_copies": 4}}
    assert select.summarise([three], labels)["chosen"] == {"speed=True, condition_copies=4": 1}


def test_an_answer_outside_the_corpus_classes_counts_as_wrong(select):
    import numpy as np

    class U:
        def __init__(self, label):
            self.corpus, self.label = "emodb", label

    labels = ["angry", "sad", "surprised"]  # EmoDB has no surprised
    utts = [U("angry"), U("angry"), U("sad"), U("sad")]
    probs = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0]], dtype=float)
    # angry: 1 of 2 (the other answered surprised), sad: 2 of 2
    assert select.ua_by_corpus(utts, labels, probs) == {"emodb": 75.0}
