"""Seeds in a study: each task fine-tuned once per seed, side by side, each seed's run
reused when the study is rerun or extended; the file's seeds and samples checked."""

import json
from pathlib import Path

import pytest
import yaml
from ftlens.study import StudyConfigError, parse_config, run_study
from ftlens.study.inputs import load


def _study(**changes) -> dict:
    study = {
        "name": "s",
        "base": "minilm",
        "seeds": [4, 2],
        "tasks": {
            "nli": {
                "task": "pair",
                "train": {"generated": "pairs", "n": 24},
                "eval": {"generated": "pairs", "n": 12, "seed": 1},
                "options": {"max_steps": 2, "batch_size": 8, "max_length": 40},
            }
        },
        "evaluation": {"ewt": {"data": {"generated": "sentences", "n": 20}, "in_domain": ["nli"]}},
    }
    study.update(changes)
    return study


@pytest.mark.parametrize("seeds, problem", [
    ([1, 2, 1], r"seeds: seeds \[1\] appear more than once"),
    (0, r"seeds: must be positive"),
    ("three", r"seeds: expected a list"),
    ([1.5], r"seeds: seed 1.5 is not a whole number"),
])
def test_bad_seeds_are_refused_by_key(seeds, problem):
    with pytest.raises(StudyConfigError, match=problem):
        parse_config(_study(seeds=seeds))


def test_seeds_may_be_a_count_and_refuse_a_seed_option():
    assert parse_config(_study(seeds=3)).seeds == (0, 1, 2)
    study = _study()
    study["tasks"]["nli"]["options"]["seed"] = 5
    with pytest.raises(StudyConfigError, match=r"tasks\.nli\.options\.seed: the study's seeds set"):
        parse_config(study)


def test_a_sample_is_a_fixed_random_subset_in_file_order(tmp_path):
    lines = ["index\tsentence1\tsentence2\tlabel"] + [f"{i}\tp {i}\th {i}\tentailment" for i in range(50)]
    (tmp_path / "pairs.tsv").write_text("\n".join(lines) + "\n")

    def sample(**spec):
        study = _study(evaluation={"e": {"data": {"path": "pairs.tsv", **spec}}})
        return load(parse_config(study, folder=tmp_path).evaluation[0].data)

    first = sample(sample=10, seed=3)
    numbers = [int(p.premise.split()[1]) for p in first]
    assert len(first) == 10 and numbers == sorted(numbers) and len(set(numbers)) == 10
    assert first == sample(sample=10, seed=3) and first != sample(sample=10, seed=4)
    inside = [int(p.premise.split()[1]) for p in sample(start=10, limit=20, sample=5)]
    assert len(inside) == 5 and all(10 <= n < 30 for n in inside)
    with pytest.raises(ValueError, match=r"sample=60 is more than the 50 examples"):
        sample(sample=60)
    with pytest.raises(StudyConfigError, match=r"evaluation\.e\.data\.seed: a file's seed draws its sample"):
        sample(seed=2)


def test_a_study_fine_tunes_every_seed_and_reuses_them(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(_study()))
    with pytest.raises(StudyConfigError, match=r"seeds: the stages after fine-tuning do not take seeds yet"):
        run_study(path, tmp_path / "out", progress=False, log=lambda line: None)
    assert run_study(path, tmp_path / "out", progress=False, finetune_only=True, workers=2,
                     log=lambda line: None) is None
    record = json.loads((tmp_path / "out" / "stages" / "finetune__nli.json").read_text())["result"]
    assert record["seeds"] == [4, 2] and [r["seed"] for r in record["runs"]] == [4, 2]
    folders = [r["model_dir"] for r in record["runs"]]
    assert all(f.endswith(f"seed-{s}/model") for f, s in zip(folders, [4, 2], strict=True))
    finished = {f: (Path(f).parent / "metrics.json").stat().st_mtime_ns for f in folders}

    path.write_text(yaml.safe_dump(_study(seeds=[2, 4, 0])))  # one more seed: only it trains
    lines = []
    run_study(path, tmp_path / "out", progress=False, finetune_only=True, workers=1, log=lines.append)
    record = json.loads((tmp_path / "out" / "stages" / "finetune__nli.json").read_text())["result"]
    assert record["seeds"] == [2, 4, 0]
    assert {f: (Path(f).parent / "metrics.json").stat().st_mtime_ns for f in folders} == finished
    assert any("stage 1/1 finetune/nli ..." in line for line in lines)
