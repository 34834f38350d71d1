"""benchmarks/covada_table.py: the rows' overrides, the merge and audit, the README block.

Fake fold files and a fake corpus (no audio: the audit needs only ids, labels, speakers and
genders), so nothing here trains a model.
"""

import json

import pytest

from emovox.config import load_recipe
from emovox.types import Utterance

LABELS = ["angry", "sad"]


@pytest.fixture()
def table(load_benchmark):
    return load_benchmark("covada_table")


def test_each_row_is_the_recipe_with_its_own_covada_settings(table):
    base = table.row_config("whisper_logreg", "baseline")
    assert base.to_dict() == load_recipe("whisper_logreg").to_dict()
    assert base.augment.covada is False
    want = {"covada": (0.3, "confidence"), "convert_all": (1.0, "confidence"),
            "random": (0.3, "random")}
    for row, (share, score) in want.items():
        config = table.row_config("whisper_logreg", row)
        aug = config.augment
        assert (aug.covada, aug.covada_share, aug.covada_score) == (True, share, score)
        # nothing else moves: the same seed, copies, check, per-class share, model
        assert (aug.covada_seed, aug.covada_copies, aug.covada_check, aug.covada_per_class) == \
            (18, 1, True, True)
        mine, theirs = config.to_dict(), base.to_dict()
        for key in ("covada", "covada_share", "covada_score"):
            mine["augment"].pop(key), theirs["augment"].pop(key)
        assert mine == theirs
    assert set(table.ROWS) == {"baseline", "covada", "convert_all", "random"}
    assert table.row_config("default", "covada").name == "default"  # --recipe is honoured
    with pytest.raises(SystemExit, match="unknown row"):
        table.row_sets("everything")


def fake_corpus():
    """8 speakers (4 female, 4 male), 10 recordings each, 5 per class."""
    utts = []
    for s in range(8):
        gender = "female" if s < 4 else "male"
        for i in range(10):
            utts.append(Utterance(f"ravdess/s{s}_{i}", "", "ravdess", f"ravdess/{s}",
                                  LABELS[i % 2], gender=gender))
    return utts


def write_row(root, row, utts, folds, n_folds, wrong_male, plan=None, revision="abc1234567"):
    """Fold files (speakers dealt to ``n_folds`` folds; only ``folds`` written) and results.json.

    Female recordings are all right; ``wrong_male`` of every male speaker's 10 are wrong.
    """
    folder = root / "ravdess" / row
    (folder / "folds").mkdir(parents=True)
    config = load_recipe("whisper_logreg", ["augment.covada=true"] if plan else [])
    for k in folds:
        speakers = [f"ravdess/{s}" for s in range(8) if s % n_folds == k - 1]
        test = [u for u in utts if u.speaker in speakers]
        preds = []
        for i, u in enumerate(test):
            wrong = u.gender == "male" and i % 10 < wrong_male
            label = LABELS[1 - LABELS.index(u.label)] if wrong else u.label
            preds.append({"id": u.id, "label": label,
                          "probabilities": {c: float(c == label) for c in LABELS}})
        record = {"fold": k, "test_speakers": speakers, "ua": 50.0, "wa": 50.0,
                  "macro_f1": 50.0, "confusion": [[0, 0], [0, 0]], "train_seconds": 3.0,
                  "git_revision": revision, "predictions": preds}
        if plan:
            record["covada"] = plan
        (folder / "folds" / f"fold_{k}.json").write_text(json.dumps(record))
    (folder / "results.json").write_text(json.dumps({
        "corpus": "ravdess", "protocol": "ravdess6", "fold_seed": 0, "recipe": config.name,
        "config": config.to_dict(), "labels": LABELS, "folds": [], "n_folds": n_folds,
        "missing_folds": []}))
    return folder


PLAN = {"score": "confidence", "n_scored": 60, "n_selected": 18, "n_kept": 16, "n_dropped": 2,
        "early_accuracy": 90.0, "score_selected": 0.6, "score_rest": 0.4,
        "selected_per_gender": {"female": 12, "male": 6}}


def test_the_table_merges_audits_and_marks_partial_rows(table, tmp_path, monkeypatch):
    utts = fake_corpus()
    monkeypatch.setattr(table, "load_utterances", lambda corpus, data, config=None: utts)
    write_row(tmp_path, "baseline", utts, [1, 2], 2, wrong_male=4)
    write_row(tmp_path, "covada", utts, [1], 2, wrong_male=0, plan=PLAN,
              revision="abc1234567-dirty")
    doc = table.summarise(tmp_path, tmp_path, n_boot=30)
    rows = doc["corpora"]["ravdess"]
    assert rows["convert_all"] is None and rows["random"] is None
    assert doc["corpora"]["emodb"] == dict.fromkeys(table.ROWS)
    base = rows["baseline"]
    assert base["folds"] == [1, 2] and base["missing_folds"] == []
    assert base["n"] == 80 and base["n_speakers"] == 8
    # female all right, male 4 of 10 wrong: recall 100 vs 60 in both classes
    assert base["gender_groups"]["female"]["ua"] == 100.0
    assert base["gender_groups"]["male"]["ua"] == 60.0
    assert base["ua"] == 80.0 and base["tpr_gap"] == 40.0
    assert base["ua_ci"][0] <= 80.0 <= base["ua_ci"][1] and base["tpr_gap_ci"] is not None
    assert base["covada"] is None
    # the merge rewrote results.json from the fold files
    merged = json.loads((tmp_path / "ravdess" / "baseline" / "results.json").read_text())
    assert [f["fold"] for f in merged["folds"]] == [1, 2]
    partial = rows["covada"]
    assert partial["folds"] == [1] and partial["missing_folds"] == [2]
    assert partial["n"] == 40 and partial["tpr_gap"] == 0.0
    assert partial["covada"]["n_selected"] == 18.0
    assert partial["covada"]["selected_per_gender"] == {"female": 12.0, "male": 6.0}

    text = table.render(json.loads(json.dumps(doc)))  # as read back from summary.json
    ravdess = text.split("**EmoDB", 1)[0]
    lines = {line.split(" |")[0][2:]: line for line in ravdess.splitlines()
             if line.startswith("| `")}
    assert lines["`baseline`"].startswith("| `baseline` | 2/2 | 80.0 [")
    assert "| 100.0 / 60.0 | — |" in lines["`baseline`"]
    assert "| 40.0 [" in lines["`baseline`"]
    assert lines["`covada`"].startswith("| `covada` | **partial 1/2** (dirty) | 100.0 [")
    assert lines["`covada`"].endswith("| 18 of 60; 16 kept (F 12, M 6) |")
    assert lines["`random`"] == "| `random` | not run |" + " — |" * 6
    assert "recipe `whisper_logreg`" in text and "abc1234567-dirty" in text
    assert "Partial rows (covada)" in text or "partial rows (covada)" in text
    assert text.count("| row | folds |") == 2  # one table per corpus


def test_a_covada_row_without_the_plan_in_its_folds_says_so(table, tmp_path, monkeypatch):
    utts = fake_corpus()
    monkeypatch.setattr(table, "load_utterances", lambda corpus, data, config=None: utts)
    write_row(tmp_path, "random", utts, [1, 2], 2, wrong_male=2)
    doc = table.summarise(tmp_path, tmp_path, n_boot=0)
    line = next(x for x in table.render(doc).splitlines() if x.startswith("| `random`"))
    assert line.endswith("| not recorded |") and "| 2/2 | 90.0 |" in line


def test_a_run_refuses_to_mix_configs_in_one_row(table, tmp_path):
    write_row(tmp_path, "covada", fake_corpus(), [1], 2, wrong_male=0, plan=PLAN)
    args = type("A", (), {"recipe": "default", "data": tmp_path, "folds": None, "cache": None,
                          "quiet": True})()
    with pytest.raises(SystemExit, match="another config"):
        table.run_row("ravdess", "covada", args, tmp_path)


def test_a_row_written_before_an_option_existed_is_still_its_configs(table, tmp_path,
                                                                      monkeypatch):
    """Folds written before an option was added (stored config without it) still belong to
    the recipe when the option sits at its default: the row goes on."""
    folder = write_row(tmp_path, "baseline", fake_corpus(), [1], 2, wrong_male=0)
    stored = json.loads((folder / "results.json").read_text())
    current = table.row_config("whisper_logreg", "baseline").to_dict()
    stored["config"] = json.loads(json.dumps(current))
    for key in ("nuisance", "nuisance_dims"):  # options added later, at their defaults
        del stored["config"]["classic"][key]
    (folder / "results.json").write_text(json.dumps(stored))

    def reached(*_a, **_k):  # past the config check: the row would be run
        raise RuntimeError("reached the data")

    monkeypatch.setattr(table, "load_utterances", reached)
    args = type("A", (), {"recipe": "whisper_logreg", "data": tmp_path, "folds": None,
                          "cache": None, "quiet": True})()
    with pytest.raises(RuntimeError, match="reached the data"):
        table.run_row("ravdess", "baseline", args, tmp_path)


def test_nothing_run_yet_says_so(table, tmp_path):
    assert "has not been run yet" in table.render(None)
    assert table.load_summary(tmp_path) is None


def test_the_readme_block_is_what_the_committed_summary_gives(table):
    readme = table.README.read_text()
    assert table.START in readme and table.END in readme
    inside = readme.split(table.START, 1)[1].split(table.END, 1)[0]
    assert inside.strip() == table.render(table.load_summary()).strip()
    # inside the fairness section, after its text
    section = readme.split("### Fairness: whom the model serves worse", 1)[1].split("\n## ", 1)[0]
    assert table.START in section.split("\n### ", 1)[0]


def test_the_card_block_audits_the_recipe_baseline_and_adds_covada_when_complete(
        table, tmp_path, monkeypatch):
    utts = fake_corpus()
    monkeypatch.setattr(table, "load_utterances", lambda corpus, data, config=None: utts)
    write_row(tmp_path, "baseline", utts, [1, 2], 2, wrong_male=4)
    write_row(tmp_path, "covada", utts, [1], 2, wrong_male=0, plan=PLAN)
    doc = json.loads(json.dumps(table.summarise(tmp_path, tmp_path, n_boot=30)))
    # the bundled model's recipe is `default`: rows of another recipe (or of an older version
    # of it) are not its audit
    assert "Not measured for this model's recipe" in table.render_card_block(doc)
    stale = json.loads(json.dumps(doc))
    stale["corpora"]["ravdess"]["baseline"]["config_digest"] = "0" * 16
    assert "Not measured" in table.render_card_block(stale, recipe="whisper_logreg")
    text = table.render_card_block(doc, recipe="whisper_logreg")
    row = next(x for x in text.splitlines() if x.startswith("| RAVDESS"))
    assert "| 2/2 | 100.0 [" in row and "| 60.0 [" in row and "| 40.0 [" in row
    assert row.endswith("| angry: 40.0 (female 100.0, male 60.0) |") or \
        row.endswith("| sad: 40.0 (female 100.0, male 60.0) |")
    assert "EmoDB" not in row and "with CO-VADA" not in text  # covada: 1 of 2 folds only
    (tmp_path / "ravdess" / "covada").rename(tmp_path / "partial")
    write_row(tmp_path, "covada", utts, [1, 2], 2, wrong_male=0, plan=PLAN)
    doc = json.loads(json.dumps(table.summarise(tmp_path, tmp_path, n_boot=30)))
    text = table.render_card_block(doc, recipe="whisper_logreg")
    assert "RAVDESS: with CO-VADA" in text and "the TPR gap is 0.0 against 40.0 [" in text
    assert "(UA 100.0 against 80.0)" in text
    # the README table reads the complete rows against the complete baseline
    reading = table.render(doc).split("**EmoDB", 1)[0].rstrip().splitlines()[-1]
    versions = doc["corpora"]["ravdess"]["baseline"]["versions_per_recording"]
    recipe = load_recipe("whisper_logreg")
    assert versions == len(recipe.classic.speeds(recipe.augment)) + \
        recipe.augment.condition_copies
    assert reading.startswith("Against the baseline's gender TPR gap of 40.0: `covada` 0.0 (-40.0)")
    assert "inside the baseline's interval" not in reading
    assert f"`covada` {100 * 16 / (60 * versions):.1f} % of the training rows" in reading
    assert "dropped `covada` 2 of 18 copies" in reading


def test_the_card_block_is_what_the_committed_summary_gives(table):
    card = table.CARD.read_text()
    inside = card.split(table.CARD_START, 1)[1].split(table.CARD_END, 1)[0]
    assert inside.strip() == table.render_card_block(table.load_summary()).strip()
    assert "## Fairness by gender" in card.split(table.CARD_START, 1)[0].rsplit("\n## ", 1)[1] \
        or card.split(table.CARD_START, 1)[0].rstrip().endswith("## Fairness by gender")


def test_a_re_rendered_card_keeps_the_blocks_other_scripts_filled(load_benchmark, tmp_path,
                                                                   monkeypatch):
    card = load_benchmark("default_model")
    monkeypatch.setattr(card, "render_card", lambda doc, n: (
        "# card\n<!-- robustness-table:start -->\n<!-- robustness-table:end -->\n"
        "## Fairness by gender\n<!-- fairness:start -->\n<!-- fairness:end -->\nend v2\n"))
    path = tmp_path / "MODEL_CARD.md"
    card.write_card({}, 0, path)  # no card yet: empty blocks
    assert path.read_text().endswith("end v2\n")
    text = path.read_text().replace("<!-- fairness:start -->\n",
                                    "<!-- fairness:start -->\nthe audit\n")
    path.write_text(text.replace("<!-- robustness-table:start -->\n",
                                 "<!-- robustness-table:start -->\nthe table\n"))
    card.write_card({}, 0, path)
    again = path.read_text()
    assert "start -->\nthe table\n<!-- robustness-table:end" in again
    assert "start -->\nthe audit\n<!-- fairness:end" in again
