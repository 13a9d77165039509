"""The study's report: PNG plots and one self-contained HTML page, from results.json."""

from .html import build_report

__all__ = ["build_report"]
