"""The keep decision for scored runs: screen on one run, replicate, then a one-sided paired test.

Pure functions, no I/O. The engine applies the hard gates (crash, oversize, timeout) first and hands
the judge only scored runs; it runs the seeds a "replicate" verdict names and calls `judge` again.

The design (the maths is in docs/architecture.md, "Replicated, noise-aware keeps"):
- σ is pooled over every group of repeated runs (one commit, several seeds): Σ SS_g / Σ (n_g − 1).
- Screening: the candidate's first run must beat the incumbent's mean by `bar`. It costs one run and
  discards most candidates; it is never part of the test, because it chose the candidate.
- Replication: the candidate runs fresh seeds that the incumbent also runs (paired seeds).
- The test: d_i = incumbent(s_i) − candidate(s_i); t = (mean(d) − min_gain) / (σ·√(2/n)) against a
  Student t with σ's degrees of freedom. The candidate whose screening run was the k-th to clear the
  bar is tested at α_k (see `KeepPolicy.alpha_for`) with Σ_k α_k = α: the chance that a session keeps
  ANY change that is not better by min_gain is at most α, however many candidates it tries.
- Two looks (at `replicates` and `max_replicates` pairs) split α_k in halves; after the first look
  only a candidate whose estimated gain beats min_gain runs more seeds (stopping early for futility
  only lowers the error rate).
- Simplicity: a shorter script is kept when it is "equal within the noise": a one-sided
  non-inferiority test, H0: δ ≤ −margin with margin = max(equal_sigmas·σ, min_gain), at the same α_k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

Action = Literal["replicate", "keep", "discard"]

_TAIL = 0.1  # the share of α left for candidates past the horizon, spent as 1/j² (Σ 1/j² = π²/6)


@dataclass(frozen=True)
class Sample:
    """One scored run: the seed it ran with and its val_bpb."""

    seed: int
    val_bpb: float


@dataclass(frozen=True)
class Sigma:
    """The pooled seed-to-seed σ of one run's val_bpb, its degrees of freedom and how many groups gave it."""

    value: float
    dof: int
    groups: int


def pooled_sigma(groups: Iterable[Sequence[float]]) -> Sigma | None:
    """σ pooled over groups of repeated runs (same commit, different seeds); None until one group has two."""
    ss, dof, used = 0.0, 0, 0
    for group in groups:
        values = [float(v) for v in group]
        _check_finite(values)
        if len(values) < 2:
            continue
        mean = math.fsum(values) / len(values)
        ss += math.fsum((v - mean) ** 2 for v in values)
        dof += len(values) - 1
        used += 1
    if dof == 0:
        return None
    return Sigma(math.sqrt(ss / dof), dof, used)


@dataclass(frozen=True)
class KeepPolicy:
    """How a candidate earns a keep; the defaults are tuned by benchmarks/bench_validity.py."""

    alpha: float = 0.05  # chance, per session, of keeping any change that is not better by min_gain
    min_gain: float = 0.002  # a keep must beat the incumbent by more than this (bpb)
    screen_sigmas: float = 1.0  # the first run must beat the incumbent's mean by this many σ of a difference
    replicates: int = 4  # paired seeds at the first look
    max_replicates: int = 8  # paired seeds at the last look (== replicates: one look)
    equal_sigmas: float = 2.0  # a shorter script may be worse by up to this many σ and still be "equal"
    alpha_horizon: int = 8  # the first this many screened-in candidates share 90% of α evenly

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), not {self.alpha}")
        if self.alpha_horizon < 1:
            raise ValueError("alpha_horizon must be >= 1")
        if self.replicates < 1 or self.max_replicates < self.replicates:
            raise ValueError("need 1 <= replicates <= max_replicates")
        if min(self.min_gain, self.screen_sigmas, self.equal_sigmas) < 0:
            raise ValueError("min_gain, screen_sigmas and equal_sigmas must be >= 0")

    @classmethod
    def from_config(cls, loop: Any) -> KeepPolicy:
        """The policy of a `[loop]` section (a LoopConfig, or anything with the same attributes)."""
        return cls(alpha=loop.alpha, min_gain=loop.min_gain, screen_sigmas=loop.screen_sigmas,
                   replicates=loop.replicates, max_replicates=loop.max_replicates,
                   equal_sigmas=loop.equal_sigmas, alpha_horizon=loop.alpha_horizon)

    @property
    def looks(self) -> tuple[int, ...]:
        """The numbers of paired seeds at which the test is made."""
        return (self.replicates,) if self.max_replicates == self.replicates else (
            self.replicates, self.max_replicates)

    def alpha_for(self, candidates_tested: int) -> float:
        """α_k for the candidate that is the k = (candidates_tested + 1)-th to clear the screening bar.

        k <= H (alpha_horizon): α·0.9/H each; k > H: α·0.1·(6/π²)/(k − H)². Σ_k α_k = α.
        """
        k = max(0, candidates_tested) + 1
        if k <= self.alpha_horizon:
            return self.alpha * (1 - _TAIL) / self.alpha_horizon
        j = k - self.alpha_horizon
        return self.alpha * _TAIL * 6.0 / (math.pi ** 2 * j * j)


@dataclass(frozen=True)
class Verdict:
    """What to do with a candidate, and the evidence."""

    action: Action
    candidate_seeds: tuple[int, ...]  # seeds still to run for the candidate (replicate only)
    incumbent_seeds: tuple[int, ...]  # seeds still to run for the incumbent (replicate only)
    n: int  # runs behind the evidence: 1 at screening, else paired seeds in the test
    candidate_mean: float  # mean of all the candidate's runs
    incumbent_mean: float  # mean of all the incumbent's runs: its score
    sigma: float | None  # pooled σ of one run
    sigma_dof: int
    test: str
    p_value: float | None
    alpha: float  # the level this candidate is tested at (α_k, or its share at this look)
    bar: float | None  # the gain that had to be beaten (screening bar, or the critical mean paired gain)
    gain: float  # incumbent − candidate: the first run vs the mean, or the mean paired difference
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for decision.json."""
        return asdict(self)


def judge(candidate: Sequence[Sample], incumbent: Sequence[Sample], sigma: Sigma | None, *,
          policy: KeepPolicy, candidates_tested: int, simpler: bool) -> Verdict:
    """Screen, ask for paired replicates, or keep/discard on the test; see the module docstring.

    `candidates_tested`: how many other candidates cleared the screening bar before this one did; the
    engine fixes it when this candidate clears the bar and passes the same number on every later call.
    `simpler`: the candidate's script has fewer lines than the incumbent's.
    """
    if not candidate:
        raise ValueError("the judge needs the candidate's first scored run")
    if not incumbent:
        raise ValueError("the judge needs at least one scored run of the incumbent")
    _check_finite([s.val_bpb for s in (*candidate, *incumbent)])
    cand_mean = _mean(s.val_bpb for s in candidate)
    inc_mean = _mean(s.val_bpb for s in incumbent)
    alpha_k = policy.alpha_for(candidates_tested)
    common = {"candidate_mean": cand_mean, "incumbent_mean": inc_mean}
    if sigma is None or sigma.dof < 1:
        seed = _next_seed(candidate, incumbent)
        return Verdict("replicate", (), (seed,), 1, sigma=None, sigma_dof=0, test="none", p_value=None,
                       alpha=alpha_k, bar=None, gain=inc_mean - candidate[0].val_bpb,
                       reason=f"no noise estimate yet: the incumbent runs seed {seed} to measure σ", **common)
    screen, confirm = candidate[0], [s for s in candidate[1:] if s.seed != candidate[0].seed]
    margin = max(policy.equal_sigmas * sigma.value, policy.min_gain)
    ev = {"sigma": sigma.value, "sigma_dof": sigma.dof, **common}
    looks, alpha_look = policy.looks, alpha_k / len(policy.looks)
    screening = _screen(screen, incumbent, inc_mean, sigma, policy, alpha_k, margin, simpler, ev)
    if not confirm and screening.action == "discard":
        return screening
    paired = _pairs(confirm, incumbent)
    if len(paired) < looks[0]:
        return _replicate(candidate, incumbent, confirm, looks[0], screening, alpha_look)
    if len(paired) < looks[-1] and len(paired) != looks[0]:  # between the looks: the interim's evidence
        first = dict(list(paired.items())[:looks[0]])
        interim = _test(first, sigma, policy, alpha_look, margin, simpler, ev)
        return _replicate(candidate, incumbent, confirm, looks[-1], interim, alpha_look)
    verdict = _test(paired, sigma, policy, alpha_look, margin, simpler, ev)
    if verdict.action == "keep" or len(paired) >= looks[-1]:
        return verdict
    # The interim look: more seeds only for a candidate whose estimated gain beats the null.
    if verdict.gain > (-margin if simpler else policy.min_gain):
        return _replicate(candidate, incumbent, confirm, looks[-1], verdict, alpha_look)
    return replace(verdict, reason=verdict.reason + "; stopped early: no more seeds")


# -- the steps ----------------------------------------------------------------------------------------

def _screen(screen: Sample, incumbent: Sequence[Sample], inc_mean: float, sigma: Sigma, policy: KeepPolicy,
            alpha_k: float, margin: float, simpler: bool, ev: dict[str, Any]) -> Verdict:
    """The first run against the bar: discard below it, else "replicate" (its seeds are named by the caller)."""
    gain = inc_mean - screen.val_bpb
    spread = sigma.value * math.sqrt(1 + 1 / len(incumbent))  # σ of (first run − incumbent mean)
    bar = -margin if simpler else max(policy.screen_sigmas * spread, policy.min_gain)
    p = t_sf(_ratio(gain, spread), sigma.dof)  # evidence of any gain in this one run (reported, not tested)
    test = "screen: first run vs the incumbent's mean"
    if gain > bar or (gain == bar and simpler):
        return Verdict("replicate", (), (), 1, test=test, p_value=p, alpha=alpha_k, bar=bar, gain=gain,
                       reason=f"first run cleared the screening bar {bar:+.4f}", **ev)
    what = "worse than the incumbent by more than the equality margin" if simpler else "below the screening bar"
    return Verdict("discard", (), (), 1, test=test, p_value=p, alpha=alpha_k, bar=bar, gain=gain,
                   reason=f"first run gain {gain:+.4f} is {what} {bar:+.4f} (σ {sigma.value:.4f})", **ev)


def _replicate(candidate: Sequence[Sample], incumbent: Sequence[Sample], confirm: Sequence[Sample], target: int,
               evidence: Verdict, alpha_look: float) -> Verdict:
    """Name the paired seeds still to run so that the test has `target` pairs.

    The verdict keeps the evidence so far (the screening or the interim look: its test, p-value and bar)
    and the level of the look to come.
    """
    screen_seed = candidate[0].seed
    have = _unique(s.seed for s in confirm)
    inc_seeds = _unique(s.seed for s in incumbent)
    order = have + [s for s in inc_seeds if s not in have and s != screen_seed]
    nxt = _next_seed(candidate, incumbent)
    while len(order) < target:
        order.append(nxt)
        nxt += 1
    want = order[:target] if len(have) <= target else have
    cand_todo = tuple(s for s in want if s not in have)
    inc_todo = tuple(s for s in want if s not in inc_seeds)
    paired = _pairs(confirm, incumbent)
    gain = _mean(paired.values()) if paired else evidence.gain
    first = "first run cleared the screening bar" if not confirm else f"promising after {len(paired)} paired seeds"
    return replace(evidence, action="replicate", candidate_seeds=cand_todo, incumbent_seeds=inc_todo,
                   n=len(paired) or 1, alpha=alpha_look, gain=gain,
                   reason=f"{first} (gain {gain:+.4f}): {len(cand_todo)} more candidate run(s), "
                          f"{len(inc_todo)} incumbent run(s), for {target} paired seeds")


def _test(paired: Mapping[int, float], sigma: Sigma, policy: KeepPolicy, alpha_look: float, margin: float,
          simpler: bool, ev: dict[str, Any]) -> Verdict:
    """The one-sided paired test at this look: keep or discard."""
    n = len(paired)
    gain = _mean(paired.values())
    se = sigma.value * math.sqrt(2.0 / n)  # σ of the mean of n paired differences of independent runs
    crit = t_isf(alpha_look, sigma.dof)
    better_bar = policy.min_gain + crit * se
    p_better = t_sf(_ratio(gain - policy.min_gain, se), sigma.dof)
    base = f"paired gain {gain:+.4f} over {n} seeds, σ {sigma.value:.4f} ({sigma.dof} dof)"
    if p_better <= alpha_look:
        return Verdict("keep", (), (), n, test=f"one-sided paired t, H0: gain <= {policy.min_gain:g}",
                       p_value=p_better, alpha=alpha_look, bar=better_bar, gain=gain,
                       reason=f"{base} beats {better_bar:+.4f} (p {p_better:.2g} <= {alpha_look:.2g})", **ev)
    if simpler:
        p_equal = t_sf(_ratio(gain + margin, se), sigma.dof)
        equal_bar = -margin + crit * se
        test = f"one-sided paired t non-inferiority, H0: gain <= -{margin:.4g}"
        if p_equal <= alpha_look:
            return Verdict("keep", (), (), n, test=test, p_value=p_equal, alpha=alpha_look, bar=equal_bar,
                           gain=gain, reason=f"{base}: equal within the noise (p {p_equal:.2g} <= "
                                             f"{alpha_look:.2g}) and the script is shorter", **ev)
        return Verdict("discard", (), (), n, test=test, p_value=p_equal, alpha=alpha_look, bar=equal_bar,
                       gain=gain, reason=f"{base}: shorter but not shown equal within the noise "
                                         f"(needs {equal_bar:+.4f}, p {p_equal:.2g} > {alpha_look:.2g})", **ev)
    return Verdict("discard", (), (), n, test=f"one-sided paired t, H0: gain <= {policy.min_gain:g}",
                   p_value=p_better, alpha=alpha_look, bar=better_bar, gain=gain,
                   reason=f"{base} does not beat {better_bar:+.4f} (p {p_better:.2g} > {alpha_look:.2g})", **ev)


# -- helpers ------------------------------------------------------------------------------------------

def _check_finite(values: Iterable[float]) -> None:
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"a score must be a finite number, not {v!r}")


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return math.fsum(items) / len(items)


def _unique(seeds: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(seeds))


def _next_seed(candidate: Sequence[Sample], incumbent: Sequence[Sample]) -> int:
    return max(s.seed for s in (*candidate, *incumbent)) + 1


def _pairs(confirm: Sequence[Sample], incumbent: Sequence[Sample]) -> dict[int, float]:
    """Seed → incumbent − candidate, each side averaged over its runs of that seed."""
    def by_seed(samples: Iterable[Sample]) -> dict[int, float]:
        groups: dict[int, list[float]] = {}
        for s in samples:
            groups.setdefault(s.seed, []).append(s.val_bpb)
        return {seed: _mean(v) for seed, v in groups.items()}

    cand, inc = by_seed(confirm), by_seed(incumbent)
    return {seed: inc[seed] - value for seed, value in cand.items() if seed in inc}


def _ratio(num: float, den: float) -> float:
    """num/den where den may be 0 (σ = 0): ±inf by the sign of num, 0 for 0/0."""
    if den > 0:
        return num / den
    return math.copysign(math.inf, num) if num else 0.0


# -- Student's t: the tail is pgolf.submission.stats' (incomplete beta, no scipy); the quantile inverts it --


def t_sf(t: float, dof: int) -> float:
    """P(T > t) for Student's t with `dof` degrees of freedom (submission.stats' tail, loaded on first use
    so that `pgolf status`, which reads pooled σ, imports nothing of pgolf.submission)."""
    from pgolf.submission.stats import student_t_sf

    return student_t_sf(t, dof)


def t_isf(p: float, dof: int) -> float:
    """The t with P(T > t) = p (bisection on t_sf; p in (0, 1))."""
    if not 0 < p < 1:
        raise ValueError("p must lie in (0, 1)")
    lo, hi = -1.0, 1.0
    while t_sf(lo, dof) < p:
        lo *= 2
    while t_sf(hi, dof) > p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_sf(mid, dof) > p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, abs(mid)):
            break
    return (lo + hi) / 2
