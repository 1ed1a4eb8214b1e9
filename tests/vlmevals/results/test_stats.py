"""Statistics against hand-computed cases and reference implementations (statsmodels, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint
from vlmevals.results import stats


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.236593, 0.763407),  # by hand: centre 0.5, half-width z*sqrt(.025+z^2/400)/(1+z^2/10)
        (0, 10, 0.0, 0.277533),  # upper = z^2/(n+z^2)
        (10, 10, 0.722467, 1.0),
    ],
)
def test_wilson_hand_computed(k: int, n: int, low: float, high: float) -> None:
    ci = stats.wilson(k, n)
    assert ci.estimate == pytest.approx(k / n)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    assert ci.method == "wilson" and ci.n == n


@pytest.mark.parametrize(("k", "n"), [(1, 3), (17, 20), (123, 456), (9_999, 10_000), (0, 1)])
@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(k: int, n: int, level: float) -> None:
    low, high = proportion_confint(k, n, alpha=1 - level, method="wilson")
    ci = stats.wilson(k, n, level)
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


def test_wilson_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one"):
        stats.wilson(0, 0)
    with pytest.raises(ValueError, match="within"):
        stats.wilson(11, 10)


@pytest.mark.parametrize(
    ("r2w", "w2r", "p"),
    [
        (0, 5, 0.0625),  # 2 * 0.5^5
        (1, 9, 0.021484375),  # 2 * (1 + 10) / 2^10
        (3, 3, 1.0),
        (0, 0, 1.0),
    ],
)
def test_mcnemar_hand_computed(r2w: int, w2r: int, p: float) -> None:
    assert stats.mcnemar_exact(r2w, w2r).p_value == pytest.approx(p)


@pytest.mark.parametrize(("r2w", "w2r"), [(2, 7), (10, 25), (40, 41), (0, 13), (120, 80)])
def test_mcnemar_matches_statsmodels(r2w: int, w2r: int) -> None:
    table = [[50, r2w], [w2r, 30]]  # rows: a right/wrong; cols: b right/wrong
    ref = mcnemar(table, exact=True).pvalue
    assert stats.mcnemar_exact(r2w, w2r).p_value == pytest.approx(ref, rel=1e-9)


def test_mcnemar_from_scores_counts_discordant_pairs() -> None:
    a = [1, 1, 1, 0, 0, 1]
    b = [1, 0, 0, 1, 0, 1]
    res = stats.mcnemar_from_scores(a, b)
    assert (res.right_to_wrong, res.wrong_to_right) == (2, 1)


def test_bootstrap_is_deterministic_and_close_to_scipy() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 300)
    ours = stats.bootstrap_mean(x, resamples=4000)
    assert ours == stats.bootstrap_mean(x, resamples=4000), "same seed, same interval"
    ref = sps.bootstrap((x,), np.mean, method="percentile", n_resamples=4000, random_state=7).confidence_interval
    assert ours.estimate == pytest.approx(x.mean())
    assert ours.low == pytest.approx(ref.low, abs=0.006) and ours.high == pytest.approx(ref.high, abs=0.006)
    # and both agree with the normal approximation for a mean of 300 uniforms
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert ours.low == pytest.approx(x.mean() - 1.96 * se, abs=0.008)


def test_bootstrap_constant_scores_have_zero_width() -> None:
    ci = stats.bootstrap_mean([0.5] * 50)
    assert (ci.low, ci.estimate, ci.high) == (0.5, 0.5, 0.5)


def test_score_interval_picks_wilson_for_accuracies_and_bootstrap_otherwise() -> None:
    assert stats.score_interval([1, 0, 1, 1]).method == "wilson"
    assert stats.score_interval([1, 0.5, 0, 1]).method == "percentile-bootstrap"
    assert stats.score_interval([True, False]).method == "wilson"


def test_paired_bootstrap_hand_cases() -> None:
    a = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1, 0] * 5, dtype=float)
    same = stats.paired_bootstrap(a, a)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    shifted = stats.paired_bootstrap(a * 0.5, a * 0.5 + 0.25)
    assert (shifted.estimate, shifted.low, shifted.high) == (pytest.approx(0.25),) * 3
    with pytest.raises(ValueError, match="same length"):
        stats.paired_bootstrap([1, 0], [1])


def test_paired_interval_matches_scipy_and_is_tighter_than_unpaired() -> None:
    rng = np.random.default_rng(3)
    a = (rng.uniform(size=400) < 0.6).astype(float)
    b = a.copy()
    flip = rng.choice(400, size=40, replace=False)
    b[flip[:30]] = 1.0  # b gets some right that a got wrong
    b[flip[30:]] = 0.0
    ours = stats.paired_bootstrap(a, b, resamples=4000)
    ref = sps.bootstrap(
        (a, b), lambda x, y: np.mean(y - x), paired=True, method="percentile", n_resamples=4000, random_state=5
    ).confidence_interval
    assert ours.estimate == pytest.approx(b.mean() - a.mean())
    assert ours.low == pytest.approx(ref.low, abs=0.006) and ours.high == pytest.approx(ref.high, abs=0.006)
    wa, wb = stats.wilson(int(a.sum()), 400), stats.wilson(int(b.sum()), 400)
    assert ours.high - ours.low < 0.5 * ((wa.high - wa.low) + (wb.high - wb.low)) / 2, "pairing removes noise"


def test_scaled_interval() -> None:
    ci = stats.wilson(5, 10).scaled(100)
    assert (ci.estimate, round(ci.low, 2), round(ci.high, 2)) == (50.0, 23.66, 76.34)
