"""A study's results, typed: what ``run_study`` returns, ``results.json`` holds and the
report reads. The file carries a schema version; a file of another version is refused
with a message that says how to get one this version reads."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._util.jsonresult import JsonResult
from ..compare.models import LayerComparison
from ..finetuning.ablate import AblationResult
from ..finetuning.run import get_task
from ..finetuning.trajectory import Trajectory
from ..probes.result import ProbeResult

SCHEMA = 1  # results.json's layout; raise it when a field changes meaning or shape


class ResultsVersionError(ValueError):
    """A results.json written under another schema than this version of ftlens reads."""


@dataclass
class TaskOutcome:
    """One fine-tuned model of the study: trained here, or a checkpoint used as is
    (``trained`` False, no metrics). With the study's seeds, one run per seed: ``runs``
    (seed, model_dir, metrics, fingerprint each; ``model_dir`` is then the first seed's)
    and ``bootstrap``, the Multi-Bootstrap of the headline metric over seeds and eval
    examples (``ftlens.similarity.bootstrap.Interval.to_dict``). A study with ``track``
    keeps each run's ``trajectory`` (in ``runs`` with seeds)."""

    task: str
    metric: str
    model_dir: str
    fingerprint: str
    trained: bool
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    baseline: dict | None = None  # what a model that learned nothing scores (FinetuneTask.baseline)
    seeds: list[int] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    bootstrap: dict | None = None
    trajectory: dict | None = None  # a tracked run's (Trajectory.to_dict); with seeds, each run's own

    def trajectories(self) -> list[Trajectory]:
        """The tracked runs' trajectories: one, or one per seed (in seed-list order)."""
        found = [r.get("trajectory") for r in self.runs] if self.runs else [self.trajectory]
        return [Trajectory.from_dict(t) for t in found if t is not None]

    @property
    def percent(self) -> bool:
        """Whether the metric is in percent (else a fraction of 1)."""
        return get_task(self.task).percent

    @property
    def value(self) -> float | None:
        """The headline metric on the eval set (None: a checkpoint, not evaluated); with
        seeds, its mean over the seeds."""
        if self.runs:
            return float(sum(self.values) / len(self.values))
        return self.metrics.get(f"eval_{self.metric}")

    @property
    def values(self) -> list[float]:
        """Each seed's headline metric (one value without seeds)."""
        if self.runs:
            return [run["metrics"][f"eval_{self.metric}"] for run in self.runs]
        return [] if self.value is None else [self.value]

    def as_percent(self, value: float | None) -> float | None:
        return None if value is None else value * (1 if self.percent else 100)


@dataclass
class EvalSetInfo:
    """An evaluation set: the tasks it is in-domain for, where its data came from, its size."""

    in_domain: list[str]
    data: dict
    examples: int


@dataclass
class LayerDetail:
    """A task's layer detail on one evaluation set: one all-pairs comparison (CKA heatmap and
    isotropy of both models) per rows kind."""

    set: str
    by_rows: dict[str, LayerComparison] = field(default_factory=dict)


@dataclass
class StudyAblation:
    """An ablation sweep of one of the study's tasks (``name``: the task's name in the study)."""

    name: str
    result: AblationResult


@dataclass
class ProcedureComparison:
    """Task ``task`` minus task ``against`` (the study file's ``against``), paired by seed:
    ``metric`` (the headline metric's ``Difference.to_dict``) and ``layers[set][measure]``
    (per layer)."""

    task: str
    against: str
    metric: dict
    layers: dict[str, dict[str, dict]] = field(default_factory=dict)


@dataclass
class StageRun:
    stage: str
    status: str  # "ran" or "reused"
    seconds: float


@dataclass
class StudyResult(JsonResult):
    """Everything a study found, with the study file as read (``config``) and the versions
    it ran with. ``compare[task][set]``; ``probes[model][set]`` (model: "base" or a task;
    a task with seeds: combined over its seeds); ``probe_changes[task][set][metric]``: a
    task with seeds' probe change from the base (a ``Difference`` dict, arrays [layers,
    tasks], Multi-Bootstrap over seeds and eval inputs)."""

    study: str
    base: str
    source: str
    config: dict
    versions: dict
    tasks: dict[str, TaskOutcome]
    evaluation: dict[str, EvalSetInfo]
    compare: dict[str, dict[str, LayerComparison]]
    detail: dict[str, LayerDetail]
    probes: dict[str, dict[str, ProbeResult]] | None = None
    probe_changes: dict[str, dict[str, dict]] | None = None
    ablations: list[StudyAblation] = field(default_factory=list)
    procedures: list[ProcedureComparison] = field(default_factory=list)
    stages: list[StageRun] = field(default_factory=list)
    seconds: float = 0.0
    ranks: int = 1
    schema: int = SCHEMA

    # -- what the report asks of the study's settings -------------------------------------
    def in_domain(self, task: str, set_name: str) -> bool:
        return task in self.evaluation[set_name].in_domain

    @property
    def compare_rows(self) -> str:
        return (self.config.get("compare") or {}).get("rows", "tokens")

    @property
    def isotropy_rows(self) -> list[str]:
        kinds = self.config.get("isotropy", {})
        return kinds.get("rows", ["tokens", "cls"]) if isinstance(kinds, dict) else []

    def isotropy_details(self) -> list[tuple[str, str, LayerDetail, LayerComparison]]:
        """(rows kind, task, its detail, the comparison with isotropy) for every rows kind of
        ``isotropy.rows`` and every task measured with it."""
        return [(kind, task, detail, detail.by_rows[kind]) for kind in self.isotropy_rows
                for task, detail in self.detail.items()
                if kind in detail.by_rows and detail.by_rows[kind].isotropy is not None]

    @property
    def probe_in_domain(self) -> list[str]:
        return (self.config.get("probes") or {}).get("in_domain", [])

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "schema": self.schema, "study": self.study, "base": self.base, "source": self.source,
            "config": self.config, "versions": self.versions,
            "tasks": {name: asdict(t) for name, t in self.tasks.items()},
            "evaluation": {name: asdict(e) for name, e in self.evaluation.items()},
            "compare": _nested(self.compare, LayerComparison.to_dict),
            "detail": {task: {"set": d.set, **{rows: c.to_dict() for rows, c in d.by_rows.items()}}
                       for task, d in self.detail.items()},
            "probes": None if self.probes is None else _nested(self.probes, ProbeResult.to_dict),
            "probe_changes": self.probe_changes,
            "ablations": [{"name": a.name, **a.result.to_dict()} for a in self.ablations],
            "procedures": [asdict(p) for p in self.procedures],
            "stages": [asdict(s) for s in self.stages], "seconds": self.seconds, "ranks": self.ranks,
        }

    @classmethod
    def from_dict(cls, data: dict) -> StudyResult:
        check_schema(data.get("schema"))
        return cls(
            study=data["study"], base=data["base"], source=data["source"], config=data["config"],
            versions=data["versions"],
            tasks={name: TaskOutcome(**t) for name, t in data["tasks"].items()},
            evaluation={name: EvalSetInfo(**e) for name, e in data["evaluation"].items()},
            compare=_nested(data["compare"], LayerComparison.from_dict),
            detail={task: LayerDetail(d["set"], {rows: LayerComparison.from_dict(c)
                                                 for rows, c in _without(d, "set").items()})
                    for task, d in data["detail"].items()},
            probes=None if data.get("probes") is None else _nested(data["probes"], ProbeResult.from_dict),
            probe_changes=data.get("probe_changes"),
            ablations=[StudyAblation(a["name"], AblationResult.from_dict(_without(a, "name")))
                       for a in data.get("ablations", [])],
            procedures=[ProcedureComparison(**p) for p in data.get("procedures", [])],
            stages=[StageRun(**s) for s in data.get("stages", [])],
            seconds=data.get("seconds", 0.0), ranks=data.get("ranks", 1), schema=data["schema"],
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> StudyResult:
        path = Path(path)
        if path.is_dir():
            path = path / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run the study first (ftlens run STUDY.yaml)")
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        try:
            return cls.from_dict(data)
        except ResultsVersionError as err:
            raise ResultsVersionError(f"{path}: {err}") from None


def _nested(by_outer: dict, convert) -> dict:
    """{outer: {inner: x}} with ``convert(x)`` in place of each x."""
    return {outer: {inner: convert(x) for inner, x in inner_map.items()}
            for outer, inner_map in by_outer.items()}


def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


def check_schema(schema) -> None:
    """Refuses results of another schema: an older file lacks what this version reads, a
    newer one may mean something else by the same keys."""
    if schema == SCHEMA:
        return
    if schema is None or (isinstance(schema, int) and schema < SCHEMA):
        found = "no schema version (an earlier ftlens)" if schema is None else f"schema {schema}"
        raise ResultsVersionError(
            f"the results have {found}; this ftlens reads schema {SCHEMA}: rerun the study with this "
            "version (`ftlens run STUDY.yaml`: finished fine-tuning runs and stores are reused)")
    raise ResultsVersionError(
        f"the results have schema {schema}, newer than this ftlens reads ({SCHEMA}): upgrade ftlens "
        "(pip install -U ftlens) to read them")
