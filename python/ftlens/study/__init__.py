"""Studies: ``ftlens run study.yaml`` (``run_study``) fine-tunes, compares, probes,
ablates and reports, each stage cached in the run folder so that reruns resume."""

from .config import StudyConfig, StudyConfigError, load_config, parse_config
from .results import ResultsVersionError, StudyResult
from .runner import run_study, stage_table

__all__ = ["ResultsVersionError", "StudyConfig", "StudyConfigError", "StudyResult", "load_config",
           "parse_config", "run_study", "stage_table"]
