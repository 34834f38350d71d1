"""The benchmark table generator: merged cells, missing folds, ablation deltas."""

import json
import sys

import pytest


@pytest.fixture()
def ser_table(tmp_path, monkeypatch, load_benchmark):
    module = load_benchmark("ser_table")
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    return module


def write(root, key, uas, n_folds=6, table="ravdess", revisions=None):
    folds = [{"fold": f, "ua": ua, "wa": ua, "macro_f1": ua} for f, ua in uas.items()]
    for fold, revision in zip(folds, revisions or [], strict=False):
        fold["git_revision"] = revision
    mean = sum(uas.values()) / len(uas)
    doc = {"folds": folds, "n_folds": n_folds,
           "missing_folds": [f for f in range(1, n_folds + 1) if f not in uas],
           "mean": {"ua": mean, "wa": mean, "macro_f1": mean}}
    path = root / table / key / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))


def line(text, title):
    return next(row for row in text.splitlines() if row.startswith(f"| {title} |"))


def test_ablation_delta_uses_only_common_folds_and_missing_cells_are_named(ser_table, tmp_path):
    write(tmp_path, "mll", {1: 80.0, 2: 70.0, 3: 60.0, 4: 60.0, 5: 60.0, 6: 60.0})
    write(tmp_path, "mll_no_kl", {1: 77.0, 2: 71.0})
    text = ser_table.render(ser_table.TABLES["ravdess"])
    no_kl = line(text, ser_table.row("mll_no_kl").title)
    # its own mean (74.0) is over two easy folds; the difference on those folds is -1.0
    assert "74.0 *" in no_kl and "2/6 (partial: folds 3,4,5,6 missing)" in no_kl
    # fold differences -3 and +1: mean -1.0, standard error 2.0, lower on one of the two
    assert no_kl.endswith("| -1.0 ± 2.0 (2 folds, lower on 1) |")
    assert line(text, ser_table.row("mll_mean").title).endswith("| not run |  |")
    full = line(text, ser_table.row("mll").title)
    assert "| 65.0 |" in full and full.endswith("| 6/6 |  |")
    # tables without ablation rows have no delta column
    emodb = ser_table.render(ser_table.TABLES["emodb"])
    assert "ΔUA" not in emodb and "| system | UA | WA | macro-F1 | folds |" in emodb


def test_shipped_mll_plus_recipe_is_the_benchmarked_row(ser_table):
    from emovox.config import load_recipe

    r = ser_table.row("mll_stats_ens2_lr")
    benchmarked = load_recipe(r.recipe, r.sets).to_dict()
    shipped = load_recipe("mll_plus").to_dict()
    assert shipped.pop("name") == "mll_plus" and benchmarked.pop("name") == "mll"
    assert shipped == benchmarked


def test_rows_that_share_networks_train_them_as_their_source_does(ser_table):
    from emovox.config import load_recipe, member_config

    shared = [r for r in ser_table.ROWS if r.shares]
    assert {r.key for r in shared} == {"mll_stats_ens2", "mll_stats_lr", "mll_stats_ens2_lr"}
    for r in shared:
        source = ser_table.row(r.shares)
        ours, theirs = (load_recipe(x.recipe, x.sets) for x in (r, source))
        # every network of the source is one of ours, trained the same way (classic.* is not
        # read by a network's training; emovox.train resumes across it)
        for k in range(theirs.optim.ensemble):
            a, b = (member_config(c, k).to_dict() for c in (ours, theirs))
            a.pop("classic"), b.pop("classic")
            assert a == b, (r.key, k)


def test_hand_over_copies_the_source_runs_and_keeps_a_rows_own(ser_table, tmp_path):
    table = ser_table.TABLES["ravdess"]
    src = tmp_path / "ravdess" / "mll_stats_ens2" / "runs"
    for rel in ("fold_1/last.pt", "fold_1/member_2/last.pt", "fold_2/last.pt",
                "fold_2/member_2/last.pt"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    dst = tmp_path / "ravdess" / "mll_stats_ens2_lr" / "runs"
    (dst / "fold_2").mkdir(parents=True)
    (dst / "fold_2" / "last.pt").write_text("its own")
    copied = ser_table.hand_over(table, "mll_stats_ens2_lr", [1, 2])
    assert sorted(copied) == sorted(str(dst / r) for r in (
        "fold_1/last.pt", "fold_1/member_2/last.pt", "fold_2/member_2/last.pt"))
    assert (dst / "fold_1" / "member_2" / "last.pt").read_text() == "fold_1/member_2/last.pt"
    assert (dst / "fold_2" / "last.pt").read_text() == "its own"
    assert ser_table.hand_over(table, "mll", [1]) == []  # a row that shares nothing
    assert not list(dst.rglob("*.part"))


def test_rows_from_dirty_or_mixed_revisions_say_so(ser_table, tmp_path):
    six = {f: 70.0 for f in range(1, 7)}
    write(tmp_path, "mll", six, revisions=["a" * 40] * 6)
    write(tmp_path, "mll_no_kl", six, revisions=["a" * 40] * 5 + ["b" * 40])
    write(tmp_path, "mll_no_eam", six, revisions=["a" * 40 + "-dirty"] * 2 + ["a" * 40] * 4)
    text = ser_table.render(ser_table.TABLES["ravdess"])
    assert line(text, ser_table.row("mll").title).endswith("| 6/6 |  |")  # one clean revision
    assert "| 6/6 († 2 revisions) |" in line(text, ser_table.row("mll_no_kl").title)
    assert "| 6/6 († dirty: 2 of 6 folds) |" in line(text, ser_table.row("mll_no_eam").title)
    assert "† provenance:" in text


def test_a_dirty_cross_corpus_result_is_marked(ser_table, tmp_path, monkeypatch):
    folder = tmp_path / "cross_ravdess_emodb"
    folder.mkdir()
    monkeypatch.setattr(ser_table, "cross_path", lambda key: folder / f"{key}.json")
    scores = {"ua": 50.0, "wa": 50.0, "macro_f1": 50.0}
    first, second = ser_table.CROSS_ROWS[:2]
    (folder / f"{first}.json").write_text(json.dumps({**scores, "git_revision": "c" * 40}))
    (folder / f"{second}.json").write_text(json.dumps({**scores,
                                                        "git_revision": "c" * 40 + "-dirty"}))
    text = ser_table.render_cross()
    clean, dirty = ser_table.row(first).title, ser_table.row(second).title
    assert line(text, clean).startswith(f"| {clean} | 50.0")
    assert line(text, dirty + " †").startswith(f"| {dirty} † | 50.0")
    assert "† run from a checkout with uncommitted changes" in text


def test_runs_import_this_checkouts_emovox(ser_table, tmp_path, monkeypatch):
    """A run from another worktree uses that worktree's code, not the installed emovox."""
    import subprocess

    other = tmp_path / "worktree"
    (other / "src" / "emovox").mkdir(parents=True)
    (other / "src" / "emovox" / "__init__.py").write_text("WHERE = 'worktree'\n")
    monkeypatch.setattr(ser_table, "REPO", other)
    code = "import emovox; print(getattr(emovox, 'WHERE', 'installed'))"
    out = subprocess.run([sys.executable, "-c", code], env=ser_table.checkout_env(),
                         cwd=other, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "worktree"


def test_paper_ablation_rows_are_compared_with_the_paper_recipe(ser_table, tmp_path):
    write(tmp_path, "mll", {1: 90.0, 2: 90.0})
    write(tmp_path, "mll_paper", {1: 70.0, 2: 60.0})
    write(tmp_path, "mll_paper_no_kl", {1: 68.0, 2: 61.0})
    text = ser_table.render(ser_table.TABLES["ravdess"])
    # against mll_paper (-2, +1), not against the tuned mll (-22, -29)
    assert line(text, ser_table.row("mll_paper_no_kl").title).endswith(
        "| -0.5 ± 1.5 (2 folds, lower on 1) |")
    assert line(text, ser_table.row("mll_paper").title).endswith("|  |")  # not an ablation


def test_the_paper_recipe_keeps_every_setting_the_paper_states(ser_table):
    from emovox.config import load_recipe

    paper = load_recipe("mll_paper")
    o, loss = paper.optim, paper.loss
    assert (o.batch_size, o.lr, o.lr_decay, o.epochs) == (16, 1e-4, 0.875, 20)
    assert (o.patience, o.average_from) == (0, 20)  # the model after epoch 20, no selection
    assert (o.weight_decay, o.grad_clip) == (0.0, 0.0)  # Adam, nothing added
    assert loss["scale_to_unit"] is True and loss["center_lr"] == 5e-3
    assert loss["center_update"] == "direct"  # 5e-3 is the centers' rate in effect
    assert paper.augment.method == "eam" and paper.model["pooling"] == "flam"
    assert paper.model.get("frame_stride", 1) == 1 and paper.model["num_heads"] == 16
    # the tuned recipe differs where its row says it does
    tuned = load_recipe("mll")
    assert tuned.optim.lr == 1e-3 and tuned.optim.patience == 8
    assert not tuned.loss.get("scale_to_unit", False)


def test_merge_rebuilds_a_row_from_every_fold_file(ser_table, tmp_path):
    real = ser_table.REPO / "benchmarks" / "results" / "ravdess" / "mll_paper" / "folds"
    folds = sorted(real.glob("fold_*.json"))[:2]
    if len(folds) < 2:
        pytest.skip("needs two committed mll_paper fold records")
    target = tmp_path / "ravdess" / "mll_paper"
    (target / "folds").mkdir(parents=True)
    for path in folds:
        (target / "folds" / path.name).write_text(path.read_text())
    # a stale merge, as a parallel run that had not seen the other fold leaves it
    (target / "results.json").write_text(json.dumps({"folds": [], "missing_folds": [1, 2, 3]}))
    doc = ser_table.merge(ser_table.TABLES["ravdess"], "mll_paper")
    uas = [json.loads(p.read_text())["ua"] for p in folds]
    assert [f["ua"] for f in doc["folds"]] == uas and len(doc["missing_folds"]) == 4
    assert json.loads((target / "results.json").read_text())["mean"]["ua"] == pytest.approx(
        sum(uas) / 2)
    assert ser_table.merge(ser_table.TABLES["ravdess"], "mll_no_kl") is None


def test_the_readme_tables_are_what_the_committed_results_give(load_benchmark):
    module = load_benchmark("ser_table")  # the committed results, not a temporary folder
    readme = (module.REPO / "README.md").read_text()
    start, end = "<!-- benchmark-tables:start -->", "<!-- benchmark-tables:end -->"
    inside = readme.split(start, 1)[1].split(end, 1)[0]
    assert inside.strip() == module.readme_block().strip()


def test_reading_sorts_ablations_by_their_paired_folds_and_follows_the_figures(ser_table, tmp_path):
    base = {1: 70.0, 2: 72.0, 3: 68.0, 4: 71.0, 5: 69.0, 6: 70.0}
    write(tmp_path, "mll", base)
    write(tmp_path, "whisper_all_logreg", {f: ua + 5 for f, ua in base.items()})
    # lower on every fold by 3 +- 0.5: more than two standard errors
    write(tmp_path, "mll_no_kl", {f: ua - 3 + (0.5 if f % 2 else -0.5) for f, ua in base.items()})
    # +-2 around the base: mean 0, within two standard errors
    write(tmp_path, "mll_no_focal", {f: ua + (2 if f % 2 else -2) for f, ua in base.items()})
    write(tmp_path, "mll_mean", {1: 60.0, 2: 61.0})  # partial
    text = ser_table.render_reading()
    tuned = next(p for p in text.split("\n\n") if p.startswith('Ablation of "MLL tuned here"'))
    lower, rest = tuned.split("Within two standard errors:")
    assert "without the KL term, -3.0 ± 0.2, lower on 6 of 6 folds" in lower
    assert "without the focal term, +0.0 ± 0.9, lower on 3 of 6 folds" in rest
    assert "Not yet on every fold: with mean pooling instead of FLAM (2 of 6)." in rest
    assert "Not run yet: without EAM;" in rest
    assert "(2 of 9 changes on every fold" in tuned
    # the headline compares the two rows as the figures stand, and says a row is not there
    assert "reaches UA 70.0 (6/6 folds), below a logistic regression" in text
    assert "mll_plus" not in text and "mll_paper" not in text
    write(tmp_path, "mll_paper", {f: ua + 1 for f, ua in base.items()}, revisions=["abc-dirty"] * 6)
    paper = next(p for p in ser_table.render_reading().split("\n\n") if "mll_paper" in p)
    assert ("UA 71.0 against the tuned recipe's 70.0 (6/6 folds) on the same 6 folds, "
            "lower on 0") in paper
    assert "† dirty: 6 of 6 folds" in paper and "600 small steps" not in paper


def test_the_headline_says_how_far_the_nested_selection_is(ser_table, tmp_path):
    base = {f: 70.0 for f in range(1, 7)}
    for key in ("mll", "whisper_all_logreg", "mll_stats_ens2_lr"):
        write(tmp_path, key, base)
    assert "has not run yet" in ser_table.render_reading()
    summary = tmp_path / "selection" / "ravdess-mll" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"folds": [{"fold": 1}], "missing_folds": [2, 3, 4, 5, 6],
                                   "chosen": {"mll": 1}, "complete": False}))
    assert "has 1 of 6 folds so far (chosen: mll in 1)" in ser_table.render_reading()
    summary.write_text(json.dumps({"folds": [{"fold": k} for k in range(1, 7)],
                                   "missing_folds": [], "complete": True, "nested_ua": 74.25,
                                   "outer_clean": False,
                                   "chosen": {"mll": 2, "mll_stats_ens2_lr": 4}}))
    text = ser_table.render_reading()
    assert "the choice was mll in 2; mll_stats_ens2_lr in 4 of 6 folds" in text
    assert "the nested UA is 74.2 († some of those records" in text
