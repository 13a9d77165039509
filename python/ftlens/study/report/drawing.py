"""What a figure draws, recorded point by point: each PNG of the report is written with a
CSV of the numbers behind it (``panel, series, x, value, low, high``: one row per point)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..._util import files

BAND_ALPHA = 0.15
COLUMNS = ("panel", "series", "x", "value", "low", "high")


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def as_array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


class Drawn:
    """What a figure draws, point by point, for its CSV. Each panel's axes carry the panel's
    name as their ``gid``, so a drawn line can be matched with its rows."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def line(self, ax, panel: str, series: str, x: list[str], y, low=None, high=None, **style):
        """A line (and its band, when bounds are given) on ``ax``; returns the Line2D."""
        ax.set_gid(panel)
        y = as_array(y)
        positions = np.arange(len(y))
        (line,) = ax.plot(positions, y, label=series, **style)
        if low is not None:
            low, high = as_array(low), as_array(high)
            ax.fill_between(positions, low, high, color=line.get_color(), alpha=BAND_ALPHA, lw=0)
        for i, name in enumerate(x):
            self.rows.append(
                (
                    panel,
                    series,
                    name,
                    y[i],
                    None if low is None else low[i],
                    None if high is None else high[i],
                )
            )
        return line

    def level(self, ax, panel: str, series: str, value: float, **style):
        """A horizontal reference line (a baseline) across the panel."""
        ax.set_gid(panel)
        ax.axhline(value, label=series, **style)
        self.rows.append((panel, series, "", value, None, None))

    def cell(self, panel: str, series: str, x: str, value: float) -> None:
        self.rows.append((panel, series, x, value, None, None))

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.rows:
            writer.writerow(
                [
                    ""
                    if v is None or (isinstance(v, float) and np.isnan(v))
                    else (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                    for v in row
                ]
            )
        return out.getvalue()

    def save(self, figure, folder: Path, name: str) -> None:
        """``name`` (PNG) and the CSV of the same stem, both written atomically."""
        figure.tight_layout()
        files.atomic_write(folder / name, lambda tmp: figure.savefig(tmp, dpi=110, format="png"))
        text = self.csv()
        files.atomic_write(folder / csv_name(name), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        pyplot().close(figure)


def csv_name(png: str) -> str:
    return str(Path(png).with_suffix(".csv"))
