"""Seeds of one procedure fine-tuned side by side, each in a fresh Python process
(``python -m ftlens.finetuning.seed_worker <job>``): a process of its own never re-runs
the caller's script, as multiprocessing's spawn would without a ``__main__`` guard, and
ends with the process that started it (Linux), so a killed run leaves no orphan holding a
seed's folder. Each worker's output goes to ``seed-<s>/worker.log``."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .._util import files

JOB = ".seed-job.pkl"


def run_side_by_side(job: dict, out: Path, seeds: list[int], workers: int
                     ) -> Iterator[tuple[int, dict | str, float]]:
    """Runs ``seeds`` of ``job`` (finetune's arguments, ``threads`` per run) with at most
    ``workers`` at a time; yields (seed, its final metrics or the error, minutes) as each ends."""
    files.atomic_write(out / JOB, lambda tmp: Path(tmp).write_bytes(pickle.dumps(job)))
    waiting, running = list(seeds), {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                seed = waiting.pop(0)
                running[seed] = (_start(out, seed), time.perf_counter())
            time.sleep(0.5)
            for seed, (process, start) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[seed]
                yield seed, _outcome(out, seed, process.returncode), (time.perf_counter() - start) / 60
    finally:
        for process, _ in running.values():
            process.terminate()
        for process, _ in running.values():
            process.wait()
        (out / JOB).unlink(missing_ok=True)


def _start(out: Path, seed: int) -> subprocess.Popen:
    folder = out / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "worker.json").unlink(missing_ok=True)
    with open(folder / "worker.log", "w", encoding="utf-8") as log:
        return subprocess.Popen([sys.executable, "-m", __name__, str(out / JOB), str(seed)], stdout=log,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)


def _outcome(out: Path, seed: int, returncode: int) -> dict | str:
    done = out / f"seed-{seed}" / "worker.json"
    if returncode == 0 and done.exists():
        return json.loads(done.read_text())
    tail = (out / f"seed-{seed}" / "worker.log").read_text(errors="replace").strip().splitlines()[-3:]
    return f"exit status {returncode}: " + " / ".join(tail) if tail else f"exit status {returncode}"


def _die_with_parent() -> None:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_job(job_path: str, seed: str) -> None:
    import torch

    from .run import finetune_run

    job = pickle.loads(Path(job_path).read_bytes())
    torch.set_num_threads(job["threads"])
    folder = Path(job_path).parent / f"seed-{seed}"
    result = finetune_run(job["base"], job["task"], job["train"], job["eval"], folder, seed=int(seed),
                      progress=False, **job["common"])
    files.write_json(folder / "worker.json", result.metrics)


if __name__ == "__main__":
    run_job(*sys.argv[1:])
