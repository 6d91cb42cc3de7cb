"""Records-folder patterns seen in the challenge's real records, each rebuilt as a fixture of our own.

False alarms that must be gone, and findings a reviewer flags that must be reported. Every folder is written
to tmp_path from the strings here (no third-party code), loaded like a real one and checked; nothing runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from pgolf.rules import TRACK_10MIN_16MB
from pgolf.submission.checks import FAIL, PASS, UNKNOWN, WARN, run_checks
from pgolf.submission.folder import load_path

FIXTURES = Path(__file__).parent / "fixtures" / "lut_scripts"
SCRIPT = (FIXTURES / "canonical.py").read_text()


def _log(seed: int, bpb: float, *, code: int, train_ms: int = 598_000, extra: str = "") -> str:
    return (f"world_size:8 seed:{seed}\n{extra}"
            f"step:1000/1000 val_loss:2.0 val_bpb:1.3 train_time:{train_ms}ms step_avg:600.0ms\n"
            f"Serialized model: 15000000 bytes\nCode size: {code} bytes\n"
            f"Total submission size: {15_000_000 + code} bytes\n"
            f"final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:{bpb:.8f}\n")


def _folder(tmp_path: Path, files: dict[str, str | bytes], meta: dict | None = None) -> Path:
    folder = tmp_path / "records" / "track_10min_16mb" / "2026-05-01_Fixture"
    folder.mkdir(parents=True)
    base = {"README.md": "# fixture\n", "train_gpt.py": SCRIPT}
    for name, data in {**base, **files}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    seeds = (meta or {}).pop("_seeds", [1, 2, 3])
    meta = {"author": "a", "github_id": "a", "name": "n", "date": "2026-05-01", "val_bpb": 1.1, "seeds": seeds,
            **(meta or {})}
    (folder / "submission.json").write_text(json.dumps(meta))
    return folder


def _checks(folder: Path) -> dict:
    return {r.name: r for r in run_checks(load_path(folder), TRACK_10MIN_16MB)}


def _logs(code: int, **kw: object) -> dict[str, str]:
    return {f"train_seed{s}.log": _log(s, 1.1, code=code, **kw) for s in (1, 2, 3)}  # type: ignore[arg-type]


# -- false alarms ------------------------------------------------------------------------------------

def test_flash_attention_documented_as_installed_separately_is_declared(tmp_path: Path) -> None:
    script = "import flash_attn_interface\n" + SCRIPT
    for where in ({"requirements.txt": "# FlashAttention 3 must be installed separately; see README.md\nnumpy\n"},
                  {"README.md": "Flash Attention 3 (Hopper) is required: pip install flash_attn_3\n"}):
        folder = _folder(tmp_path / str(len(where)) / next(iter(where)), {"train_gpt.py": script, **where,
                                                                          **_logs(len(script))})
        assert _checks(folder)["dependencies"].status == PASS, where
    bare = _folder(tmp_path / "bare", {"train_gpt.py": script, **_logs(len(script))})
    assert _checks(bare)["dependencies"].status == FAIL  # not documented anywhere: still a finding


def test_uncompressed_code_size_in_the_log_matches_the_shipped_file(tmp_path: Path) -> None:
    extra = f"Code size (compressed): 9000 bytes\nCode size (uncompressed): {len(SCRIPT)} bytes\n"
    logs = {f"train_seed{s}.log": _log(s, 1.1, code=9000, extra=extra) for s in (1, 2, 3)}
    result = _checks(_folder(tmp_path, logs))["logs_agree"]
    assert result.status != FAIL, result.summary
    wrong = {f"train_seed{s}.log": _log(s, 1.1, code=9000) for s in (1, 2, 3)}
    assert _checks(_folder(tmp_path / "w", wrong))["logs_agree"].status == FAIL


def test_logs_named_like_the_records_name_them_are_logs(tmp_path: Path) -> None:
    for i, name in enumerate(("ternary_log_seed1.txt", "binary_log.txt", "logs/run1.txt",
                              "logs_experiment/seed1.txt")):
        folder = _folder(tmp_path / str(i), {name: _log(1, 1.1, code=len(SCRIPT))}, {"_seeds": [1]})
        result = _checks(folder)["package_shape"]
        assert "no training log" not in result.summary, (name, result.summary)


def test_the_step_in_flight_at_the_cap_is_normal(tmp_path: Path) -> None:
    for ms in (600_038, 600_008):
        result = _checks(_folder(tmp_path / str(ms), _logs(len(SCRIPT), train_ms=ms)))["time_limits"]
        assert result.status in (PASS, UNKNOWN) and result.status != WARN, (ms, result.summary)
        assert any("past the cap" in e for e in result.evidence)
    over = _checks(_folder(tmp_path / "over", _logs(len(SCRIPT), train_ms=603_000)))["time_limits"]
    assert over.status == FAIL


def test_a_step_after_the_chunk_was_scored_is_score_first(tmp_path: Path) -> None:
    ttt = ("def eval_val_ttt(model, opt, val_tokens, epochs):\n"
           "    loss_sum = 0.0\n"
           "    for chunk in val_tokens:\n"
           "        loss_sum += model(chunk)\n"
           "        for epoch in range(epochs):\n"
           "            model(chunk).backward()\n"
           "            opt.step()\n"
           "    return loss_sum\n")
    script = SCRIPT + "\n" + ttt
    assert _checks(_folder(tmp_path, {"train_gpt.py": script, **_logs(len(script))}))["score_first_ttt"].status == PASS
    before = ttt.replace("        loss_sum += model(chunk)\n", "").replace("    return loss_sum\n",
                                                                          "        loss_sum += model(chunk)\n"
                                                                          "    return loss_sum\n")
    script = SCRIPT + "\n" + before
    result = _checks(_folder(tmp_path / "b", {"train_gpt.py": script, **_logs(len(script))}))["score_first_ttt"]
    assert result.status == FAIL


# -- missed findings ------------------------------------------------------------------------------------

def test_an_empty_script_fails(tmp_path: Path) -> None:
    checks = _checks(_folder(tmp_path, {"train_gpt.py": b"", **_logs(0)}))
    assert checks["python_grammar"].status == FAIL and checks["lut_audit"].status == FAIL
    assert all(checks[n].status != PASS for n in ("wrapper", "counted_code", "no_network", "dependencies"))


def test_a_script_python_cannot_read_fails_the_grammar(tmp_path: Path) -> None:
    raw = SCRIPT.encode() + b"# caf\xe9\n"
    checks = _checks(_folder(tmp_path, {"train_gpt.py": raw, **_logs(len(raw))}))
    assert checks["python_grammar"].status == FAIL and "0xe9" in checks["python_grammar"].summary


def test_the_scoring_script_is_another_file_of_the_folder(tmp_path: Path) -> None:
    other = SCRIPT + "\n# the version that ran\n"
    folder = _folder(tmp_path, {"train_gpt_v2.py": other, **_logs(len(other))}, {"bytes_code": len(other)})
    result = _checks(folder)["logs_agree"]
    assert result.status == FAIL and "they match train_gpt_v2.py" in result.summary


def test_hardware_other_than_h100_in_the_logs(tmp_path: Path) -> None:
    smi = "".join(f"|   {i}  NVIDIA H200                    On  |   00000000:0{i}:00.0 Off |     0 |\n" for i in range(8))
    result = _checks(_folder(tmp_path, _logs(len(SCRIPT), extra=smi)))["hardware"]
    assert result.status == WARN and "8x NVIDIA H200" in result.summary or "8x H200" in result.summary
    h100 = smi.replace("H200   ", "H100 80GB HBM3")
    assert _checks(_folder(tmp_path / "ok", _logs(len(SCRIPT), extra=h100)))["hardware"].status == PASS


def test_a_helper_module_compiling_cpp_counts_and_pushes_the_artifact_over(tmp_path: Path) -> None:
    helper = ("import ctypes, subprocess\nfrom pathlib import Path\n_SRC = Path(__file__).parent / 'k' / 'kern.cpp'\n"
              "def build():\n    subprocess.run(['g++', '-O3', '-shared', str(_SRC), '-o', 'k.so'])\n"
              "    return ctypes.CDLL('k.so')\n")
    script = SCRIPT + "\nimport tilt\n"
    code = len(script)
    logs = {f"train_seed{s}.log": _log(s, 1.1, code=code).replace("Serialized model: 15000000",
                                                                   "Serialized model: 15990000")
            .replace(f"Total submission size: {15_000_000 + code}", f"Total submission size: {15_990_000 + code}")
            for s in (1, 2, 3)}
    folder = _folder(tmp_path, {"train_gpt.py": script, "tilt.py": helper, "k/kern.cpp": "// " + "x" * 9000 + "\n",
                                **logs}, {"bytes_code": code})
    checks = _checks(folder)
    counted = " ".join(checks["counted_code"].evidence)
    assert checks["counted_code"].status == FAIL
    assert "tilt.py:5: compiles native code with g++" in counted and "tilt.py:6: ctypes.CDLL" in counted
    assert not any(e.startswith("train_gpt.py:-") for e in checks["counted_code"].evidence)
    assert "k/kern.cpp" in counted
    assert checks["artifact_bytes"].status == FAIL and "uncounted code" in checks["artifact_bytes"].summary


def test_a_stub_is_judged_by_the_sibling_it_execs(tmp_path: Path) -> None:
    stub = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    buggy = (FIXTURES / "plus_one_leading_space.py").read_text()
    folder = _folder(tmp_path, {"train_gpt.py": stub, "train_gpt_decode.py": buggy, **_logs(len(buggy))})
    checks = _checks(folder)
    assert checks["lut_audit"].status == FAIL and "leading_space_plus_one" in checks["lut_audit"].summary
    assert checks["lut_audit"].evidence[0].startswith("train_gpt_decode.py:")
    assert checks["counted_code"].status == FAIL and "execs train_gpt_decode.py" in checks["counted_code"].summary
    assert checks["wrapper"].status == PASS and "reads train_gpt_decode.py" in checks["wrapper"].evidence[0]


def test_duplicate_logs_and_reruns_of_a_seed_are_not_extra_seeds(tmp_path: Path) -> None:
    one = _log(1, 1.1, code=len(SCRIPT))
    files = {"train_seed1.log": one, "train.log": one, "train_seed1_rerun.log": _log(1, 1.2, code=len(SCRIPT)),
             "train_seed2.log": _log(2, 1.1, code=len(SCRIPT))}
    result = _checks(_folder(tmp_path, files, {"_seeds": [1, 2]}))["statistics"]
    assert result.status == WARN and result.evidence[0].startswith("2 seed score(s)")
    assert any("identical copy" in e for e in result.evidence) and any("a rerun" in e for e in result.evidence)
    three = {f"train_seed{s}.log": _log(s, 1.1, code=len(SCRIPT)) for s in (1, 2, 3)}
    assert _checks(_folder(tmp_path / "ok", three))["statistics"].status == PASS


def test_a_claimed_pre_quantization_score_fails(tmp_path: Path) -> None:
    logs = {f"train_seed{s}.log": _log(s, 1.2, code=len(SCRIPT)).replace(
        "final_int8", "pre_quant_eval val_loss:1.9 val_bpb:1.10000000\nfinal_int8") for s in (1, 2, 3)}
    result = _checks(_folder(tmp_path, logs))["logs_agree"]
    assert result.status == FAIL and "before quantization" in result.summary
    honest = {n: t.replace("val_bpb:1.20000000", "val_bpb:1.10000000") for n, t in logs.items()}
    assert _checks(_folder(tmp_path / "ok", honest))["logs_agree"].status == PASS


def test_a_byte_sidecar_denominator_is_flagged(tmp_path: Path) -> None:
    script = SCRIPT + '\ndef load_bytes(pattern):\n    return pattern.replace("fineweb_val_", "fineweb_val_bytes_")\n'
    logs = {n: "val_bpb:byte_sidecar:enabled\n" + t for n, t in _logs(len(script)).items()}
    result = _checks(_folder(tmp_path, {"train_gpt.py": script, **logs}))["lut_audit"]
    assert result.status == WARN and "sidecar" in result.summary
    assert any(e.endswith("byte_sidecar:enabled") for e in result.evidence)
    assert _checks(_folder(tmp_path / "ok", _logs(len(SCRIPT))))["lut_audit"].status == PASS


def test_calibration_past_the_cap_and_an_untimed_eval_warmup_are_flagged(tmp_path: Path) -> None:
    late = {n: t + "GPTQ:collected 67 Hessians in 4.5s\n" for n, t in _logs(len(SCRIPT), train_ms=599_500).items()}
    result = _checks(_folder(tmp_path, late))["time_limits"]
    assert result.status == WARN and "until ~604.0 s, past the 600 s cap" in result.summary
    early = {n: t + "GPTQ:collected 67 Hessians in 4.5s\n" for n, t in _logs(len(SCRIPT), train_ms=588_000).items()}
    assert _checks(_folder(tmp_path / "early", early))["time_limits"].status != WARN
    warm = {n: t + "ttt_lora:compile warmup done (120.5s)\ntotal_eval_time:332.1s\n"
            for n, t in _logs(len(SCRIPT)).items()}
    result = _checks(_folder(tmp_path / "warm", warm))["time_limits"]
    assert result.status == WARN and "after a 120.5 s compile warm-up" in result.summary


def test_stats_compare_takes_an_identical_log_copy_once(tmp_path: Path) -> None:
    one = _log(1, 1.1, code=len(SCRIPT))
    folder = _folder(tmp_path, {"train.log": one, "train_seed1.log": one, "train_seed2.log": _log(2, 1.2, code=9)},
                     {"_seeds": []})
    chosen, _ = load_path(folder).seed_logs()
    assert sorted(chosen) == ["train.log", "train_seed2.log"]


def test_a_log_line_naming_the_sidecar_mode_is_not_a_read_of_it() -> None:
    from pgolf.submission.code_scan import byte_sidecar_findings

    source = ('def report(log, on):\n    log(f"val_bpb:byte_sidecar:{\'enabled\' if on else \'disabled\'}")\n'
              'def load(pattern):\n    return pattern.replace("fineweb_val_", "fineweb_val_bytes_")\n')
    assert [line for _, line, _ in byte_sidecar_findings(source)] == ["4"]
