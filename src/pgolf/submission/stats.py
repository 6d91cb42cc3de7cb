"""Significance of a claimed improvement: Welch's t-test against the frontier with the record margin.

The challenge accepts a record when it beats the frontier by at least `record_margin_nats` (0.005 nats)
with p < `significance_p` over at least `min_seeds` seeds; all three come from the Ruleset. The margin is
converted to BPB through the run's own tokens-per-byte ratio: val_bpb = val_loss / ln 2 · tokens/bytes,
so margin_bpb = margin_nats / ln 2 · tokens/bytes = margin_nats · val_bpb / val_loss.

The Student-t tail comes from the regularized incomplete beta function (a continued fraction), so the
runtime needs no scipy; the tests check it against scipy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pgolf.errors import DataError
from pgolf.rules import Ruleset

_EPS = 1e-15
_TINY = 1e-300


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), evaluated with the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if not 0.0 <= x <= 1.0:
        raise ValueError("x must lie in [0, 1]")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast for x below (a+1)/(a+b+2); use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def margin_bpb(margin_nats: float, val_bpb: float, val_loss: float) -> float:
    """The margin in BPB for a run whose own val_bpb/val_loss give its tokens-per-byte ratio."""
    if val_loss <= 0 or val_bpb <= 0:
        raise DataError("val_loss and val_bpb must be positive to convert the margin")
    return margin_nats * val_bpb / val_loss


@dataclass
class Comparison:
    """Whether candidate runs beat reference runs by the margin, one-sided, with the numbers behind it."""

    n_candidate: int
    n_reference: int
    mean_candidate: float
    mean_reference: float
    std_candidate: float | None
    std_reference: float | None
    improvement: float  # mean_reference - mean_candidate (positive = candidate is better)
    margin_bpb: float
    t: float | None
    df: float | None
    p_value: float | None
    significance_p: float
    min_seeds: int
    test: str  # "welch", "one-sample", or "none"

    @property
    def enough_seeds(self) -> bool:
        """At least the ruleset's minimum number of candidate seeds."""
        return self.n_candidate >= self.min_seeds

    @property
    def significant(self) -> bool:
        """The improvement exceeds the margin with p below the ruleset's threshold."""
        return self.p_value is not None and self.p_value < self.significance_p

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for JSON output, with the derived verdicts."""
        return {**asdict(self), "enough_seeds": self.enough_seeds, "significant": self.significant}


def _std(values: Sequence[float]) -> float | None:
    return statistics.stdev(values) if len(values) >= 2 else None


def compare(candidate: Sequence[float], reference: Sequence[float], ruleset: Ruleset,
            margin: float) -> Comparison:
    """Test H1: mean(reference) - mean(candidate) > margin (BPB); Welch when both sides have ≥ 2 values.

    With one reference value (a published frontier score without its seeds) the reference is a constant
    and the test is a one-sample t-test of the candidate's seeds.
    """
    if not candidate or not reference:
        raise DataError("both sides of a comparison need at least one score")
    mean_c, mean_r = statistics.fmean(candidate), statistics.fmean(reference)
    std_c, std_r = _std(candidate), _std(reference)
    gain = mean_r - mean_c
    t = df = p = None
    test = "none"
    if std_c is not None and std_r is not None:
        var_c, var_r = std_c**2 / len(candidate), std_r**2 / len(reference)
        se = math.sqrt(var_c + var_r)
        if se > 0:
            t = (gain - margin) / se
            df = (var_c + var_r) ** 2 / (var_c**2 / (len(candidate) - 1) + var_r**2 / (len(reference) - 1))
            test = "welch"
    elif std_c is not None:
        se = std_c / math.sqrt(len(candidate))
        if se > 0:
            t, df, test = (gain - margin) / se, float(len(candidate) - 1), "one-sample"
    if t is not None and df is not None:
        p = student_t_sf(t, df)
    return Comparison(len(candidate), len(reference), mean_c, mean_r, std_c, std_r, gain, margin, t, df, p,
                      ruleset.significance_p, ruleset.min_seeds, test)


def compare_runs(candidate_bpb: Sequence[float], candidate_loss: Sequence[float | None],
                 reference_bpb: Sequence[float], ruleset: Ruleset) -> Comparison:
    """`compare` with the ruleset's nat margin converted through the candidate's own tokens-per-byte."""
    pairs = [(b, v) for b, v in zip(candidate_bpb, candidate_loss, strict=True) if v]
    if not pairs:
        raise DataError("no candidate run reports val_loss, so the nat margin cannot be converted to BPB")
    margin = statistics.fmean(margin_bpb(ruleset.record_margin_nats, b, v) for b, v in pairs)
    return compare(candidate_bpb, reference_bpb, ruleset, margin)
