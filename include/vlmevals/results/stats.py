"""Error bars and paired tests for benchmark scores.

Choices (and why):
- One run, 0/1 scores (accuracy): the **Wilson score interval**. It is exact enough at small n, never leaves
  [0, 1] and behaves at 0 % and 100 % where the normal (Wald) interval collapses to zero width.
- One run, partial scores (VQA soft accuracy, judge scores): **percentile bootstrap** of the mean over samples.
- Two runs on the same samples: **paired bootstrap** of the mean difference (resampling sample indices, so the
  correlation between the two models' answers is kept: this is much tighter than comparing two unpaired
  intervals) and, for 0/1 scores, the **exact McNemar test** on the discordant pairs (binomial, two-sided).

Every random draw uses a fixed seed, so the same data always gives the same interval. Standard library and
numpy only: importing scipy.stats costs seconds, paid by every ingest task and the first API request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_SEED = 20240601
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    method: str
    n: int
    level: float = 0.95

    def scaled(self, factor: float) -> Interval:
        """The same interval on another scale (e.g. 0-100 for a task whose metric is a percentage)."""
        return Interval(self.estimate * factor, self.low * factor, self.high * factor, self.method, self.n, self.level)

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def wilson(successes: int, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion (no continuity correction)."""
    if n <= 0:
        raise ValueError("wilson() needs at least one sample")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be within [0, n], got {successes} of {n}")
    z = _z(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), "wilson", n, level)


def bootstrap_mean(
    scores: Sequence[float] | np.ndarray,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Percentile bootstrap interval of the mean score."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean() needs at least one sample")
    rng = np.random.default_rng(seed)
    means = _resampled_means(x, rng, resamples)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(x.mean()), float(low), float(high), "percentile-bootstrap", int(x.size), level)


def _resampled_means(x: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Means of `resamples` bootstrap resamples, in chunks so 10,000 samples x 2,000 draws stays small."""
    n = x.size
    out = np.empty(resamples)
    chunk = max(1, 4_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def is_binary(scores: Sequence[float] | np.ndarray) -> bool:
    x = np.asarray(scores, dtype=float)
    return bool(x.size) and bool(np.all((x == 0) | (x == 1)))


def score_interval(scores: Sequence[float] | np.ndarray, level: float = 0.95, seed: int = DEFAULT_SEED) -> Interval:
    """Wilson for 0/1 scores, bootstrap otherwise."""
    x = np.asarray(scores, dtype=float)
    if is_binary(x):
        return wilson(int(x.sum()), int(x.size), level)
    return bootstrap_mean(x, level, seed=seed)


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Interval of mean(b) - mean(a) over the same samples, resampling sample indices jointly."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError(f"paired samples must have the same length ({xa.size} vs {xb.size})")
    if xa.size == 0:
        raise ValueError("paired_bootstrap() needs at least one shared sample")
    d = xb - xa
    rng = np.random.default_rng(seed)
    means = _resampled_means(d, rng, resamples)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(float(d.mean()), float(low), float(high), "paired-bootstrap", int(d.size), level)


@dataclass(frozen=True)
class McNemar:
    right_to_wrong: int  # a right, b wrong
    wrong_to_right: int  # a wrong, b right
    p_value: float
    method: str = "exact-mcnemar"


def mcnemar_exact(right_to_wrong: int, wrong_to_right: int) -> McNemar:
    """Two-sided exact McNemar test: the discordant pairs under H0 are Binomial(n, 1/2)."""
    if right_to_wrong < 0 or wrong_to_right < 0:
        raise ValueError("discordant counts must be >= 0")
    n = right_to_wrong + wrong_to_right
    if n == 0:
        return McNemar(0, 0, 1.0)
    k = min(right_to_wrong, wrong_to_right)
    tail = sum(math.comb(n, i) for i in range(k + 1))  # exact integers: no underflow surprises
    p = min(1.0, 2.0 * (tail / 2**n))
    return McNemar(right_to_wrong, wrong_to_right, p)


def mcnemar_from_scores(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> McNemar:
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return mcnemar_exact(int(np.sum((xa == 1) & (xb == 0))), int(np.sum((xa == 0) & (xb == 1))))
