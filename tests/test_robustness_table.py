"""The robustness table generator: runs side by side, flags, missing cells, the clean ECE."""

import json

import pytest


@pytest.fixture()
def table(tmp_path, monkeypatch, load_benchmark):
    module = load_benchmark("robustness_table")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    monkeypatch.setattr(module, "SECTIONS", [("Compared", ["old", "new"], ["old", "new"])])
    return module


def write(root, run, test, results):
    doc = {"test": test, "n": 10, "model": "m", "command": "emovox robustness", "seed": 0,
           "git_revision": "abcdef0123", "adaptations": ["none"],
           "results": {name: {"none": {"ua": ua, "ece": ece, "max_share_excess":
                                       {"class": "angry", "points": excess}}}
                       for name, (ua, ece, excess) in results.items()}}
    path = root / run / test / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))


def test_runs_stand_side_by_side_per_condition(table, tmp_path):
    write(tmp_path, "old", "emodb", {"clean": (40.0, 30.0, 25.0), "babble_10db": (20.0, 50, 60)})
    write(tmp_path, "new", "emodb", {"clean": (52.5, 8.0, 5.0), "telephone": (48.0, 9.0, 3)})
    text = table.render()
    assert "| condition | emodb (none) old | emodb (none) new |" in text
    rows = {r.split(" |")[0][2:]: r for r in text.splitlines() if r.startswith("| ")}
    assert rows["clean"] == "| clean | 40.0; angry +25 | 52.5 |"  # flagged only above 20
    assert rows["babble_10db"] == "| babble_10db | 20.0; angry +60 | — |"
    assert rows["telephone"] == "| telephone | — | 48.0 |"
    assert rows["ECE % (clean)"] == "| ECE % (clean) | 30.0 | 8.0 |"
    # conditions in the harness's order: noise before telephone
    assert text.index("| babble_10db") < text.index("| telephone")


def test_a_section_without_its_current_run_is_left_out(table, tmp_path):
    write(tmp_path, "old", "emodb", {"clean": (40.0, 30.0, 25.0)})
    assert "Compared" not in table.render()


@pytest.mark.parametrize("run", ["default_composition", "v4_composition"])
def test_the_composition_run_is_a_row_per_test_set_and_a_column_per_mode(table, tmp_path, run):
    for test, uas in (("ravdess", (50.0, 40.0, 60.0, 55.0)),
                      ("ravdess-single-emotion-speakers", (48.0, 20.0, 18.0, 52.0))):
        doc = {"test": test, "n": 10, "model": "m", "command": "emovox robustness", "seed": 0,
               "git_revision": "abcdef0123", "adaptations": ["none", "file", "speaker", "batch"],
               "results": {"clean": {m: {"ua": ua, "ece": 1.0, "max_share_excess":
                                         {"class": "angry", "points": 1.0}}
                                     for m, ua in zip(["none", "file", "speaker", "batch"],
                                                      uas, strict=True)}}}
        path = tmp_path / run / test / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(doc))
    text = table.render()
    assert "| test set (utterances) | none | file | speaker | batch |" in text
    assert "| ravdess-single-emotion-speakers (10) | 48.0 | 20.0 | 18.0 | 52.0 |" in text
    # an earlier recipe's run stands in until today's is committed, and the title says so
    assert ("not yet re-run" in text) == (run == "v4_composition")


def test_readme_and_card_hold_what_the_committed_runs_give(load_benchmark):
    module = load_benchmark("robustness_table")  # the committed runs
    block = module.render().strip()
    for target in module.TARGETS:
        inside = target.read_text().split(module.START, 1)[1].split(module.END, 1)[0]
        assert inside.strip() == block, target.name


def test_drops_of_a_cross_validated_run_carry_their_standard_errors(table, tmp_path):
    doc = {"test": "emodb (emodb_loso)", "adaptations": ["none"],
           "results": {"clean": {"none": {"ua": 80.0, "fold_ua": [80.0, 70.0, 90.0]}},
                       "telephone": {"none": {"ua": 76.0, "fold_ua": [76.0, 68.0, 84.0]}}},
           "drop": {"telephone": {"none": {"ua": 4.0}}}}
    path = tmp_path / "some_cv" / "emodb-emodb_loso" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    assert table.drops("some_cv") == "emodb (none) telephone: drop 4.0 ± 1.2 (3 folds)"
