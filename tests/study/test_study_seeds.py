"""Seeds in a study: each task fine-tuned once per seed, side by side, each seed's run
reused when the study is rerun or extended; the file's seeds and samples checked."""

import html
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from ftlens.compare.models import LayerComparison
from ftlens.compare.seeds import across_seeds
from ftlens.finetuning.task import ExampleScores
from ftlens.probes import ProbeResult, probes_across_seeds
from ftlens.similarity.bootstrap import multibootstrap
from ftlens.study import StudyConfigError, parse_config, run_study
from ftlens.study.inputs import load
from ftlens.study.report.findings import findings, flags


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


def _two_procedures(**changes) -> dict:
    """Two procedures on the same data, the second compared with the first."""
    compare = {"measures": ["rsa", "cka"], "ci_groups": 4, "draws": 40}
    study = _study(compare=compare, isotropy=False, **changes)
    base = study["tasks"]["nli"]
    study["tasks"] = {"gentle": {**base, "options": {**base["options"], "learning_rate": 1e-6}},
                      "bold": {**base, "options": {**base["options"], "learning_rate": 1e-4},
                               "against": "gentle"}}
    study["evaluation"]["ewt"]["in_domain"] = ["gentle", "bold"]
    study["ablations"] = [{"kind": "freeze", "task": "bold", "ks": [0, 6]}]
    study["probes"] = {"tasks": ["upos"], "train": {"generated": "sentences", "n": 30, "seed": 5},
                       "eval": {"dev": {"generated": "sentences", "n": 16, "seed": 6}},
                       "options": {"l2": 1e-3, "max_passes": 5}}
    study["track"] = {"data": {"generated": "sentences", "n": 10, "seed": 7}, "every": 1, "measures": ["cka"]}
    return study


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeded")
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(_two_procedures()))
    return run_study(path, folder / "out", progress=False, log=lambda line: None), folder


def test_a_seeded_study_bootstraps_the_metric_and_combines_the_comparisons(seeded):
    results, folder = seeded
    for name, task in results.tasks.items():
        saved = [Path(r["model_dir"]).with_name("scores.json").read_text() for r in task.runs]
        scores = [ExampleScores.from_dict(json.loads(text)) for text in saved]
        want = multibootstrap(np.stack([s.num["accuracy"] for s in scores]),
                              np.stack([s.den["accuracy"] for s in scores]), seeds=task.seeds, draws=40)
        assert task.bootstrap == pytest.approx(want.to_dict()) and task.seeds == [4, 2]
        assert task.value == pytest.approx(np.mean([r["metrics"]["eval_accuracy"] for r in task.runs]))
        per_seed = [LayerComparison.from_dict(json.loads(
            (folder / "out" / "stages" / f"compare__{name}__seed-{s}__ewt.json").read_text())["result"])
            for s in (4, 2)]
        combined = results.compare[name]["ewt"]
        want = across_seeds(per_seed, [4, 2], 0.95)
        assert combined.seeds == [2, 4] and combined.interval_method == "multibootstrap"
        for measure in ("rsa", "cka"):
            assert np.array_equal(combined.values[measure], want.values[measure])
            assert np.array_equal(combined.intervals[measure], want.intervals[measure])
    (comparison,) = results.procedures
    assert (comparison.task, comparison.against) == ("bold", "gentle")
    gain = results.tasks["bold"].value - results.tasks["gentle"].value
    assert comparison.metric["estimate"] == pytest.approx(gain)
    assert comparison.metric["paired"] and set(comparison.layers["ewt"]) == {"rsa", "cka"}
    (sweep,) = results.ablations
    assert sweep.result.seeds == [4, 2] and [row["k"] for row in sweep.result.rows] == [0, 6]
    assert sweep.result.rows[0]["values"] == pytest.approx(results.tasks["bold"].values)  # k = 0 reused


def test_a_seeded_study_probes_every_seed_and_combines_them(seeded):
    results, folder = seeded
    stages = folder / "out" / "stages"

    def stored(name: str) -> ProbeResult:
        sets = json.loads((stages / f"probe__{name}.json").read_text())["result"]  # trained once, every set
        return ProbeResult.from_dict(sets["dev"])

    base = stored("base")
    for name in ("gentle", "bold"):
        per_seed = [stored(f"{name}__seed-{s}") for s in (4, 2)]
        want = probes_across_seeds(per_seed, [4, 2], 0.95, draws=40)
        combined = results.probes[name]["dev"]
        assert combined.seeds == [2, 4] and combined.interval_method == "multibootstrap"
        np.testing.assert_array_equal(combined.intervals["accuracy"], want.intervals["accuracy"])
        np.testing.assert_array_equal(combined.scores["selectivity"], want.scores["selectivity"])
        change = results.probe_changes[name]["dev"]["accuracy"]
        assert not change["paired"]
        np.testing.assert_allclose(change["estimate"], want.scores["accuracy"] - base.scores["accuracy"],
                                   rtol=0, atol=1e-12)
    assert results.probes["base"]["dev"].by_input == {}  # the counts stay in the stages
    assert base.by_input["accuracy"].shape[-1] == 16


def test_a_tracked_study_keeps_every_seeds_trajectory_and_draws_them(seeded):
    results, folder = seeded
    for name, task in results.tasks.items():
        trajectories = task.trajectories()
        assert len(trajectories) == 2
        assert all(t.steps == [0, 1, 2] and t.measures == ["cka"] for t in trajectories)
        np.testing.assert_allclose(trajectories[0].values["cka"][0], 1.0, rtol=0, atol=1e-6)
        cells = (folder / "out" / f"trajectory_{name}.csv").read_text().splitlines()
        assert sum(row.startswith(f"{name} cka,") for row in cells) == 3 * 7  # steps x layers
        assert sum(row.startswith(f"{name} change,") for row in cells) == 3 * 7
    page = (folder / "out" / "report.html").read_text()
    assert "trajectory_bold.png" in page and "While fine-tuning ran" in page


def test_a_study_without_seeds_tracks_its_run(tmp_path):
    study = _study(seeds=None, isotropy=False, track={"data": {"generated": "sentences", "n": 8}, "every": 2})
    study.pop("seeds")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    results = run_study(path, tmp_path / "out", progress=False, log=lambda line: None)
    (trajectory,) = results.tasks["nli"].trajectories()
    assert trajectory.steps == [0, 2] and trajectory.measures == ["rsa", "cka"]
    assert (tmp_path / "out" / "trajectory_nli.png").is_file()


def test_a_seeded_report_states_seeds_and_procedures(seeded):
    results, folder = seeded
    page = (folder / "out" / "report.html").read_text()
    stated = [*findings(results), *flags(results)]
    assert {f.topic for f in findings(results)} >= {"seeds", "procedures", "similarity", "probes"}
    probe_findings = [f for f in findings(results) if f.topic == "probes"]
    assert all("Multi-Bootstrap over 2 seeds" in f.text for f in probe_findings) and len(probe_findings) == 2
    probe_curves = (folder / "out" / "probes_dev.csv").read_text().splitlines()
    assert sum(", seed " in row for row in probe_curves) == 2 * 2 * 7  # two procedures x two seeds x 7 layers
    for item in stated:
        assert html.escape(item.text) in page, item.text
    assert "seeds_metric.png" in page and (folder / "out" / "seeds_metric.csv").is_file()
    rows = (folder / "out" / "seeds_metric.csv").read_text().splitlines()
    assert sum("each seed" in row for row in rows) == 4  # two runs of each procedure
    curves = (folder / "out" / "similarity_cka.csv").read_text().splitlines()
    assert sum(", seed " in row for row in curves) == 2 * 2 * 7  # two procedures x two seeds x 7 layers


def test_a_seeded_study_reruns_from_its_cache(seeded):
    results, folder = seeded
    again = run_study(folder / "study.yaml", folder / "out", progress=False, log=lambda line: None)
    assert {s.status for s in again.stages} == {"reused"}
    assert again.procedures == results.procedures


@pytest.mark.parametrize("change, where, problem", [
    (lambda s: s["tasks"]["bold"].update(against="nope"), r"tasks\.bold\.against",
     r"'nope' is not another task of the study"),
    (lambda s: s["tasks"]["bold"].update(against="bold"), r"tasks\.bold\.against", r"not another task"),
    (lambda s: s["tasks"]["bold"].update(eval={"generated": "pairs", "n": 12, "seed": 2}),
     r"tasks\.bold\.against", r"not scored on the same eval data"),
    (lambda s: s.pop("seeds"), r"tasks\.bold\.against", r"draws their seeds: give the study seeds"),
    (lambda s: s["track"].pop("data"), r"track\.data", r"missing \(required\)"),
    (lambda s: s["track"].update(evry=3), r"track\.evry", r"did you mean 'every'"),
    (lambda s: s["track"].update(every=0), r"track\.every", r"whole number of optimizer steps >= 1"),
])
def test_bad_comparisons_are_refused_by_key(change, where, problem):
    study = _two_procedures()
    change(study)
    with pytest.raises(StudyConfigError, match=where + ": .*" + problem):
        parse_config(study)
