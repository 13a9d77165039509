"""A synthetic ``StudyResult`` with every part a report draws: two tasks (one learned, one
at its no-learning baseline), two evaluation sets with intervals, layer detail with
isotropy on each task's own set, probes with selectivity, an ablation with a baseline."""

import numpy as np
from ftlens import AblationResult, LayerComparison, ProbeResult
from ftlens.study.results import EvalSetInfo, LayerDetail, StageRun, StudyAblation, StudyResult, TaskOutcome

LAYERS = ["embeddings", "layer 1", "layer 2", "layer 3", "layer 4"]


def comparison(
    values: dict,
    half: float | dict = 0.02,
    n_inputs: int = 200,
    groups: int = 10,
    isotropy: dict | None = None,
    pairs: str = "diagonal",
) -> LayerComparison:
    values = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    halves = half if isinstance(half, dict) else {name: half for name in values}
    return LayerComparison(
        base="minilm",
        finetuned="tuned",
        layers=list(LAYERS),
        pairs=pairs,
        rows="tokens",
        n_rows=10 * n_inputs,
        n_inputs=n_inputs,
        values=values,
        ci=0.95,
        ci_groups=groups,
        intervals={
            name: np.stack([v - halves[name], np.minimum(v + halves[name], 1.0)])
            for name, v in values.items()
        },
        isotropy=isotropy,
    )


def _isotropy(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    def side() -> dict:
        return {
            "mean_cosine": list(rng.uniform(0.1, 0.9, 5)),
            "effective_rank": list(rng.uniform(5, 200, 5)),
            "top_k_variance_share": list(rng.uniform(0, 1, 5)),
            "dim_mean_abs_max": list(rng.uniform(0, 20, 5)),
        }

    return {"base": side(), "finetuned": side()}


def _probe(model: str, accuracy, control, n_eval: int = 400) -> ProbeResult:
    accuracy, control = np.asarray(accuracy, dtype=np.float64), np.asarray(control, dtype=np.float64)
    return ProbeResult(
        model=model,
        layers=list(LAYERS),
        tasks=["upos", "deprel"],
        kind="logistic",
        rows="words",
        scores={"accuracy": accuracy, "control_accuracy": control, "selectivity": accuracy - control},
        n_train={"upos": 2000, "deprel": 2000},
        n_eval={"upos": n_eval, "deprel": n_eval},
        vocabularies={"upos": [f"U{i}" for i in range(17)], "deprel": [f"D{i}" for i in range(30)]},
    )


def synthetic_study(measures=("rsa", "cka")) -> StudyResult:
    """parsing learned (LAS 80%, baseline 20%); pair at its baseline (accuracy 53% vs the
    majority's 52%) on a small eval set. In-domain: sentences for parsing, pairs for pair."""
    drop = np.array([1.0, 0.999, 0.97, 0.85, 0.6])
    small = np.array([1.0, 1.0, 0.999, 0.995, 0.993])
    compare = {
        "parsing": {
            "sentences": comparison({"rsa": drop, "cka": drop + 0.01}),
            "pairs": comparison(
                {"rsa": np.minimum(drop + 0.1, 1.0), "cka": np.minimum(drop + 0.05, 1.0)},
                half=0.03,
                n_inputs=30,
            ),
        },
        "pair": {
            "sentences": comparison({"rsa": small, "cka": small}, half=0.004),
            "pairs": comparison({"rsa": small - 0.001, "cka": small}, half=0.004, n_inputs=30),
        },
    }
    compare = {t: {s: _only(c, measures) for s, c in sets.items()} for t, sets in compare.items()}
    detail = {
        "parsing": LayerDetail(
            "sentences", {"tokens": comparison({"cka": np.eye(5)}, pairs="all", isotropy=_isotropy(1))}
        ),
        "pair": LayerDetail(
            "pairs", {"tokens": comparison({"cka": np.eye(5) * 0.9}, pairs="all", isotropy=_isotropy(2))}
        ),
    }
    for d in detail.values():
        d.by_rows["tokens"].intervals = {}
    base_acc = np.array([[0.995, 0.60], [0.995, 0.70], [0.996, 0.80], [0.997, 0.85], [0.995, 0.84]])
    control = np.array([[0.90, 0.75], [0.90, 0.76], [0.90, 0.78], [0.90, 0.79], [0.90, 0.80]])
    probes = {
        "base": {"sentences": _probe("minilm", base_acc, control)},
        "parsing": {
            "sentences": _probe(
                "parsing", base_acc + [[0, 0], [0, 0], [0, 0.01], [0, 0.08], [0, 0.1]], control
            )
        },
        "pair": {
            "sentences": _probe("pair", base_acc - [[0, 0], [0, 0], [0, 0], [0, 0.01], [0, 0.2]], control)
        },
    }
    ablation = AblationResult(
        kind="freeze",
        task="pair",
        metric="accuracy",
        base="minilm",
        rows=[
            {"k": k, "value": v, "metrics": {}, "model_dir": "m"}
            for k, v in ((0, 0.53), (2, 0.60), (4, 0.52))
        ],
        baseline={"value": 0.52, "rule": "always the majority class 'a'", "n": 150},
    )
    return StudyResult(
        study="synthetic",
        base="minilm",
        source="study.yaml",
        config={
            "compare": {"measures": list(measures), "rows": "tokens"},
            "isotropy": {"rows": ["tokens"]},
            "probes": {"in_domain": ["sentences"]},
        },
        versions={"ftlens": "0"},
        tasks={
            "parsing": TaskOutcome(
                "parsing",
                "las",
                "runs/parsing/model",
                "f" * 64,
                True,
                {"eval_las": 80.0},
                baseline={"value": 20.0, "rule": "each word's head the word before", "n": 4000},
            ),
            "pair": TaskOutcome(
                "pair",
                "accuracy",
                "runs/pair/model",
                "e" * 64,
                True,
                {"eval_accuracy": 0.53},
                baseline={"value": 0.52, "rule": "always the majority class 'a'", "n": 150},
            ),
        },
        evaluation={
            "sentences": EvalSetInfo(["parsing"], {"generated": "sentences", "n": 200}, 200),
            "pairs": EvalSetInfo(["pair"], {"generated": "pairs", "n": 30}, 30),
        },
        compare=compare,
        detail=detail,
        probes=probes,
        ablations=[StudyAblation("pair", ablation)],
        stages=[StageRun("compare/pair/pairs", "ran", 1.5)],
        seconds=2.0,
    )


def _only(result: LayerComparison, measures) -> LayerComparison:
    result.values = {m: result.values[m] for m in measures}
    result.intervals = {m: result.intervals[m] for m in measures}
    return result
