"""``CompareOptions``: what ``compare_models`` computes (which rows and how the models run
are ``CaptureOptions``), checked before any model loads."""

from __future__ import annotations

from dataclasses import dataclass

from .._util.options import option
from ..similarity import registry
from ..similarity.moments import PAIRS


@dataclass(frozen=True)
class CompareOptions:
    """Args:
        measures: names from ``ftlens.registry.MEASURES``: "cka", "cka_debiased", "rsa",
            "cca", "svcca", "pwcca", "procrustes".
        pairs: "diagonal" (layer l vs layer l) or "all" (every layer pair).
        rdm: RDM type of "rsa": "correlation", "cosine", "inner" or "sqeuclidean".
        ci: a confidence level (e.g. 0.95) for an interval around every value, from a
            delete-a-group jackknife over ``ci_groups`` contiguous groups of inputs
            (sentences, not tokens), in the same pass.
        ci_groups: the jackknife's groups (at least 2, at most the number of inputs).
        isotropy: also ``ftlens.isotropy``'s diagnostics of every layer of both models on
            the same rows; free.
        draws: keep each moment measure on this many bootstrap resamples of the ``ci_groups``
            groups (``result.draws``), drawn with ``draw_seed``: what the Multi-Bootstrap
            over seeds (``ftlens.compare.across_seeds``) combines. Comparisons of several
            seeds must use the same groups, draws and draw_seed.
    """

    measures: tuple[str, ...] = option(("cka", "rsa"), choices=tuple(registry.MEASURES),
                                       help="measures by name")
    pairs: str = option("diagonal", choices=PAIRS, help="layer l vs layer l, or every layer pair")
    rdm: str = option("correlation", choices=registry.MOMENT_RDMS, help='the RDM of "rsa"')
    ci: float | None = option(None, help="confidence level of the jackknife intervals (e.g. 0.95)")
    ci_groups: int = option(20, help="the jackknife's groups of inputs")
    isotropy: bool = option(False, help="also the isotropy of every layer of both models")
    draws: int | None = option(None, help="bootstrap draws of the input groups kept, for the Multi-Bootstrap "
                                          "over seeds")
    draw_seed: int = option(0, help="of the bootstrap draws")

    def __post_init__(self) -> None:
        measures = (self.measures,) if isinstance(self.measures, str) else tuple(self.measures)
        object.__setattr__(self, "measures", measures)
        if not measures:
            raise ValueError(f"no measure asked for: choose from {tuple(registry.MEASURES)}")
        for name in measures:
            registry.get(name)  # unknown names fail before any model loads
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {PAIRS}, got {self.pairs!r}")
        registry.check_rdms([self.rdm])
        ci = self.ci
        if ci is not None and (isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1):
            raise ValueError(f"ci is a confidence level in (0, 1) such as 0.95, or None for none; got {ci!r}")
        if isinstance(self.ci_groups, bool) or not isinstance(self.ci_groups, int) or self.ci_groups < 2:
            raise ValueError(f"ci_groups must be an integer >= 2, got {self.ci_groups!r}: the jackknife "
                             "leaves out one group of inputs at a time")
        if self.draws is not None and (isinstance(self.draws, bool) or not isinstance(self.draws, int)
                                       or self.draws < 2):
            raise ValueError(f"draws must be an integer >= 2 (bootstrap resamples), or None; got "
                             f"{self.draws!r}")
        if isinstance(self.draw_seed, bool) or not isinstance(self.draw_seed, int) or self.draw_seed < 0:
            raise ValueError(f"draw_seed must be a whole number >= 0, got {self.draw_seed!r}")
        if not isinstance(self.isotropy, bool):
            raise ValueError(f"isotropy must be true or false, got {self.isotropy!r}")
