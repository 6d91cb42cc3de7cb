"""The keep judge: its t distribution against scipy, pooled σ, screening, paired replicates, the test."""

from __future__ import annotations

import math
import random
import statistics

import pytest
import scipy.stats

from pgolf.config import LoopConfig, parse_config
from pgolf.errors import ConfigError
from pgolf.loop.judge import KeepPolicy, Sample, Sigma, judge, pooled_sigma, t_isf, t_sf

POLICY = KeepPolicy(alpha=0.05, min_gain=0.002, screen_sigmas=1.0, replicates=3, max_replicates=6,
                    equal_sigmas=2.0)
SIGMA = Sigma(0.01, 20, 5)


def _samples(seeds, values):
    return [Sample(s, v) for s, v in zip(seeds, values, strict=True)]


def _verdict(candidate, incumbent, sigma=SIGMA, policy=POLICY, tested=0, simpler=False):
    return judge(candidate, incumbent, sigma, policy=policy, candidates_tested=tested, simpler=simpler)


# -- Student's t -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7, 12, 30, 100, 10_000])
def test_t_tail_matches_scipy(dof):
    for t in (-1e6, -40.0, -3.1, -1.0, -1e-9, 0.0, 1e-9, 0.3, 1.0, 1.96, 2.7, 5.0, 12.0, 80.0, 1e6):
        ours, ref = t_sf(t, dof), scipy.stats.t.sf(t, dof)
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-300), (t, dof)


def test_t_tail_of_huge_effects_is_tiny_but_positive_and_infinity_is_exact():
    assert 0.0 < t_sf(1e4, 30) == pytest.approx(scipy.stats.t.sf(1e4, 30), rel=1e-6)
    assert t_sf(math.inf, 3) == 0.0 and t_sf(-math.inf, 3) == 1.0
    with pytest.raises(ValueError):
        t_sf(1.0, 0)


@pytest.mark.parametrize("dof", [1, 2, 5, 20, 500])
@pytest.mark.parametrize("p", [0.2, 0.05, 0.01, 1e-4, 1e-8])
def test_t_quantile_matches_scipy(dof, p):
    assert t_isf(p, dof) == pytest.approx(scipy.stats.t.isf(p, dof), rel=1e-8)
    # Near t = 0 (p = 0.5, a level no test uses) the shared tail loses ~1e-8·√dof to the rounding of 1 - x.
    assert abs(t_isf(0.5, dof)) < 1e-6


# -- pooled σ --------------------------------------------------------------------------------------

def test_pooled_sigma_is_the_pooled_within_group_spread():
    groups = [[1.20, 1.23, 1.19], [1.30, 1.32], [1.5]]
    got = pooled_sigma(groups)
    ss = sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) > 1)
    assert got is not None and (got.dof, got.groups) == (3, 2)
    assert got.value == pytest.approx(math.sqrt(ss / 3), rel=1e-12)


def test_pooled_sigma_needs_a_repeated_group_and_its_dof_grows_with_groups():
    assert pooled_sigma([]) is None
    assert pooled_sigma([[1.2], [1.3]]) is None
    rng = random.Random(7)
    dofs, errors = [], []
    groups: list[list[float]] = []
    for _ in range(60):
        groups.append([1.25 + rng.gauss(0, 0.01) for _ in range(3)])
        sigma = pooled_sigma(groups)
        assert sigma is not None
        dofs.append(sigma.dof)
        errors.append(abs(sigma.value - 0.01))
    assert dofs == [2 * (i + 1) for i in range(60)]
    assert statistics.fmean(errors[-10:]) < statistics.fmean(errors[:3])  # more groups, a better σ


def test_pooled_sigma_of_identical_runs_is_zero_and_non_finite_runs_are_refused():
    assert pooled_sigma([[1.2, 1.2, 1.2]]) == Sigma(0.0, 2, 1)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            pooled_sigma([[1.2, bad]])


# -- policy and config -----------------------------------------------------------------------------

def test_alpha_spending_sums_to_at_most_alpha_flat_then_decreasing():
    spent = [POLICY.alpha_for(k) for k in range(100_000)]
    horizon = POLICY.alpha_horizon
    assert 0.999 * POLICY.alpha < sum(spent) <= POLICY.alpha
    assert spent[:horizon] == [pytest.approx(0.9 * POLICY.alpha / horizon)] * horizon
    tail = spent[horizon:]
    assert sum(tail) == pytest.approx(0.1 * POLICY.alpha, rel=1e-4)
    assert all(a > b for a, b in zip(tail, tail[1:], strict=False))
    assert POLICY.alpha_for(-3) == POLICY.alpha_for(0)


def test_policy_from_the_default_config_and_bounds():
    policy = KeepPolicy.from_config(LoopConfig())
    assert policy.looks == (policy.replicates, policy.max_replicates)
    assert KeepPolicy(replicates=4, max_replicates=4).looks == (4,)
    with pytest.raises(ConfigError, match="max_replicates"):
        parse_config({"loop": {"replicates": 5, "max_replicates": 3}})
    for key, value in (("alpha", 0), ("alpha", 0.9), ("replicates", 0), ("screen_sigmas", -1)):
        with pytest.raises(ConfigError, match=key):
            parse_config({"loop": {key: value}})
    with pytest.raises(ValueError):
        KeepPolicy(alpha=1.5)


def test_the_old_sigma_multiplier_key_is_read_as_the_screening_bar():
    assert parse_config({"loop": {"sigma_multiplier": 1.5}}).loop.screen_sigmas == 1.5
    assert parse_config({"loop": {"screen_sigmas": 0.5}}).loop.screen_sigmas == 0.5
    with pytest.raises(ConfigError, match="sigma_multiplier"):
        parse_config({"loop": {"screen_sigmas": 0.5, "sigma_multiplier": 2.0}})


# -- screening -------------------------------------------------------------------------------------

def test_a_first_run_below_the_bar_is_discarded_with_its_evidence():
    inc = _samples([1337, 1338], [1.250, 1.252])
    v = _verdict([Sample(1337, 1.245)], inc)
    bar = 1.0 * 0.01 * math.sqrt(1.5)
    assert v.action == "discard" and v.n == 1
    assert v.bar == pytest.approx(bar) and v.gain == pytest.approx(1.251 - 1.245)
    assert v.incumbent_mean == pytest.approx(1.251) and v.candidate_mean == pytest.approx(1.245)
    assert v.p_value == pytest.approx(scipy.stats.t.sf(v.gain / bar, 20))  # bar = 1 σ of the difference
    assert v.test.startswith("screen") and "\n" not in v.reason and "screening bar" in v.reason
    d = v.as_dict()
    for key in ("action", "candidate_seeds", "incumbent_seeds", "n", "candidate_mean", "incumbent_mean",
                "sigma", "test", "p_value", "alpha", "bar", "gain", "reason"):
        assert key in d


def test_a_first_run_over_the_bar_asks_for_paired_seeds_of_both():
    inc = _samples([1337, 1338], [1.250, 1.252])
    v = _verdict([Sample(1337, 1.225)], inc, tested=2)
    assert v.action == "replicate"
    assert v.candidate_seeds == (1338, 1339, 1340)  # never the screening seed again
    assert v.incumbent_seeds == (1339, 1340)  # only those it has not run
    assert v.alpha == pytest.approx(POLICY.alpha_for(2) / 2)  # two looks share α_3
    assert v.bar == pytest.approx(0.01 * math.sqrt(1.5)) and v.test.startswith("screen")  # the evidence so far
    assert v.p_value == pytest.approx(scipy.stats.t.sf(v.gain / v.bar, 20))


def test_without_a_noise_estimate_the_incumbent_runs_another_seed():
    for sigma in (None, Sigma(0.01, 0, 0)):
        v = _verdict([Sample(1337, 1.0)], [Sample(1337, 1.25)], sigma=sigma)
        assert v.action == "replicate" and v.incumbent_seeds == (1338,) and v.candidate_seeds == ()


def test_empty_and_non_finite_inputs_are_refused():
    with pytest.raises(ValueError):
        _verdict([], [Sample(1337, 1.2)])
    with pytest.raises(ValueError):
        _verdict([Sample(1337, 1.2)], [])
    with pytest.raises(ValueError, match="finite"):
        _verdict([Sample(1337, math.nan)], [Sample(1337, 1.2)])


# -- the test --------------------------------------------------------------------------------------

def _replicated(gains, incumbent_values, screen=1.20):
    """A candidate screened at 1337 and replicated at 1338.. with these paired gains."""
    seeds = [1337 + i for i in range(len(incumbent_values))]
    inc = _samples(seeds, incumbent_values)
    cand = [Sample(1337, screen)] + [Sample(1338 + i, incumbent_values[1 + i] - g) for i, g in enumerate(gains)]
    return cand, inc


def test_a_huge_effect_is_kept_at_the_first_look_with_scipy_p_value():
    cand, inc = _replicated([0.05, 0.06, 0.055], [1.25, 1.26, 1.24, 1.25])
    v = _verdict(cand, inc)
    se = 0.01 * math.sqrt(2 / 3)
    t = (0.055 - 0.002) / se
    assert v.action == "keep" and v.n == 3
    assert v.gain == pytest.approx(0.055)
    assert v.p_value == pytest.approx(scipy.stats.t.sf(t, 20), rel=1e-8)
    assert v.bar == pytest.approx(0.002 + scipy.stats.t.isf(v.alpha, 20) * se, rel=1e-8)
    assert v.candidate_mean == pytest.approx(statistics.fmean(s.val_bpb for s in cand))
    assert "paired t" in v.test and "\n" not in v.reason


def test_interim_look_continues_a_promising_candidate_and_stops_a_futile_one():
    inc = [1.25, 1.26, 1.24, 1.25]
    promising = _verdict(*_replicated([0.012, 0.010, 0.011], inc))
    assert promising.action == "replicate"
    assert promising.candidate_seeds == (1341, 1342, 1343) and promising.incumbent_seeds == (1341, 1342, 1343)
    assert "paired t" in promising.test and promising.p_value > promising.alpha  # the interim look's numbers
    cand, incumbent = _replicated([0.012, 0.010, 0.011, 0.012], inc + [1.25])  # between the looks
    between = _verdict(cand, incumbent)
    assert between.action == "replicate" and between.candidate_seeds == (1342, 1343)
    assert between.p_value == pytest.approx(promising.p_value)  # still the interim look's evidence
    futile = _verdict(*_replicated([0.004, -0.006, 0.001], inc))
    assert futile.action == "discard" and "stopped early" in futile.reason


def test_the_last_look_decides_either_way():
    inc = [1.25 + 0.001 * i for i in range(7)]
    kept = _verdict(*_replicated([0.02, 0.025, 0.018, 0.022, 0.03, 0.02], inc))
    assert kept.action == "keep" and kept.n == 6
    lost = _verdict(*_replicated([0.012, 0.010, 0.011, 0.0, 0.002, 0.001], inc))
    assert lost.action == "discard" and lost.n == 6 and lost.p_value > lost.alpha


def test_zero_sigma_decides_by_the_sign_without_dividing_by_zero():
    flat = Sigma(0.0, 4, 2)
    cand, inc = _replicated([0.003, 0.003, 0.003], [1.25] * 4, screen=1.247)
    v = _verdict(cand, inc, sigma=flat)
    assert v.action == "keep" and v.p_value == 0.0
    same, inc = _replicated([0.0, 0.0, 0.0], [1.25] * 4, screen=1.247)
    v = _verdict(same, inc, sigma=flat)
    assert v.action == "discard" and v.p_value == 1.0


def test_equal_scripts_are_kept_only_when_shorter_and_shown_equal():
    inc = [1.25 + 0.001 * i for i in range(7)]
    equal = _replicated([0.0] * 6, inc, screen=1.25)
    assert _verdict(*equal).action == "discard"  # at the screening bar: equal is not better
    cand, incumbent = equal
    first = _verdict(cand[:1], incumbent, simpler=True)
    assert first.action == "replicate"  # a shorter script that looks equal is replicated
    kept = _verdict(cand, incumbent, simpler=True)
    assert kept.action == "keep" and "non-inferiority" in kept.test and "shorter" in kept.reason
    worse = _replicated([-0.03] * 6, inc, screen=1.26)
    v = _verdict(worse[0], worse[1], simpler=True)
    assert v.action == "discard"


def test_false_keeps_of_one_candidate_stay_under_its_alpha():
    """Monte Carlo under the null, σ estimated from the runs: keeps at most α_1 (plus sampling error)."""
    rng = random.Random(2026)
    keeps, trials = 0, 1500
    for _ in range(trials):
        inc = _samples(range(1337, 1341), [1.25 + rng.gauss(0, 0.01) for _ in range(4)])
        cand = [Sample(1337, 1.25 - 0.02)]  # screened in by a lucky first run
        while True:
            sigma = pooled_sigma([[s.val_bpb for s in inc], [s.val_bpb for s in cand]])
            v = _verdict(cand, inc, sigma=sigma)
            if v.action != "replicate":
                break
            cand += [Sample(s, 1.25 + rng.gauss(0, 0.01)) for s in v.candidate_seeds]
            inc += [Sample(s, 1.25 + rng.gauss(0, 0.01)) for s in v.incumbent_seeds]
        keeps += v.action == "keep"
    alpha_1 = POLICY.alpha_for(0)
    assert keeps / trials <= alpha_1 + 3 * math.sqrt(alpha_1 / trials)
