"""What the report states: findings (sentences written from the results) and sanity flags,
each keeping the numbers it states (``facts``) so that a test can check it."""

from __future__ import annotations

from dataclasses import dataclass, field

LEVEL = 0.95


@dataclass(frozen=True)
class Finding:
    """One sentence of the findings: its topic ("seeds", "procedures", "similarity",
    "domain", "probes", "ablation", "isotropy"), its text, the figure it refers to and the
    numbers it states."""

    topic: str
    text: str
    figure: str | None = None
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Flag:
    """A sanity warning: what is wrong ("chance", "degenerate", "ceiling", "floor",
    "negative_selectivity", "small_eval", "wide_metric") and what it means for the
    conclusions."""

    kind: str
    text: str
    facts: dict = field(default_factory=dict)
