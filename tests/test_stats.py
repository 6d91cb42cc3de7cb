"""Welch's t-test and the Student-t tail, checked against scipy; the margin conversion by hand."""

from __future__ import annotations

import math

import pytest
from scipy import special
from scipy import stats as sps

from pgolf.rules import TRACK_10MIN_16MB, get_ruleset
from pgolf.submission.stats import (
    compare,
    compare_runs,
    margin_bpb,
    regularized_incomplete_beta,
    student_t_sf,
)


@pytest.mark.parametrize(("a", "b", "x"), [(0.5, 0.5, 0.3), (2.0, 0.5, 0.9), (10.0, 0.5, 0.01),
                                           (1.5, 0.5, 0.999), (30.0, 0.5, 0.5)])
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert regularized_incomplete_beta(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10)


@pytest.mark.parametrize(("t", "df"), [(0.0, 2), (1.3, 2), (-2.1, 3.7), (4.5, 2.2), (12.0, 4), (-0.4, 60)])
def test_student_t_tail_matches_scipy(t: float, df: float) -> None:
    assert student_t_sf(t, df) == pytest.approx(sps.t.sf(t, df), rel=1e-9, abs=1e-15)


def test_welch_against_scipy_with_the_margin_shifted() -> None:
    candidate = [1.0800, 1.0812, 1.0795]
    reference = [1.0920, 1.0931, 1.0908]
    margin = 0.0070
    result = compare(candidate, reference, TRACK_10MIN_16MB, margin)
    # shifting the candidate up by the margin turns H1 (gain > margin) into scipy's one-sided Welch test
    expected = sps.ttest_ind([c + margin for c in candidate], reference, equal_var=False, alternative="less")
    assert result.test == "welch"
    assert result.t == pytest.approx(-expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8)
    assert result.improvement == pytest.approx(sum(reference) / 3 - sum(candidate) / 3)
    assert result.significant == (expected.pvalue < 0.01)


def test_one_reference_value_is_a_one_sample_test() -> None:
    candidate = [1.0800, 1.0812, 1.0795, 1.0803]
    result = compare(candidate, [1.0900], TRACK_10MIN_16MB, 0.002)
    expected = sps.ttest_1samp(candidate, 1.0900 - 0.002, alternative="less")
    assert result.test == "one-sample" and result.df == 3
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8)


def test_margin_converted_through_the_runs_own_tokens_per_byte() -> None:
    # val_bpb = val_loss / ln2 * tokens_per_byte
    tokens_per_byte = 0.4137
    loss = 2.0727
    bpb = loss / math.log(2) * tokens_per_byte
    assert margin_bpb(0.005, bpb, loss) == pytest.approx(0.005 / math.log(2) * tokens_per_byte)
    ruleset = get_ruleset(overrides={"record_margin_nats": 0.01, "significance_p": 0.05, "min_seeds": 2})
    result = compare_runs([bpb, bpb + 0.001], [loss, loss + 0.0015], [bpb + 0.02], ruleset)
    want = (0.01 * bpb / loss + 0.01 * (bpb + 0.001) / (loss + 0.0015)) / 2
    assert result.margin_bpb == pytest.approx(want)
    assert (result.min_seeds, result.significance_p, result.enough_seeds) == (2, 0.05, True)


def test_too_few_seeds_and_no_spread() -> None:
    result = compare([1.08], [1.09, 1.091], TRACK_10MIN_16MB, 0.001)
    assert not result.enough_seeds and result.p_value is None and not result.significant


def test_stats_compare_cli_on_records_folders(shared_data) -> None:
    import json as _json

    from typer.testing import CliRunner

    from pgolf.cli.app import app

    records = shared_data / "records" / "track_10min_16mb"
    newer, older = records / "2026-04-09_A2_Muon097_3Seed", records / "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon"
    result = CliRunner().invoke(app, ["stats", "compare", str(newer), str(older), "--json"])
    assert result.exit_code == 0, result.output
    data = _json.loads(result.stdout)
    assert data["test"] == "welch" and data["n_candidate"] == data["n_reference"] == 3
    assert data["significant"] and data["improvement"] > 0.03


def test_stats_compare_uses_the_seeds_submission_json_names(shared_data, tmp_path) -> None:
    import json as _json
    import shutil

    from typer.testing import CliRunner

    from pgolf.cli.app import app

    records = shared_data / "records" / "track_10min_16mb"
    lora, baseline = records / "2026-03-17_LoRA_TTT", records / "2026-03-17_NaiveBaseline"
    # LoRA_TTT's submission.json names no seeds: all four ablation logs count, and the output says so
    result = CliRunner().invoke(app, ["stats", "compare", str(lora), str(baseline), "--json"])
    assert result.exit_code == 0, result.output
    data = _json.loads(result.stdout)
    assert data["n_candidate"] == 4
    assert data["used"]["A"] == [f"{lora}: train_v0.txt, train_v1.txt, train_v2.txt, train_v3.txt (every complete "
                                 "log (submission.json names no seeds they match); some share a seed, so they "
                                 "may be reruns or ablations rather than independent seeds)"]
    # A 3-seed folder with one of LoRA_TTT's ablation logs added: only the three named seeds count
    folder = tmp_path / "2026-04-09_A2_Muon097_3Seed"
    shutil.copytree(records / folder.name, folder)
    shutil.copy(lora / "train_v0.txt", folder / "train_ablation.txt")
    text = CliRunner().invoke(app, ["stats", "compare", str(folder), str(baseline)])
    assert text.exit_code == 0, text.output
    assert (f"A: {folder}: train_seed0.log, train_seed1234.log, train_seed42.log (the seeds submission.json "
            "names (0, 1234, 42))") in text.stdout
    assert "train_ablation" not in text.stdout
    scores = _json.loads(CliRunner().invoke(app, ["stats", "compare", str(folder), str(baseline), "--json"]).stdout)
    assert scores["n_candidate"] == 3
