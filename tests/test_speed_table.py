"""README blocks (speed, light models) are what their scripts render from committed results."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("speed_table",
                                                  REPO / "benchmarks" / "speed_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_block_is_rendered_from_the_committed_results():
    table = _module()
    block = table.committed_block()
    readme = (REPO / "README.md").read_text()
    inside = readme.split(table.START, 1)[1].split(table.END, 1)[0]
    assert inside.strip() == block.strip()


def test_a_run_on_another_host_is_listed_with_its_own_targets():
    table = _module()
    doc = json.loads(table.SPEED.read_text())
    other = {**doc, "_file": "speed_other.json", "git_revision": "0123456789abc",
             "machine": {**doc["machine"], "processor": "Some CPU"},
             "targets": {"peak_rss_under_300_mb": True,
                         "clips_1_thread_whole_process_at_least_250x_real_time": False}}
    block = table.render(doc, others=[other])
    line = block.strip().splitlines()[-1]
    assert line.startswith("On Some CPU (`benchmarks/results/speed_other.json`, revision "
                           "0123456789")
    assert line.endswith("targets missed there: clips 1 thread whole process at least 250x "
                         "real time.")
    other["targets"] = {"peak_rss_under_300_mb": True}
    assert table.render(doc, others=[other]).strip().endswith("targets all met there.")
    assert ") the shipped runtime took " in line
    edge = table.render(doc, others=[{**other, "model": "edge"}]).strip().splitlines()[-1]
    assert ") the edge model took " in edge
    # beside today's edge record, a host run of another edge graph says so
    today = {**other, "model": "edge", "frontend": {"name": "edge", "model": "new"}}
    old = {**today, "frontend": {"name": "edge", "model": "old"}}
    line = table.render(doc, edge=today, others=[old]).strip().splitlines()[-1]
    assert ") the edge model of that revision (an earlier distillation: graph old, today new) " \
        "took " in line
    assert ") the edge model took " in table.render(doc, edge=today, others=[today])
    # a run of an earlier default model says which frontend setting differed
    earlier = {**other, "frontend": {**doc["frontend"], "depth": None}}
    line = table.render(doc, others=[earlier]).strip().splitlines()[-1]
    assert (") the shipped runtime with the default model of that revision (frontend depth None, "
            f"today {doc['frontend'].get('depth')}) took ") in line


def test_missing_rows_and_failed_targets_show():
    table = _module()
    doc = json.loads(table.SPEED.read_text())
    doc["results"]["pytorch"] = {}
    doc["targets"] = {"peak_rss_under_300_mb": False}
    block = table.render(doc)
    assert "peak rss under 300 mb: NO" in block
    assert "| — |" in block  # no PyTorch measurement: a dash, not a number


def test_the_edge_column_holds_the_edge_record_and_only_with_one():
    table = _module()
    doc = json.loads(table.SPEED.read_text())
    edge = json.loads(json.dumps(doc))
    edge["results"]["clips"]["1_thread"]["emovox_whole_process"] = {
        "seconds": 1.234, "realtime_factor": 486.0, "peak_rss_mb": 77.0}
    edge["results"]["startup"]["emovox_predict_one_clip_seconds"] = 0.111
    edge["git_revision"] = "feedc0ffee"
    with_edge = table.render(doc, edge=edge).splitlines()
    without = table.render(doc).splitlines()
    assert "edge model" in with_edge[0] and "edge model" not in without[0]
    width = {line.count("|") for line in with_edge if line.startswith("|")}
    assert width == {6}  # five columns on every row, header and separator included
    clips = next(line for line in with_edge if line.startswith("| clips, whole process, 1"))
    assert clips.split("|")[3].strip() == "1.23 s (486x), 77 MB"
    one = next(line for line in with_edge if line.startswith("| `emovox predict` of one"))
    assert one.split("|")[3].strip() == "0.11 s"
    assert "speed_edge.json`, revision feedc0ffee" in "\n".join(with_edge)


def test_the_readme_light_models_block_is_rendered_from_the_committed_results():
    spec = importlib.util.spec_from_file_location("light_models",
                                                  REPO / "benchmarks" / "light_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = module.render(json.loads(module.OUT.read_text()))
    readme = (REPO / "README.md").read_text()
    inside = readme.split(module.START, 1)[1].split(module.END, 1)[0]
    assert inside.strip() == block.strip()
    encoder_rows = [row for row in block.splitlines() if row.startswith("| ")
                    and "edge student" not in row]
    assert "EmoDB LOSO" in block and not any("not run" in row for row in encoder_rows)


def test_the_parity_sentence_says_why_whole_graph_rows_are_missing():
    table = _module()
    row = {"agreement": 98.1, "max_abs_diff": 0.3, "ms_per_recording_onnx": 8.0,
           "ms_per_recording_pytorch": 20.0, "megabytes": 12.9}
    doc = {"recordings": 10, "git_revision": "abc", "bundled": row}
    both = table.parity_text({**doc, "float32": row, "int8": row})
    gated = table.parity_text({**doc, "whole_graph": "not exported: the model gates its frames"})
    assert "whole-model `emovox export --onnx` graph 98.1 %" in both and "gates" not in both
    assert "graphs not exported: the model gates its frames" in gated
    assert "float whole-model" not in gated and "shipped runtime" in gated


def test_the_install_sentence_says_when_torch_came_along_or_predict_failed():
    table = _module()
    doc = {"git_revision": "abc", "venv_megabytes": 201.0, "distributions": 13,
           "largest": {"onnxruntime": 80.1, "numpy": 42.7},
           "import_torch_fails": True, "targets": {"predict_works": True}}
    good = table.install_text(doc)
    assert "201 MB in all" in good and "PyTorch not installed" in good
    assert "works on a file and on a folder" in good
    bad = table.install_text({**doc, "import_torch_fails": False,
                              "targets": {"predict_works": False}})
    assert "PyTorch INSTALLED" in bad and "`emovox predict` FAILED" in bad
