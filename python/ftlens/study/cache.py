"""The run folder of a study: which study it holds, and each stage's result cached under a
key of its inputs (config section, data and model fingerprints, package version)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path

from .._util import distributed as ranks
from .._util import files, fingerprint, runfolder
from .._version import __version__

IDENTITY = "study.json"


class RunFolder:
    """A study's output folder. It refuses a folder that holds another study (another
    name or base model); stages record their key and result in ``stages/<name>.json``,
    written atomically once the stage is done, so a killed run loses at most the stage in
    flight (and the stages that resume by themselves, fine-tuning and stores, not even
    that).

    log: called with one line per stage ("ran ..." / "reused ...")."""

    def __init__(self, path, name: str, base: str, log: Callable[[str], None] = print) -> None:
        self.path = files.check_writable(path)
        self.log = log if ranks.is_main() else (lambda line: None)
        self.ran: list[dict] = []
        self.planned: list[str] = []  # every stage's name, in order (plan())
        self._timed: dict[str, float] = {}
        runfolder.claim(self.path, IDENTITY, "another study", {"study": name, "base": base},
                        "pass another output folder")

    def lock(self):
        """Held while a study runs here (rank 0's): a second study in this folder is refused."""
        if not ranks.is_main():
            return contextlib.nullcontext()
        return runfolder.one_worker(self.path, "running a study", "pass another output folder")

    def plan(self, names: list[str]) -> None:
        """The names of the stages to come, in order: each stage's line then reads
        ``stage 3/20 <name>`` with an estimate of the time left."""
        self.planned = list(names)
        # the seconds each planned stage took when it last ran here, read once
        records = {name: self._record(self._record_path(name)) for name in self.planned}
        self._timed = {name: r["seconds"] for name, r in records.items() if r is not None}

    def _record_path(self, name: str) -> Path:
        return self.path / "stages" / f"{name.replace('/', '__')}.json"

    def _position(self, name: str) -> str:
        if name not in self.planned:
            return name
        return f"stage {self.planned.index(name) + 1}/{len(self.planned)} {name}"

    def time_left(self, name: str) -> tuple[float, int] | None:
        """(seconds, untimed): what the stages from ``name`` on will take, from the seconds
        each took when it last ran here, else the mean of the stages of its kind
        (``finetune``, ``compare``, ...) timed so far; and how many stages are of a kind
        never timed yet (not counted). None for a stage outside the plan."""
        if name not in self.planned:
            return None
        timed = dict(self._timed)
        timed.update({r["stage"]: r["seconds"] for r in self.ran if r["status"] == "ran"})
        by_kind: dict[str, list[float]] = {}
        for stage, seconds in timed.items():
            by_kind.setdefault(stage.split("/")[0], []).append(seconds)
        total, untimed = 0.0, 0
        for stage in self.planned[self.planned.index(name):]:
            kind = by_kind.get(stage.split("/")[0])
            if stage not in timed and not kind:
                untimed += 1
                continue
            total += timed[stage] if stage in timed else sum(kind) / len(kind)
        return total, untimed

    def stage(self, name: str, inputs: dict, compute: Callable[[], dict], collective: bool = True) -> dict:
        """The result of stage ``name``: cached when its inputs are unchanged, else computed
        (``compute() -> JSON-able dict``) and stored.

        Under torch.distributed, a ``collective`` stage is computed by every rank together
        (fine-tuning, sharded comparisons) and rank 0's result is everyone's; any other
        stage is computed by rank 0 alone while the others wait. Rank 0 writes the record."""
        key = fingerprint.of_json({"stage": name, "inputs": inputs, "ftlens": __version__})
        record_path = self._record_path(name)
        record = self._record(record_path)
        if record is not None and record.get("key") == key:
            self.log(f"{self._position(name)}: reused ({record['seconds']:.1f} s when it ran)")
            self.ran.append({"stage": name, "status": "reused", "seconds": record["seconds"]})
            return record["result"]
        self.log(f"{self._position(name)} ...{_estimate(self.time_left(name))}")
        if collective or ranks.is_main():
            start = time.perf_counter()
            result = compute()
            seconds = time.perf_counter() - start
            if ranks.is_main():
                files.write_json(
                    record_path,
                    {"stage": name, "key": key, "inputs": inputs, "seconds": seconds, "result": result},
                )
        ranks.barrier()
        if ranks.active():
            result, seconds = ranks.broadcast((result, seconds) if ranks.is_main() else None)
        self.log(f"{self._position(name)}: ran in {seconds:.1f} s")
        self.ran.append({"stage": name, "status": "ran", "seconds": seconds})
        return result

    @staticmethod
    def _record(path: Path) -> dict | None:
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def folder(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def work_folder(self, kind: str, name: str, inputs: dict) -> Path:
        """``<kind>/<name>-<digest of inputs>``: where a stage keeps what it trains. Other
        inputs get another folder, so an edited study never meets, or overwrites, the
        models of its earlier settings; the same inputs find their folder again to resume."""
        return self.path / kind / f"{name.replace('/', '-')}-{fingerprint.of_json(inputs)[:12]}"


def _estimate(left: tuple[float, int] | None) -> str:
    """" (est. 2 min left)", with the stages not yet timed when there are some."""
    if left is None or (left[0] == 0 and left[1]):
        return ""
    seconds, untimed = left
    more = f" + {untimed} stage{'s' if untimed > 1 else ''} not yet timed" if untimed else ""
    return f" (est. {_duration(seconds)} left{more})"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
