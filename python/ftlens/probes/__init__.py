"""Probing classifiers over activation stores: every layer x every task at once.

    result = ftlens.probe("stores/ewt_train", "stores/ewt_dev", tasks=("upos", "edge:deprel"))
    print(result.table())
"""

from .api import L2_GRID, available_tasks, probe
from .options import ProbeOptions
from .result import METRICS, ProbeResult
from .seeds import probes_across_seeds, probes_between_procedures, with_intervals

__all__ = ["L2_GRID", "METRICS", "ProbeOptions", "ProbeResult", "available_tasks", "probe",
           "probes_across_seeds", "probes_between_procedures", "with_intervals"]
