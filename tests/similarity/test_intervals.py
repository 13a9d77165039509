"""Wilson intervals against the score test they invert, solved by bisection in float64;
probe results carry them and their plots draw them."""

import math
from statistics import NormalDist

import ftlens
import numpy as np
import pytest
from ftlens.similarity.intervals import wilson


def score_test_bounds(p_hat: float, n: int, level: float) -> tuple[float, float]:
    """The p in [0, 1] with |p_hat - p| <= z sqrt(p (1 - p) / n), by bisection."""
    z = NormalDist().inv_cdf(0.5 + level / 2)

    def inside(p):
        return abs(p_hat - p) <= z * math.sqrt(p * (1 - p) / n) + 1e-300

    def edge(lo, hi):  # lo outside, hi inside (or the reverse): the boundary between them
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if inside(mid) == inside(hi) else (mid, hi)
        return (lo + hi) / 2

    low = 0.0 if inside(0.0) else edge(0.0, p_hat)
    high = 1.0 if inside(1.0) else edge(1.0, p_hat)
    return low, high


@pytest.mark.parametrize("n", [1, 7, 40, 25147])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_inverts_the_score_test(n, level):
    for successes in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        p_hat = successes / n
        low, high = wilson(p_hat, n, level)
        expected = score_test_bounds(p_hat, n, level)
        assert low == pytest.approx(expected[0], abs=1e-12) and high == pytest.approx(expected[1], abs=1e-12)
        assert 0.0 <= low <= p_hat <= high <= 1.0


def test_wilson_broadcasts_and_marks_what_has_no_interval():
    low, high = wilson(np.array([[0.5, np.nan], [0.9, 0.9]]), np.array([100, 0]), 0.95)
    assert low.shape == (2, 2) and np.isnan(low[0, 1]) and np.isnan(high[1, 1])
    assert low[1, 0] < 0.9 < high[1, 0]
    with pytest.raises(ValueError, match=r"level must lie in \(0, 1\)"):
        wilson(0.5, 10, 95)


def test_probe_results_carry_intervals_and_plot_them(tmp_path):
    accuracy = np.array([[0.5, 0.9], [0.8, 0.99]])
    result = ftlens.ProbeResult(model="m", layers=["0", "1"], tasks=["upos", "deprel"], kind="logistic",
                                rows="words", scores={"accuracy": accuracy},
                                n_eval={"upos": 400, "deprel": 25})
    low, high = result.interval()
    expected = wilson(accuracy, np.array([[400, 25]]))
    np.testing.assert_array_equal(low, expected[0])
    np.testing.assert_array_equal(high, expected[1])
    assert np.all(high[:, 1] - low[:, 1] > high[:, 0] - low[:, 0])  # fewer rows, wider
    figure = result.plot(tmp_path / "probe.png")
    assert len(figure.axes[0].collections) == 2  # one band per task
    with pytest.raises(ValueError, match="intervals are for proportions"):
        result.interval("mdl_kbits")
    with pytest.raises(ValueError, match="this result has no 'control_accuracy'"):
        result.interval("control_accuracy")
