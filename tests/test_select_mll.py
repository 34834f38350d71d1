"""Nested selection among the RAVDESS MLL rows: the inner split, the choice, the summary."""

import json

import pytest

from emovox.folds import make_folds
from emovox.types import Utterance


@pytest.fixture()
def select(load_benchmark):
    return load_benchmark("select_mll")


def ravdess_like():
    return [Utterance(id=f"ravdess/{a:02d}-{i}", path=f"{a}-{i}.wav", corpus="ravdess",
                      speaker=f"ravdess/{a:02d}", label=("angry", "sad")[i % 2], gender=None)
            for a in range(1, 25) for i in range(2)]


def test_the_inner_split_never_holds_the_outer_test_actors(select):
    folds = make_folds(ravdess_like(), "ravdess6")
    for outer in folds:
        inner = select.inner_fold(folds, outer.index)
        # inner test: the outer validation actors; inner validation: the next fold's
        assert inner.test_speakers == outer.valid_speakers
        assert inner.valid_speakers == folds[outer.index % 6].valid_speakers
        used = set(inner.test_speakers) | set(inner.valid_speakers) | {
            u.speaker for u in inner.train}
        assert not used & set(outer.test_speakers)
        assert len({u.speaker for u in inner.train}) == 12 and len(used) == 20


def test_every_candidate_is_a_row_of_the_ravdess_table(select):
    rows = set(select.TABLES["ravdess"].rows)
    assert set(select.CANDIDATES) <= rows and "mll_stats_ens2_lr" in select.CANDIDATES


def test_a_tie_goes_to_the_simpler_row(select):
    assert select.choose({"mll": 70.0, "mll_stats": 70.0, "mll_all_avg": 69.0}) == "mll"
    assert select.choose({"mll_stats_ens2_lr": 71.0, "mll": 70.0}) == "mll_stats_ens2_lr"


def test_the_nested_figure_waits_for_every_fold_and_reads_the_chosen_records(select, tmp_path):
    out, rows = tmp_path / "sel", tmp_path / "rows"
    out.mkdir()
    for k in range(1, 7):
        chosen = "mll" if k % 2 else "mll_stats_ens2_lr"
        (out / f"fold_{k}.json").write_text(json.dumps(
            {"chosen": chosen, "inner_ua": {chosen: 60.0}, "git_revision": "abc"}))
        record = rows / chosen / "folds" / f"fold_{k}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"ua": 70.0 + k, "git_revision": "def"}))
    (out / "fold_7.partial.json").write_text("{}")  # a partial file is not a fold
    summary = select.summarise(out, rows)
    assert summary["complete"] and summary["nested_ua"] == pytest.approx(73.5)
    assert summary["chosen"] == {"mll": 3, "mll_stats_ens2_lr": 3}
    assert summary["outer_clean"] and summary["outer_revisions"] == ["def"]
    # a dirty outer record is said; a missing one holds the figure back
    (rows / "mll" / "folds" / "fold_1.json").write_text(json.dumps(
        {"ua": 71.0, "git_revision": "def-dirty"}))
    assert not select.summarise(out, rows)["outer_clean"]
    (rows / "mll" / "folds" / "fold_3.json").unlink()
    waiting = select.summarise(out, rows)
    assert not waiting["complete"] and waiting["nested_ua"] is None
    (out / "fold_6.json").unlink()
    assert select.summarise(out, rows)["missing_folds"] == [6]


def test_candidates_that_share_networks_hand_them_over(select, tmp_path, monkeypatch):
    # the runs go to one folder per row; a row that shares another's networks gets its runs
    seen = {}

    def fake_fit(config, train, valid, **kw):
        seen[config.optim.ensemble, config.classic.fuse] = sorted(
            str(p.relative_to(kw["run_dir"])) for p in kw["run_dir"].rglob("*.pt"))
        raise StopIteration

    class NoBanks:
        def get(self, config):
            return None, None

    monkeypatch.setattr(select, "fit", fake_fit)
    runs = tmp_path / "fold_1"
    for rel in ("last.pt", "member_2/last.pt"):
        (runs / "mll_stats_ens2" / rel).parent.mkdir(parents=True, exist_ok=True)
        (runs / "mll_stats_ens2" / rel).write_text(rel)
    fold = select.inner_fold(make_folds(ravdess_like(), "ravdess6"), 1)
    with pytest.raises(StopIteration):
        select.candidate_ua("mll_stats_ens2_lr", fold, NoBanks(), ["angry", "sad"], runs)
    assert seen[2, True] == ["last.pt", "member_2/last.pt"]
    with pytest.raises(StopIteration):  # a row that shares nothing starts from nothing
        select.candidate_ua("mll_all_avg", fold, NoBanks(), ["angry", "sad"], runs)
    assert seen[1, False] == []

