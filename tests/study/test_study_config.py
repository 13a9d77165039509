"""Study files: what a valid one reads into, and one test per kind of bad input, each
error naming the key, its path in the file and what would fit."""

import json

import ftlens
import pytest
import transformers
import yaml
from ftlens.study import StudyConfigError, load_config, parse_config, run_study


def _study(**changes) -> dict:
    study = {
        "name": "s",
        "base": "minilm",
        "tasks": {
            "nli": {
                "task": "pair",
                "train": {"generated": "pairs", "n": 20},
                "eval": {"generated": "pairs", "n": 12, "seed": 1},
                "options": {"max_steps": 2},
            }
        },
        "evaluation": {"ewt": {"data": {"generated": "sentences", "n": 20}, "in_domain": ["nli"]}},
    }
    study.update(changes)
    return study


def _write(tmp_path, study) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return str(path)


def test_valid_study_reads_into_dataclasses_with_defaults(tmp_path):
    (tmp_path / "dev.conllu").write_text("")
    study = _study(
        probes={"train": "dev.conllu", "eval": {"dev": "dev.conllu"}},
        ablations=[{"kind": "freeze", "task": "nli", "ks": [0, 2]}],
    )
    config = load_config(_write(tmp_path, study))
    assert config.tasks[0].options == {"max_steps": 2} and config.tasks[0].train.generated == "pairs"
    assert (
        config.compare.options.measures == ("rsa",) and config.compare.options.ci == 0.95
    )  # the paper's RSA, with intervals
    assert config.probes.train.path == str(tmp_path / "dev.conllu")  # relative to the file's folder
    assert config.probes.train.format == "conllu"
    assert config.ablations[0].ks == (0, 2)
    assert config.out == str(tmp_path / "s_out")


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"tasx": {}}, "tasx", r"unknown key \(did you mean 'tasks'\?\)"),
        ({"compare": {"meausres": ["rsa"]}}, "compare.meausres", r"did you mean 'measures'\?"),
        (
            {"compare": {"measures": ["rsa", "ckaa"]}},
            r"compare.measures\[1\]",
            r"'ckaa' is not valid \(did you mean 'cka'\?\)",
        ),
        ({"compare": {"ci": 95}}, "compare.ci", r"a confidence level in \(0, 1\)"),
        ({"compare": {"pairs": "diag"}}, "compare.pairs", r"choose from \['diagonal', 'all'\]"),
        (
            {"isotropy": {"rows": ["tokens", "cls", "sentence"]}},
            r"isotropy.rows\[2\]",
            "'sentence' is not valid",
        ),
        (
            {"ablations": [{"kind": "freze", "task": "nli"}]},
            r"ablations\[0\].kind",
            r"did you mean 'freeze'\?",
        ),
        ({"ablations": [{"kind": "freeze", "task": "qa"}]}, r"ablations\[0\].task", r"choose from \['nli'\]"),
    ],
)
def test_unknown_keys_and_values_name_their_path_and_the_choices(tmp_path, change, where, message):
    with pytest.raises(StudyConfigError, match=rf"study.yaml: {where}: .*{message}"):
        load_config(_write(tmp_path, _study(**change)))


def test_unknown_task_option_and_task_kind(tmp_path):
    study = _study()
    study["tasks"]["nli"]["options"] = {"epoch": 1}
    with pytest.raises(
        StudyConfigError, match=r"tasks.nli.options.epoch: unknown key \(did you mean 'epochs'\?\)"
    ):
        load_config(_write(tmp_path, study))
    study["tasks"]["nli"]["options"] = {}
    study["tasks"]["nli"]["task"] = "nli"
    with pytest.raises(StudyConfigError, match=r"tasks.nli.task: 'nli' is not valid; choose from \['pair'"):
        load_config(_write(tmp_path, study))


def test_evaluation_set_naming_an_unknown_task(tmp_path):
    study = _study(evaluation={"ewt": {"data": {"generated": "sentences"}, "in_domain": ["parsing"]}})
    with pytest.raises(
        StudyConfigError,
        match=r"evaluation.ewt.in_domain\[0\]: 'parsing' is not valid; "
        r"choose from \['nli'\]",
    ):
        load_config(_write(tmp_path, study))


def test_data_file_that_does_not_exist(tmp_path):
    study = _study(evaluation={"ewt": {"data": "ud/en_ewt-ud-dev.conllu"}})
    with pytest.raises(
        StudyConfigError,
        match=r"evaluation.ewt.data.path: '.*ud/en_ewt-ud-dev.conllu' does "
        "not exist: check the path",
    ):
        load_config(_write(tmp_path, study))


def test_unset_environment_variable_in_a_path(tmp_path, monkeypatch):
    monkeypatch.delenv("FTLENS_NOT_SET", raising=False)
    study = _study(evaluation={"ewt": {"data": "$FTLENS_NOT_SET/dev.conllu"}})
    with pytest.raises(StudyConfigError, match=r"uses \$FTLENS_NOT_SET, which is not set"):
        load_config(_write(tmp_path, study))


def test_missing_keys_bad_yaml_and_unknown_suffix(tmp_path):
    with pytest.raises(StudyConfigError, match="evaluation: missing"):
        parse_config({k: v for k, v in _study().items() if k != "evaluation"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyConfigError, match="not valid YAML"):
        load_config(bad)
    (tmp_path / "dev.data").write_text("x")
    with pytest.raises(
        StudyConfigError,
        match=r"evaluation.ewt.data.format: cannot tell the format of "
        r"'dev.data' .* give format, one of \['conllu'",
    ):
        load_config(_write(tmp_path, _study(evaluation={"ewt": {"data": "dev.data"}})))
    with pytest.raises(FileNotFoundError, match="study file .* does not exist"):
        load_config(tmp_path / "none.yaml")


def test_checkpoint_of_another_base_architecture(tmp_path):
    config = transformers.BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    folder = tmp_path / "other"
    transformers.BertModel(config).save_pretrained(folder)
    study = _study(tasks={"nli": {"task": "pair", "checkpoint": str(folder)}})
    with pytest.raises(
        StudyConfigError,
        match=r"tasks.nli.checkpoint: .* is a \{'model_type': 'bert', "
        r"'layers': 2, 'hidden': 32\}, but the base 'minilm' is a .*"
        "'layers': 6, 'hidden': 384",
    ):
        run_study(
            parse_config(study, folder=tmp_path), tmp_path / "run", progress=False, log=lambda line: None
        )
    assert not (tmp_path / "run" / "stages").exists()


def test_run_folder_holding_another_study_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "study.json").write_text(json.dumps({"study": "other", "base": "minilm"}))
    refused = (r"holds another study with other settings \(\['study'\] differ\) \(study 'other', this one "
               r".*\): pass another output folder")
    with pytest.raises(ValueError, match=refused):
        run_study(parse_config(_study()), tmp_path / "run", progress=False, log=lambda line: None)


def test_checkpoint_with_half_its_ablation_data_is_refused(tmp_path):
    study = _study()
    study["tasks"]["nli"]["checkpoint"] = str(ftlens.activations.models.packaged_minilm_path())
    del study["tasks"]["nli"]["eval"]
    with pytest.raises(
        StudyConfigError,
        match="tasks.nli: a checkpoint's train and eval data serve its ablations: give both or neither",
    ):
        parse_config(study)
