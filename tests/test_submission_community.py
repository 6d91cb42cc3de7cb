"""The community's rules: each ruling has a positive and a negative fixture of our own; nothing is executed."""

from __future__ import annotations

from pathlib import Path

import pytest

import pgolf.submission.community as community
from pgolf.rules import TRACK_10MIN_16MB
from pgolf.submission.checks import FAIL, PASS, WARN, run_checks
from pgolf.submission.community import community_findings, load_rulings
from pgolf.submission.folder import Submission

# (ruling id, a script that matches it, the same idea done the allowed way)
CASES = {
    "C1-target-in-key": (
        "def lookup(ctx_hash, tgt_np, primes, mask, table):\n"
        "    full_key = (ctx_hash ^ (tgt_np * primes[0])) & mask\n"
        "    return table[full_key]\n",
        "def lookup(ctx_hash, primes, mask, table):\n"
        "    ctx_key = (ctx_hash * primes[0]) & mask\n"
        "    return table[ctx_key]\n"),
    "C2-normalization": (
        "import torch\n"
        "def eval_cache(p_model, ngram_counts, ctx_counts, alpha):\n"
        "    p_cache = ngram_counts / ctx_counts\n"
        "    p_mix = (1 - alpha) * p_model + alpha * p_cache\n"
        "    return -torch.log(p_mix)\n",
        "import torch\n"
        "def eval_cache(logits, ngram_counts, alpha):\n"
        "    p_model = torch.softmax(logits, -1)\n"
        "    p_cache = ngram_counts / ngram_counts.sum(-1, keepdim=True)\n"
        "    p_mix = (1 - alpha) * p_model + alpha * p_cache\n"
        "    return -torch.log(p_mix)\n"),
    "C4-oracle-rescoring": (
        "def final_score(nll_pass1, nll_pass2):\n    return min(nll_pass1, nll_pass2)\n",
        "def final_score(nll_pass1, n):\n    return min(nll_pass1, n)\n"),
    "402-train-then-score": (
        "def eval_val_ttt(model, opt, val_tokens, epochs):\n"
        "    for epoch in range(epochs):\n"
        "        loss = model(val_tokens)\n"
        "        loss.backward()\n"
        "        opt.step()\n"
        "    loss_sum = 0.0\n"
        "    loss_sum += model(val_tokens)\n"
        "    return loss_sum\n",
        "def eval_val_ttt(model, opt, val_tokens, epochs):\n"
        "    loss_sum = 0.0\n"
        "    for chunk in val_tokens:\n"
        "        loss_sum += model(chunk)\n"
        "        for epoch in range(epochs):\n"
        "            model(chunk).backward()\n"
        "            opt.step()\n"
        "    return loss_sum\n"),
    "SLOT-second-order": (
        "import torch\n"
        "def eval_val_slot(model, x, y, steps):\n"
        "    delta = torch.zeros(1, 1, 512, requires_grad=True)\n"
        "    opt = torch.optim.AdamW([delta])\n"
        "    for _ in range(steps):\n"
        "        model.loss(x, y, delta).backward()\n"
        "        opt.step()\n"
        "    return model.loss(x, y, delta)\n",
        "import torch\n"
        "def eval_val(model, x, y):\n"
        "    with torch.no_grad():\n"
        "        return model.loss(x, y)\n"),
    "677-gptq-on-val": (
        "def quantize(model, val_tokens):\n    return gptq_quantize(model, calib=val_tokens)\n",
        "def quantize(model, train_tokens):\n    return gptq_quantize(model, calib=train_tokens)\n"),
    "677-eval-warmup-on-val": (
        "def compile_warmup(model, opt, val_tokens):\n"
        "    for warmup_step in range(3):\n"
        "        model(val_tokens[:128]).backward()\n"
        "        opt.step()\n",
        "import torch\n"
        "def compile_warmup(model, opt):\n"
        "    fake = torch.randint(0, 1024, (128,))\n"
        "    for warmup_step in range(3):\n"
        "        model(fake).backward()\n"
        "        opt.step()\n"),
    "1797-bos-mask": (
        "import torch.nn.functional as F\n"
        "def forward(self, x, ids):\n"
        "    prev = F.pad(x[:, :-1], (0, 0, 1, 0))\n"
        "    return x + self.smear_gate(x) * prev\n",
        "import torch.nn.functional as F\n"
        "def forward(self, x, ids):\n"
        "    not_bos = (ids[:, 1:] != BOS_ID)\n"
        "    prev = F.pad(x[:, :-1] * not_bos[..., None], (0, 0, 1, 0))\n"
        "    return x + self.smear_gate(x) * prev\n"),
}


def test_every_ruling_in_the_data_file_has_both_fixtures() -> None:
    version, rulings = load_rulings()
    assert version and sorted(r.id for r in rulings) == sorted(CASES)
    assert all(r.refs and r.refs[0].startswith("openai/parameter-golf#") and r.date for r in rulings)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_the_positive_fixture_matches_its_rule_and_the_negative_does_not(rule_id: str) -> None:
    positive, negative = CASES[rule_id]
    found = community_findings(positive)
    assert any(f"[{rule_id} (" in msg for _, _, msg in found), found
    ruling = next(r for r in load_rulings()[1] if r.id == rule_id)
    hit = next(f for f in found if f"[{rule_id} (" in f[2])
    assert hit[0] in (ruling.severity, WARN) and int(hit[1]) > 0  # a line of the fixture
    assert not [f for f in community_findings(negative) if f"[{rule_id} (" in f[2]], community_findings(negative)


def _check(source: str, date: str = "2026-05-01") -> object:
    files = {"train_gpt.py": source.encode(), "submission.json": f'{{"date": "{date}"}}'.encode()}
    sub = Submission("2026-05-01_T", "mem", files, {k: len(v) for k, v in files.items()}, track="track_10min_16mb")
    return next(r for r in run_checks(sub, TRACK_10MIN_16MB) if r.name == "community_rules")


def test_the_check_names_the_rule_and_the_ruling_with_file_and_line() -> None:
    result = _check(CASES["C1-target-in-key"][0])
    assert result.status == FAIL
    assert result.evidence[0].startswith("train_gpt.py:2: full_key hashes the target token (tgt_np)")
    assert "C1-target-in-key (openai/parameter-golf#1017, openai/parameter-golf#779, 2026-03-27)" in result.evidence[0]
    assert _check(CASES["C1-target-in-key"][1]).status == PASS


def test_a_submission_older_than_a_ruling_is_informed_not_flagged() -> None:
    result = _check(CASES["1797-bos-mask"][0], date="2026-04-01")
    assert result.status == PASS and "before this ruling" in result.evidence[0]
    assert _check(CASES["1797-bos-mask"][0], date="2026-04-30").status == WARN


def test_a_new_ruling_is_a_data_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = community.RULINGS_FILE.read_text().replace('id = "1797-bos-mask"\ndetector = "smear_without_bos_mask"\n'
                                                      'severity = "WARN"',
                                                      'id = "1797-bos-mask"\ndetector = "smear_without_bos_mask"\n'
                                                      'severity = "FAIL"')
    stricter = tmp_path / "rulings.toml"
    stricter.write_text(data)
    monkeypatch.setattr(community, "RULINGS_FILE", stricter)
    # the detector cannot be sure of this pattern, so even a FAIL ruling reports it as WARN ...
    assert _check(CASES["1797-bos-mask"][0]).status == WARN
    # ... while a sure detector follows the data's severity
    stricter.write_text(community.RULINGS_FILE.read_text().replace('severity = "FAIL"\nrule = "#1017 Condition 1 (strict',
                                                                   'severity = "WARN"\nrule = "#1017 Condition 1 (strict'))
    load_rulings.cache_clear()
    assert _check(CASES["C1-target-in-key"][0]).status == WARN
    broken = tmp_path / "broken.toml"
    broken.write_text('version = "x"\n[[rule]]\nid = "a"\ndetector = "nope"\nseverity = "FAIL"\nrule = ""\n'
                      'ruling = ""\ndate = "2026-01-01"\n')
    with pytest.raises(ValueError, match="no detector named nope"):
        load_rulings(broken)
