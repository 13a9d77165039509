"""One fine-tuning procedure over several seeds: a fine-tuned model is one draw of the
procedure (head initialization, data order, dropout), and the spread over seeds is often
as large as the effects measured.

``finetune_seeds`` keeps one run folder per seed (``<out_dir>/seed-<s>/``, each an
``ftlens.finetune`` run folder with its ``scores.json``) under a folder that records the
procedure (``procedure.json``: everything but the seed) and refuses another. Finished
seeds are reused; the others run side by side in worker processes when the cores allow
(``workers``), each worker's threads sized so that together they never ask for more cores
than are free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._util import files, runfolder
from .._util.options import with_overrides
from .._util.threads import core_budget, usable_cores
from ..similarity.bootstrap import Interval, multibootstrap
from .options import FinetuneOptions
from .run import FinetuneResult, finetune_run, finished_with, get_task, run_settings
from .task import ExampleScores
from .tracking import load_trajectory, tracking_of
from .trajectory import Trajectory

PROCEDURE = "procedure.json"
log = logging.getLogger("ftlens.finetuning")


def seed_folder(out_dir, seed: int) -> Path:
    return Path(out_dir) / f"seed-{seed}"


def check_seeds(seeds) -> list[int]:
    """The seeds as a list of distinct whole numbers in [0, 2**32 - 1]."""
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a list of whole numbers, e.g. [0, 1, 2], got {seeds!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. [0, 1, 2]")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < 2**32:
            raise ValueError(f"seed {s!r} is not a whole number in [0, 2**32 - 1]")
    repeated = sorted({int(s) for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"seeds {repeated} appear more than once: a seed repeated is the same run, "
                         "counted twice; give each seed once")
    return [int(s) for s in seeds]


@dataclass
class SeedRuns:
    """The finished runs of one procedure, one per seed (in the order the seeds were given)."""

    out_dir: Path
    task: str
    runs: list[FinetuneResult]

    @property
    def seeds(self) -> list[int]:
        return [run.seed for run in self.runs]

    @property
    def metric(self) -> str:
        return get_task(self.task).metric

    def values(self, metric: str | None = None) -> np.ndarray:
        """Each seed's final ``eval_<metric>`` [seeds]."""
        name = "eval_" + (metric or self.metric)
        missing = [run.seed for run in self.runs if name not in run.metrics]
        if missing:
            raise ValueError(f"the runs of seeds {missing} have no {name!r}: they are not runs of task "
                             f"{self.task!r}, or the metric is misspelt")
        return np.array([run.metrics[name] for run in self.runs], dtype=np.float64)

    def trajectories(self) -> list[Trajectory]:
        """Each seed's trajectory (runs made with ``track=``), in the order of the seeds."""
        return [load_trajectory(run.out_dir) for run in self.runs]

    def bootstrap(self, metric: str | None = None, *, draws: int = 1000, level: float = 0.95,
                  seed: int = 0) -> Interval:
        """The Multi-Bootstrap of the metric over the seeds and the eval examples (Sellam et
        al. 2021), from each run's per-example scores; in the metric's unit."""
        num, den, scale = stack_scores([run.scores() for run in self.runs], metric or self.metric, self.seeds)
        return multibootstrap(num, den, seeds=self.seeds, scale=scale, draws=draws, level=level, seed=seed)

    def table(self, metric: str | None = None) -> str:
        """Each seed's metric, their mean, SD and the Multi-Bootstrap 95% interval."""
        name = metric or self.metric
        values = self.values(name)
        interval = self.bootstrap(name)
        lines = [f"{'seed':>6}  eval_{name}"]
        lines += [f"{s:>6}  {v:.4f}" for s, v in zip(self.seeds, values, strict=True)]
        sd = values.std(ddof=1) if len(values) > 1 else 0.0
        lines.append(f"{'mean':>6}  {values.mean():.4f} (SD {sd:.4f}; {interval.level:.0%} Multi-Bootstrap "
                     f"interval over seeds and {interval.units} examples [{interval.low:.4f}, "
                     f"{interval.high:.4f}])")
        return "\n".join(lines)


def stack_scores(scores: list[ExampleScores], metric: str, seeds: list[int]) -> tuple:
    """(num, den) [seeds, examples] of ``metric`` from each seed's per-example scores, and
    their scale; refused when a run lacks the metric or scored other examples."""
    missing = [seed for seed, s in zip(seeds, scores, strict=True) if metric not in s.num]
    if missing:
        raise ValueError(f"the runs of seeds {missing} kept no per-example {metric!r}: they are runs of "
                         "another task, or the metric is misspelt")
    sizes = sorted({len(s.num[metric]) for s in scores})
    if len(sizes) > 1:
        raise ValueError(f"the runs were scored on eval sets of sizes {sizes}: the seeds of one procedure "
                         "must share their eval examples")
    num, den = (np.stack([getattr(s, part)[metric] for s in scores]) for part in ("num", "den"))
    return num, den, scores[0].scale


def plan_workers(workers: int | None, pending: int) -> tuple[int, int]:
    """(worker processes, torch threads each) for ``pending`` runs: by default as many runs
    side by side as there are free cores (one thread each on a CPU; one run at a time on a
    GPU, which the runs would share, and under torchrun, where every run takes all ranks)."""
    budget = core_budget()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if workers not in (None, 1):
            raise ValueError(f"workers={workers} under torchrun: each seed's run already spans every rank "
                             "(DDP), so the seeds run one after another; leave workers out")
        return 1, torch.get_num_threads()
    if workers is None:
        workers = 1 if torch.cuda.is_available() else max(1, min(pending, budget))
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of processes >= 1, got {workers!r}")
    elif workers > usable_cores():
        raise ValueError(f"workers={workers} is more than the {usable_cores()} cores this process may use: "
                         "the runs would fight over them; pass at most that many")
    workers = max(1, min(workers, pending))
    return workers, max(1, budget // workers)


def finetune_seeds(base, task: str, train, eval, out_dir, seeds, *,  # noqa: A002
                   options: FinetuneOptions | None = None, workers: int | None = None,
                   progress: bool = True, keep_checkpoints: bool = False, track=None,
                   **overrides) -> SeedRuns:
    """Fine-tunes ``base`` on ``task`` once per seed (``seeds``: distinct whole numbers),
    each run in ``out_dir/seed-<s>/``; finished seeds are reused, interrupted ones resume.

    workers: runs side by side in separate processes (default: one per free core on a CPU,
    one at a time on a GPU). The other arguments are ``ftlens.finetune``'s (``track``: each
    seed's run records its trajectory); ``options.seed`` is replaced by each seed. Returns
    ``SeedRuns`` (each run's metrics and per-example scores, in the order of ``seeds``)."""
    seeds = check_seeds(seeds)
    if "seed" in overrides:
        raise ValueError("give either seeds=[...] (several runs) or seed= (one run), not both")
    opts = with_overrides(FinetuneOptions, options, **overrides)
    tracking_of(track)  # checked before any run starts
    settings = {s: run_settings(base, task, train, eval, dataclasses.replace(opts, seed=s)) for s in seeds}
    out = files.check_writable(out_dir)
    procedure = {**settings[seeds[0]], "options": {k: v for k, v in opts.to_dict().items() if k != "seed"}}
    runfolder.claim(out, PROCEDURE, "fine-tuning runs of another procedure", procedure,
                    "pass another out_dir for another procedure")
    pending = [s for s in seeds if not finished_with(seed_folder(out, s), settings[s])]
    common = dict(options=opts, keep_checkpoints=keep_checkpoints, track=track)
    if pending:
        _run_pending(base, task, train, eval, out, pending, workers, progress, common)
    runs = [finetune_run(base, task, train, eval, seed_folder(out, s), seed=s, progress=False, **common)
            for s in seeds]
    return SeedRuns(out, task, runs)


def _run_pending(base, task, train, eval, out: Path, pending: list[int], workers: int | None,  # noqa: A002
                 progress: bool, common: dict) -> None:
    """Trains the seeds not finished yet, side by side where the cores allow; a failed seed
    does not stop the others, and the error names every failed one."""
    n_workers, threads = plan_workers(workers, len(pending))
    log.info("fine-tuning %d seed%s (%s) in %d process%s, %d thread%s each", len(pending),
             "s" if len(pending) > 1 else "", ", ".join(map(str, pending)), n_workers,
             "es" if n_workers > 1 else "", threads, "s" if threads > 1 else "")
    metric = "eval_" + get_task(task).metric
    failed: dict[int, str] = {}

    def finished(seed: int, metrics: dict, minutes: float) -> None:
        log.info("seed %d: %s %.4g (%.1f min)", seed, metric, metrics.get(metric, float("nan")), minutes)

    if n_workers == 1:
        for s in pending:
            start = time.perf_counter()
            try:
                with _threads(threads):
                    result = finetune_run(base, task, train, eval, seed_folder(out, s), seed=s,
                                          progress=progress, **common)
                finished(s, result.metrics, (time.perf_counter() - start) / 60)
            except Exception as err:  # the other seeds still run
                failed[s] = f"{type(err).__name__}: {err}"
    else:
        from .seed_worker import run_side_by_side

        job = {"base": base, "task": task, "train": train, "eval": eval, "common": common, "threads": threads}
        bar = _bar(len(pending), progress)
        for seed, outcome, minutes in run_side_by_side(job, out, pending, n_workers):
            bar.update(1)
            if isinstance(outcome, dict):
                finished(seed, outcome, minutes)
            else:
                failed[seed] = outcome
        bar.close()
    if failed:
        first = next(iter(failed.values()))
        raise RuntimeError(f"the runs of seeds {sorted(failed)} failed (the first: {first}); the finished "
                           f"seeds are kept in {out}: rerun to retry the failed ones")


@contextlib.contextmanager
def _threads(threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _bar(total: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="seeds", unit="run", disable=not progress)
