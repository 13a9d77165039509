"""A study's inputs are all checked before its first stage: bad data files, options,
probe tasks, ablation ks and a missing base folder fail in seconds with the key that is
wrong, not after fine-tuning has run; a key given twice in the YAML is refused; a second
study in a busy run folder is refused."""

import shutil

import pytest
import yaml
from ftlens.study import StudyConfigError, load_config, parse_config, run_study
from ftlens.study.cache import RunFolder

EWT_DEV = "en_ewt-ud-dev.conllu"


def _study(**changes) -> dict:
    study = {
        "name": "s",
        "base": "minilm",
        "tasks": {"nli": {"task": "pair", "train": {"generated": "pairs", "n": 20},
                          "eval": {"generated": "pairs", "n": 12, "seed": 1}, "options": {"max_steps": 2}}},
        "evaluation": {"ewt": {"data": {"generated": "sentences", "n": 20}, "in_domain": ["nli"]}},
    }
    study.update(changes)
    return study


def _run(tmp_path, study):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    run_study(load_config(path), tmp_path / "out", progress=False, report=False, log=lambda line: None)


def _refused(tmp_path, study, where, message):
    with pytest.raises(StudyConfigError, match=rf"study.yaml: {where}: .*{message}"):
        _run(tmp_path, study)
    assert not (tmp_path / "out" / "finetune").exists() and not (tmp_path / "out" / "stages").exists()


@pytest.fixture
def ewt_dev(data_dir, tmp_path):
    shutil.copy(data_dir / "ud_en_ewt" / EWT_DEV, tmp_path / EWT_DEV)
    return tmp_path / EWT_DEV


def test_data_files_that_do_not_read_fail_before_any_stage(tmp_path, ewt_dev):
    text = ewt_dev.read_bytes()
    (tmp_path / "cut.conllu").write_bytes(text[:3000])  # truncated mid-sentence
    (tmp_path / "latin1.conllu").write_bytes(text[:2000].replace(b"the", b"th\xe9"))
    (tmp_path / "empty.conllu").write_text("")
    for name, message in (("cut.conllu", "cut.conllu:50: expected 10 tab-separated columns"),
                          ("latin1.conllu", "not UTF-8 text"), ("empty.conllu", "has 0 examples")):
        study = _study(evaluation={"ewt": {"data": name, "in_domain": ["nli"]}})
        _refused(tmp_path, study, "evaluation.ewt.data", message)


def test_options_probe_tasks_and_ks_are_checked_before_any_stage(tmp_path, ewt_dev):
    probes = {"train": EWT_DEV, "eval": {"dev": EWT_DEV}}
    cases = [
        (_study(probes={**probes, "tasks": ["upos", "pos"]}), r"probes.tasks\[1\]",
         r"'pos' is not a probe task of the probes.train data with rows 'words'; its tasks are \['upos'"),
        (_study(probes={**probes, "options": {"l2": "strong"}}), "probes.options.l2",
         "l2 must be a positive number"),
        (_study(probes={**probes, "options": {"chunk_rows": 2.5}}), "probes.options.chunk_rows",
         "chunk_rows must be a positive integer"),
        (_study(compare={"max_length": 2}), "compare.max_length",
         "max_length=2 leaves no room for text: this tokenizer adds 2 special tokens"),
        (_study(compare={"ci_groups": 25}), "compare.ci_groups",
         r"25 jackknife groups, but evaluation.ewt has 20 inputs: lower ci_groups to at most 20 "
         r"\(better, to 4"),
        (_study(seeds=2, compare={"ci_groups": 25, "ci": None}), "compare.ci_groups",
         r"25 resampled groups, but evaluation.ewt has 20 inputs"),
        (_study(ablations=[{"kind": "freeze", "task": "nli", "ks": [0, 9]}]), r"ablations\[0\].ks",
         r"\[9\] outside 0..6 \(the base model has 6 layers\)"),
        (_study(ablations=[{"kind": "freeze", "task": "nli", "options": {"batch_size": 2.5}}]),
         r"ablations\[0\].options.batch_size", "option batch_size must be an integer >= 1, got 2.5"),
    ]
    for study, where, message in cases:
        _refused(tmp_path, study, where, message)


def test_task_options_and_data_are_checked_before_any_stage(tmp_path):
    study = _study()
    study["tasks"]["nli"]["options"] = {"epochs": float("inf")}
    refused = "tasks.nli.options.epochs: option epochs must be a finite number"
    with pytest.raises(StudyConfigError, match=refused):
        _run(tmp_path, study)
    study = _study()
    study["tasks"]["nli"]["task"] = "sentence"  # pair data for a sentence task
    _refused(tmp_path, study, "tasks.nli", "the train data are pairs: use task 'pair'")


def test_a_base_folder_that_does_not_exist_is_named(tmp_path):
    _refused(tmp_path, _study(base=str(tmp_path / "no_such_model")), "base",
             "model folder '.*no_such_model' does not exist; check the path")


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study()) + "tasks:\n  pair: {task: pair}\n")
    with pytest.raises(StudyConfigError, match="found the key 'tasks' twice"):
        load_config(path)
    nested = yaml.safe_dump(_study()).replace("    options:", "    task: pair\n    options:", 1)
    path.write_text(nested)
    with pytest.raises(StudyConfigError, match="found the key 'task' twice"):
        load_config(path)


def test_a_second_study_in_a_busy_run_folder_is_refused(tmp_path):
    config = parse_config(_study(), folder=tmp_path)
    with RunFolder(tmp_path / "run", "s", "minilm").lock():
        busy = "another process is running a study in .*run; wait for it to finish"
        with pytest.raises(RuntimeError, match=busy):
            run_study(config, tmp_path / "run", progress=False, report=False, log=lambda line: None)
    assert not (tmp_path / "run" / "finetune").exists()
    with RunFolder(tmp_path / "run", "s", "minilm").lock():  # released
        pass


def test_stage_lines_estimate_the_time_left_from_the_stages_timed(tmp_path):
    from ftlens.study.cache import RunFolder

    lines = []
    run = RunFolder(tmp_path / "run", "s", "minilm", log=lines.append)
    run.plan(["finetune/a", "finetune/b", "compare/a/x", "compare/b/x"])
    run.stage("finetune/a", {"i": 1}, lambda: {"v": 1})
    assert lines[0] == "stage 1/4 finetune/a ..."  # nothing timed yet
    run.ran[-1]["seconds"] = 120.0  # as if it had taken two minutes
    run.stage("finetune/b", {"i": 2}, lambda: {"v": 2})
    assert lines[2] == "stage 2/4 finetune/b ... (est. 2 min left + 2 stages not yet timed)"
    run.ran[-1]["seconds"] = 60.0
    run.ran.append({"stage": "compare/a/x", "status": "ran", "seconds": 30.0})
    assert run.time_left("compare/b/x") == (30.0, 0)  # the mean of its kind
    run.stage("finetune/a", {"i": 1}, lambda: {"v": 1})
    assert lines[-1].startswith("stage 1/4 finetune/a: reused (")
