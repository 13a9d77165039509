"""``run_study``: fine-tune -> compare -> layer detail (CKA heatmaps, isotropy) -> stores +
probes -> ablations -> results.json -> report, each stage cached in the run folder."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .._util import distributed as ranks
from .._util.options import from_mapping, to_mapping
from .._version import __version__
from ..activations.models import quiet_loading, resolve
from ..compare.models import compare_models
from ..finetuning import ablate, finetune, finetune_seeds
from ..finetuning.divergence import check_metrics
from ..finetuning.options import FinetuneOptions
from ..finetuning.run import get_task
from ..finetuning.tracking import TRAJECTORY
from . import seeded
from .cache import RunFolder
from .config import StudyConfig, StudyConfigError, TaskSpec, load_config
from .inputs import Examples, check_inputs, folder_fingerprint
from .results import SCHEMA, StudyResult

BASE = "base"  # the base model's name among the study's models


def run_study(
    study: str | os.PathLike | StudyConfig,
    out: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    report: bool = True,
    log: Callable[[str], None] = print,
    finetune_only: bool = False,
    workers: int | None = None,
) -> StudyResult | None:
    """Runs (or resumes) a study; returns its ``StudyResult`` (also ``out/results.json``) and, with
    ``report``, writes the report (``out/report.html`` and its PNGs) as well.

    study: a study YAML file or a ``StudyConfig``; out: the run folder (default: the
    file's ``out``). A rerun reuses every finished stage whose inputs are unchanged.
    finetune_only: run the fine-tuning stages alone (e.g. on a machine with a GPU; the
    analysis later reuses them) and return None. workers: seeds fine-tuned side by side
    (``ftlens.finetuning.finetune_seeds``; default: one per free core on a CPU)."""
    config = study if isinstance(study, StudyConfig) else load_config(study)
    started = ranks.init_from_env()  # under torchrun: evaluation sets sharded by rank
    try:
        with quiet_loading():
            return _run(config, out, progress and ranks.is_main(), report,
                        log if ranks.is_main() else _silent, finetune_only, workers)
    finally:
        if started:
            import torch.distributed as dist

            dist.destroy_process_group()


def _silent(line: str) -> None:
    pass


def _run(config: StudyConfig, out, progress: bool, report: bool, log: Callable[[str], None],
         finetune_only: bool, workers: int | None) -> StudyResult | None:
    start = time.perf_counter()
    run = RunFolder(out or config.out, config.name, config.base, log=log)
    with run.lock():
        return _stages(config, run, start, progress, report, log, finetune_only, workers)


def _stages(config: StudyConfig, run: RunFolder, start: float, progress: bool, report: bool,
            log: Callable[[str], None], finetune_only: bool, workers: int | None) -> StudyResult | None:
    log(f"study {config.name!r} -> {run.path}")
    run.plan(stage_names(config, finetune_only))
    examples = Examples()
    check_inputs(config, examples)
    models = {BASE: {"path": config.base, "fingerprint": folder_fingerprint(config.base)}}
    tasks = {}
    for spec in config.tasks:
        tasks[spec.name] = _finetune_stage(run, config, spec, examples, models[BASE], progress, workers)
        if not finetune_only:
            models[spec.name] = {
                "path": tasks[spec.name]["model_dir"],
                "fingerprint": tasks[spec.name]["fingerprint"],
            }
    if finetune_only:
        log("the fine-tuning stages are done (--finetune-only); rerun without it for the rest of the study")
        return None
    per_seed: dict = {}  # task -> set -> each seed's comparison (tasks with seeds)
    compared = _compare_stages(run, config, examples, models, tasks, per_seed, progress)
    results = {
        "schema": SCHEMA,
        "study": config.name,
        "config": config.raw,
        "source": config.source,
        "versions": versions(),
        "base": config.base,
        "tasks": tasks,
        "evaluation": {
            e.name: {
                "in_domain": list(e.in_domain),
                "data": e.data.describe(),
                "examples": examples.fingerprint(e.data)["examples"],
            }
            for e in config.evaluation
        },
        "compare": compared,
        "detail": _detail_stages(run, config, examples, models, progress),
        **_probe_stages(run, config, examples, models, tasks, progress),
        "ablations": [_ablation_stage(run, config, a, examples, models, progress) for a in config.ablations],
        "procedures": seeded.procedures(config, tasks, per_seed),
    }
    results["stages"] = run.ran
    results["seconds"] = time.perf_counter() - start
    results["ranks"] = ranks.rank_and_world()[1]
    results = StudyResult.from_dict(results)
    if ranks.is_main():
        results.save(run.path / "results.json")
        if report:
            from .report import build_report

            page = build_report(run.path)
            log(f"report: {page}")
    ranks.barrier()
    return results


def versions() -> dict:
    import numpy
    import transformers

    return {
        "ftlens": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def _finetune_stage(run: RunFolder, config: StudyConfig, spec: TaskSpec, examples: Examples, base: dict,
                    progress: bool, workers: int | None) -> dict:
    """The stage's record, with what a model that learned nothing scores on the task's eval
    set (``baseline``, not cached: it reads the data alone)."""
    task = get_task(spec.task)
    result = _trained_or_checkpoint(run, config, spec, examples, base, progress, workers)
    baseline = None
    if spec.eval is not None:
        baseline = task.baseline(examples(spec.eval), from_mapping(FinetuneOptions, spec.options))
    if config.seeds is not None and spec.checkpoint is None:
        first = result["runs"][0]  # the model of the analyses that take one seed (the layer detail)
        result = {**result, "model_dir": first["model_dir"], "fingerprint": first["fingerprint"],
                  "bootstrap": seeded.metric_bootstrap(config, result)}
    return {**result, "baseline": baseline}


def _trained_or_checkpoint(run: RunFolder, config: StudyConfig, spec: TaskSpec, examples: Examples,
                           base: dict, progress: bool, workers: int | None) -> dict:
    metric = get_task(spec.task).metric
    if spec.checkpoint is not None:
        _check_architecture(config, spec)
        inputs = {"checkpoint": spec.checkpoint, "fingerprint": folder_fingerprint(spec.checkpoint)}
        return run.stage(
            f"checkpoint/{spec.name}",
            inputs,
            lambda: {
                "task": spec.task,
                "metric": metric,
                "model_dir": spec.checkpoint,
                "metrics": {},
                "fingerprint": inputs["fingerprint"],
                "trained": False,
            },
        )
    inputs = {
        "task": spec.task,
        "options": spec.options,
        "base": base["fingerprint"],
        "train": examples.fingerprint(spec.train),
        "eval": examples.fingerprint(spec.eval),
    }
    if config.track is not None:  # recorded while a run trains: a tracked run is another run
        track = config.track
        inputs["track"] = {"data": examples.fingerprint(track.data), **to_mapping(track.options)}
    if config.seeds is not None:
        return _trained_seeds(run, config, spec, examples, inputs, progress, workers)

    def compute() -> dict:
        result = finetune(
            config.base,
            spec.task,
            examples(spec.train),
            examples(spec.eval),
            run.work_folder("finetune", spec.name, inputs),
            progress=progress,
            track=_track(config, examples),
            **spec.options,
        )
        return {
            "task": spec.task,
            "metric": metric,
            "model_dir": str(result.model_dir),
            "metrics": result.metrics,
            "history": result.history,
            "trained": True,
            "fingerprint": folder_fingerprint(result.model_dir),
            "trajectory": _trajectory(result.out_dir),
        }

    result = run.stage(f"finetune/{spec.name}", inputs, compute)
    # a diverged run that an earlier version cached is not a result
    cached = f"{Path(result['model_dir']).parent} and {run.path / 'stages'}/finetune__{spec.name}.json"
    check_metrics(result["metrics"], result["metrics"].get("step", "?"),
                  from_mapping(FinetuneOptions, spec.options), cached)
    return result


def _trained_seeds(run: RunFolder, config: StudyConfig, spec: TaskSpec, examples: Examples, inputs: dict,
                   progress: bool, workers: int | None) -> dict:
    """The runs of a task, one per seed of the study, side by side (finished ones reused,
    also when seeds are added)."""

    def compute() -> dict:
        runs = finetune_seeds(config.base, spec.task, examples(spec.train), examples(spec.eval),
                              run.work_folder("finetune", spec.name, inputs), config.seeds, workers=workers,
                              progress=progress, track=_track(config, examples), **spec.options)
        return {
            "task": spec.task,
            "metric": get_task(spec.task).metric,
            "trained": True,
            "seeds": runs.seeds,
            "runs": [_run_record(r) for r in runs.runs],
        }

    result = run.stage(f"finetune/{spec.name}", {**inputs, "seeds": list(config.seeds)}, compute)
    options = from_mapping(FinetuneOptions, spec.options)
    for r in result["runs"]:  # a diverged run that an earlier version cached is not a result
        check_metrics(r["metrics"], r["metrics"].get("step", "?"), options, Path(r["model_dir"]).parent)
    return result


def _run_record(result) -> dict:
    return {"seed": result.seed, "model_dir": str(result.model_dir), "metrics": result.metrics,
            "history": result.history, "fingerprint": folder_fingerprint(result.model_dir),
            "trajectory": _trajectory(result.out_dir)}


def _track(config: StudyConfig, examples: Examples) -> dict | None:
    """finetune's track= of the study's ``track`` section."""
    if config.track is None:
        return None
    return {"data": examples(config.track.data), **to_mapping(config.track.options)}


def _trajectory(run_dir) -> dict | None:
    """A run's trajectory (``trajectory.json``), when it was tracked."""
    path = Path(run_dir) / TRAJECTORY
    return json.loads(path.read_text()) if path.is_file() else None


def _check_architecture(config: StudyConfig, spec: TaskSpec) -> None:
    """A checkpoint must be the base model's architecture (same type, depth and width)."""
    from transformers import AutoConfig

    def shape(path):
        c = AutoConfig.from_pretrained(path)
        return {
            "model_type": c.model_type,
            "layers": getattr(c, "num_hidden_layers", None),
            "hidden": getattr(c, "hidden_size", None),
        }

    base, found = shape(resolve(config.base)), shape(spec.checkpoint)
    if base != found:
        raise StudyConfigError(
            config.source,
            f"tasks.{spec.name}.checkpoint",
            f"{spec.checkpoint} is a {found}, but the base {config.base!r} is a {base}: "
            "a checkpoint must be fine-tuned from the study's base model",
        )


def _compare_stages(run, config: StudyConfig, examples: Examples, models: dict, tasks: dict, per_seed: dict,
                    progress: bool) -> dict:
    """compare[task][set]: each task's model against the base on each set; a task with seeds
    has a comparison per seed, combined over seeds (kept in ``per_seed[task][set]``)."""
    out = {}
    for task in config.tasks:
        out[task.name] = {}
        for ev in config.evaluation:
            def stage(name: str, model: dict, ev=ev) -> dict:
                return _compare_stage(run, config, examples, models[BASE], model, ev, name, progress)

            if tasks[task.name].get("runs"):
                combined, theirs = seeded.compare_seeds(config, task.name, tasks[task.name], ev, stage)
                out[task.name][ev.name] = combined
                per_seed.setdefault(task.name, {})[ev.name] = theirs
            else:
                out[task.name][ev.name] = stage(f"compare/{task.name}/{ev.name}", models[task.name])
    return out


def _compare_stage(run, config: StudyConfig, examples: Examples, base: dict, model: dict, ev, name: str,
                   progress: bool) -> dict:
    """One model ({path, fingerprint}) against the base on evaluation set ``ev``, cached as
    stage ``name``."""
    c = config.compare
    inputs = {
        "settings": {**to_mapping(c.options), **to_mapping(c.capture)},
        "data": examples.fingerprint(ev.data),
        "base": base["fingerprint"],
        "finetuned": model["fingerprint"],
    }

    def compare() -> dict:
        return compare_models(resolve(config.base), model["path"], examples(ev.data), options=c.options,
                              capture=c.capture, distributed=True, progress=progress).to_dict()

    return run.stage(name, inputs, compare)


def _detail_set(config: StudyConfig, task: TaskSpec):
    """The evaluation set of a task's layer detail: its first in-domain set, else the first."""
    return next((e for e in config.evaluation if task.name in e.in_domain), config.evaluation[0])


def _detail_rows(config: StudyConfig) -> list[str]:
    """The rows kinds of the layer detail: the isotropy's, and the comparisons' for the heatmaps."""
    rows = list(config.isotropy.rows) if config.isotropy else []
    if config.compare.heatmaps and config.compare.capture.rows not in rows:
        rows.insert(0, config.compare.capture.rows)
    return rows


def _ablation_name(config: StudyConfig, spec) -> str:
    return f"ablate/{spec.kind}/{spec.task}" + (f"/{spec.side}" if spec.kind == "revert" else "")


def stage_names(config: StudyConfig, finetune_only: bool = False) -> list[str]:
    """Every stage of the study, in the order it runs."""
    names = [f"{'finetune' if t.checkpoint is None else 'checkpoint'}/{t.name}" for t in config.tasks]
    if finetune_only:
        return names
    for t in config.tasks:
        seeds = [f"seed-{s}/" for s in config.seeds] if config.seeds and t.checkpoint is None else [""]
        names += [f"compare/{t.name}/{seed}{e.name}" for seed in seeds for e in config.evaluation]
    names += [f"detail/{t.name}/{_detail_set(config, t).name}/{kind}" for t in config.tasks
              for kind in _detail_rows(config)]
    if config.probes:
        for t in [None, *config.tasks]:
            seeded_task = t is not None and config.seeds and t.checkpoint is None
            models = [f"{t.name}/seed-{s}" for s in config.seeds] if seeded_task else [t.name if t else BASE]
            for model in models:
                names += [f"store/{model}/{s}" for s in ["train", *config.probes.eval]]
                names.append(f"probe/{model}")
    return names + [_ablation_name(config, a) for a in config.ablations]


def _detail_stages(run, config: StudyConfig, examples: Examples, models: dict, progress: bool) -> dict:
    """Per task, on its detail set: layer x layer CKA (rows of compare.rows, for the
    heatmap) and isotropy of both models for each of isotropy.rows, one pass per rows kind."""
    capture = config.compare.capture
    rows = _detail_rows(config)
    top_k = config.isotropy.top_k if config.isotropy else 10
    out = {}
    for task in config.tasks:
        ev = _detail_set(config, task)
        out[task.name] = {"set": ev.name}
        for kind in rows:
            inputs = {
                "rows": kind,
                "top_k": top_k,
                "capture": {k: v for k, v in to_mapping(capture).items() if k != "rows"},
                "data": examples.fingerprint(ev.data),
                "base": models[BASE]["fingerprint"],
                "finetuned": models[task.name]["fingerprint"],
            }

            def compute(task=task, ev=ev, kind=kind) -> dict:
                import warnings

                with warnings.catch_warnings():  # [CLS] at the embedding layer is constant: NaN, recorded
                    warnings.simplefilter("ignore")
                    result = compare_models(
                        resolve(config.base),
                        models[task.name]["path"],
                        examples(ev.data),
                        ("cka",),
                        "all",
                        capture=dataclasses.replace(capture, rows=kind),
                        isotropy=True,
                        distributed=True,
                        progress=progress,
                    )
                return result.to_dict()

            out[task.name][kind] = run.stage(f"detail/{task.name}/{ev.name}/{kind}", inputs, compute)
    return out


def _probe_stages(run, config: StudyConfig, examples: Examples, models: dict, tasks: dict,
                  progress: bool) -> dict:
    """{"probes": probes[model][set], "probe_changes": ...}: every model's probes on every
    probe eval set, with intervals from the bootstrap over the eval sentences; a task with
    seeds probes each seed's model, combined over seeds (a Multi-Bootstrap over seeds and
    sentences). ``probe_changes[task][set]``: each task's change from the base, on the same
    drawn sentences. The per-input counts stay in the probe stages."""
    if not config.probes:
        return {"probes": None, "probe_changes": None}
    base = _probe_model(run, config, examples, BASE, models[BASE], progress)
    probes, changes = {BASE: seeded.probe_single(config, base, None)[0]}, {}
    for name, model in models.items():
        runs = tasks.get(name, {}).get("runs")
        if name == BASE:
            continue
        if not runs:
            tuned = _probe_model(run, config, examples, name, model, progress)
            probes[name], changes[name] = seeded.probe_single(config, tuned, base)
            continue
        per_seed = [_probe_model(run, config, examples, f"{name}/seed-{r['seed']}",
                                 {"path": r["model_dir"], "fingerprint": r["fingerprint"]}, progress)
                    for r in runs]
        probes[name], changes[name] = seeded.probe_seeds(config, tasks[name]["seeds"], per_seed, base)
    probes = {name: {s: {**r, "by_input": {}} for s, r in sets.items()} for name, sets in probes.items()}
    return {"probes": probes, "probe_changes": changes}


def _probe_model(run, config: StudyConfig, examples: Examples, name: str, model: dict,
                 progress: bool) -> dict:
    """One model's probes on every probe eval set ({set: ProbeResult dict}), its stores and
    probes each a cached stage (``store/<name>/<set>``; ``probe/<name>``: trained once,
    scored on every set)."""
    from ..activations import store
    from ..probes import probe

    p = config.probes
    stores = {}
    for set_name, spec in [("train", p.train), *p.eval.items()]:
        inputs = {
            "model": model["fingerprint"],
            "data": examples.fingerprint(spec),
            "rows": p.rows,
            "dtype": p.dtype,
        }
        path = run.work_folder("stores", f"{name}/{set_name}", inputs)

        def write(spec=spec, path=path) -> dict:
            store.write(resolve(model["path"]), examples(spec), path, p.dtype, rows=p.rows, progress=progress)
            return {"path": str(path)}

        stores[set_name] = run.stage(f"store/{name}/{set_name}", inputs, write, collective=False)["path"]
    inputs = {
        "model": model["fingerprint"],
        "train": examples.fingerprint(p.train),
        "eval": {set_name: examples.fingerprint(spec) for set_name, spec in p.eval.items()},
        "tasks": list(p.tasks),
        "rows": p.rows,
        "dtype": p.dtype,
        "options": to_mapping(p.options),
    }

    def fit() -> dict:  # trained once, scored on every set
        evals = {set_name: stores[set_name] for set_name in p.eval}
        results = probe(stores["train"], evals, p.tasks, options=p.options, progress=progress)
        return {set_name: result.to_dict() for set_name, result in results.items()}

    return run.stage(f"probe/{name}", inputs, fit, collective=False)


def _ablation_stage(run, config: StudyConfig, spec, examples: Examples, models: dict, progress: bool) -> dict:
    task = config.task(spec.task)
    options = {**task.options, **spec.options}
    name = _ablation_name(config, spec)
    inputs = {
        "kind": spec.kind,
        "task": task.task,
        "ks": spec.ks,
        "side": spec.side,
        "options": options,
        "base": models[BASE]["fingerprint"],
        "train": examples.fingerprint(task.train),
        "eval": examples.fingerprint(task.eval),
        "finetuned": models[task.name]["fingerprint"],
    }
    seeds = {} if config.seeds is None or task.checkpoint is not None else {"seeds": list(config.seeds)}
    inputs.update(seeds)

    def compute() -> dict:
        # the fine-tuned run's folder (the study's own, or the checkpoint's): what revert
        # reverts, and the k = 0 of freeze and reinit when its options are the sweep's; with
        # seeds, the folder of the task's seeds (its model is the first seed's)
        finetuned = Path(models[task.name]["path"]).parents[1 if seeds else 0]
        result = ablate(
            spec.kind,
            config.base,
            task.task,
            examples(task.train),
            examples(task.eval),
            run.work_folder("ablations", name.split("/", 1)[1], inputs),
            spec.ks,
            side=spec.side,
            finetuned=finetuned,
            progress=progress,
            **seeds,
            **options,
        )
        return {"name": task.name, **result.to_dict()}

    return run.stage(name, inputs, compute)


def stage_table(results: StudyResult) -> str:
    """What ran and what was reused, with the seconds of each stage."""
    lines = [f"{'stage':<44}{'status':>8}{'seconds':>10}"]
    for s in results.stages:
        lines.append(f"{s.stage:<44}{s.status:>8}{s.seconds:>10.1f}")
    return "\n".join(lines)
