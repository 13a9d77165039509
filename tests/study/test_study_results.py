"""A study's results are typed: StudyResult round-trips through results.json, and a file
of another schema version is refused, saying what to do."""

import json

import numpy as np
import pytest
from ftlens import AblationResult, LayerComparison, ProbeResult
from ftlens.study import ResultsVersionError, StudyResult
from ftlens.study.results import SCHEMA, EvalSetInfo, LayerDetail, StageRun, StudyAblation, TaskOutcome


def _comparison(pairs: str = "diagonal") -> LayerComparison:
    values = np.array([1.0, 0.8, np.nan]) if pairs == "diagonal" else np.eye(3)
    return LayerComparison(base="minilm", finetuned="tuned", layers=["embeddings", "layer 1", "layer 2"],
                           pairs=pairs, rows="tokens", n_rows=40, n_inputs=4, values={"rsa": values},
                           undefined={"rsa": [2]} if pairs == "diagonal" else {}, ci=0.95, ci_groups=2,
                           intervals={"rsa": np.stack([values - 0.1, values + 0.1])},
                           isotropy={"base": {"mean_cosine": [None, 0.5, 0.4]},
                                     "finetuned": {"mean_cosine": [None, 0.6, 0.7]}})


def study_result() -> StudyResult:
    probe = ProbeResult(model="minilm", layers=["embeddings", "layer 1"], tasks=["upos"], kind="logistic",
                        rows="words", scores={"accuracy": np.array([[0.5], [np.nan]])},
                        strength=np.array([[1e-4], [1e-3]]), n_train={"upos": 10}, n_eval={"upos": 5})
    ablation = AblationResult(kind="freeze", task="pair", metric="accuracy", base="minilm",
                              rows=[{"k": 0, "value": 0.5, "metrics": {}, "model_dir": "m"}])
    return StudyResult(
        study="s", base="minilm", source="study.yaml", config={"compare": {"rows": "tokens"}},
        versions={"ftlens": "0"},
        tasks={"pair": TaskOutcome("pair", "accuracy", "m", "f" * 64, True, {"eval_accuracy": 0.5},
                                   [{"step": 1}])},
        evaluation={"dev": EvalSetInfo(["pair"], {"generated": "pairs", "n": 4}, 4)},
        compare={"pair": {"dev": _comparison()}},
        detail={"pair": LayerDetail("dev", {"tokens": _comparison("all")})},
        probes={"base": {"dev": probe}}, ablations=[StudyAblation("pair", ablation)],
        stages=[StageRun("compare/pair/dev", "ran", 1.5)], seconds=2.0,
    )


def test_results_round_trip_through_json(tmp_path):
    result = study_result()
    result.save(tmp_path / "results.json")
    again = StudyResult.load(tmp_path)
    assert again.to_dict() == result.to_dict()
    assert json.loads((tmp_path / "results.json").read_text())["schema"] == SCHEMA
    np.testing.assert_array_equal(again.compare["pair"]["dev"].rsa, [1.0, 0.8, np.nan])
    assert again.in_domain("pair", "dev") and again.compare_rows == "tokens"
    assert again.detail["pair"].by_rows["tokens"].values["rsa"].shape == (3, 3)
    assert np.isnan(again.probes["base"]["dev"].accuracy[1, 0])
    assert again.ablations[0].result.rows[0]["k"] == 0


@pytest.mark.parametrize(("schema", "message"), [
    (None, r"no schema version \(an earlier ftlens\); this ftlens reads schema 1: rerun the study"),
    (0, "schema 0; this ftlens reads schema 1: rerun the study"),
    (SCHEMA + 1, r"schema 2, newer than this ftlens reads \(1\): upgrade ftlens"),
])
def test_results_of_another_schema_are_refused(tmp_path, schema, message):
    data = study_result().to_dict()
    if schema is None:
        del data["schema"]
    else:
        data["schema"] = schema
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsVersionError, match=f"results.json: the results have {message}"):
        StudyResult.load(tmp_path / "results.json")


def test_the_report_refuses_results_of_another_schema(tmp_path):
    from ftlens.study.report import build_report

    data = study_result().to_dict()
    data["schema"] = SCHEMA + 1
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(ResultsVersionError, match="upgrade ftlens"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
