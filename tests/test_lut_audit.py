"""The BPB byte-table audit: each deviation class, minified and wrapped code, static vs --execute."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from pgolf.data.shards import write_shard
from pgolf.scoring.luts import build_luts, load_tokenizer, token_bytes
from pgolf.submission.lut_audit import (
    BUGGY,
    CORRECT,
    OBFUSCATED,
    UNKNOWN,
    audit_script,
    audit_source,
    load_val_tokens,
)
from pgolf.submission.wrappers import unwrap

FIXTURES = Path(__file__).parent / "fixtures" / "lut_scripts"
TEMPLATE = Path(__file__).parents[1] / "src" / "pgolf" / "templates" / "train_gpt.py"

# fixture -> (status, deviation codes); each BUGGY fixture differs from canonical.py in one place.
EXPECTED = {
    "canonical.py": (CORRECT, []),
    "minified.py": (CORRECT, []),
    "wrapped_lzma_b85.py": (CORRECT, []),
    "plus_one_leading_space.py": (BUGGY, ["leading_space_plus_one"]),
    "leading_space_as_bytes.py": (BUGGY, ["leading_space_counted_as_bytes"]),
    "byte_fallback_not_one.py": (BUGGY, ["byte_fallback_not_one"]),
    "unused_not_boundary.py": (BUGGY, ["unused_not_boundary"]),
    "characters_not_bytes.py": (BUGGY, ["characters_not_utf8_bytes"]),
    "obfuscated.py": (OBFUSCATED, []),
}


@pytest.fixture(scope="module")
def sp1024(shared_data: Path) -> Path:
    return shared_data / "tokenizers" / "fineweb_1024_bpe.model"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_static_classification_of_each_fixture(name: str) -> None:
    audit = audit_script(FIXTURES / name)
    assert (audit.status, audit.deviation_codes) == EXPECTED[name], audit.reason
    if audit.status == BUGGY:
        assert all(d.examples for d in audit.deviations)  # each deviation names the pieces it saw


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_execute_agrees_with_static_on_the_real_tokenizer(name: str, sp1024: Path) -> None:
    static = audit_script(FIXTURES / name, tokenizer=sp1024)
    executed = audit_script(FIXTURES / name, tokenizer=sp1024, execute=True)
    assert executed.mode == "execute" and static.mode == "static"
    assert (executed.status, executed.deviation_codes) == (static.status, static.deviation_codes)
    assert executed.mismatched_entries == static.mismatched_entries


def test_mismatch_counts_on_sp1024_match_the_vocabulary(sp1024: Path) -> None:
    sp = load_tokenizer(sp1024)
    n = sp.vocab_size()
    lead = sum(sp.id_to_piece(i).startswith("\u2581") for i in range(n) if not sp.is_byte(i))
    # every byte-fallback piece is wrong in one, every leading-space piece in the other
    assert audit_script(FIXTURES / "byte_fallback_not_one.py", tokenizer=sp1024).mismatched_entries == 256
    assert audit_script(FIXTURES / "plus_one_leading_space.py", tokenizer=sp1024).mismatched_entries == lead
    assert audit_script(FIXTURES / "canonical.py", tokenizer=sp1024).mismatched_entries == 0


def test_inflation_over_validation_tokens(sp1024: Path, tmp_path: Path) -> None:
    sp = load_tokenizer(sp1024)
    text = "The quick brown fox jumps over the lazy dog. Caf\u00e9 \u00fcber na\u00efve r\u00e9sum\u00e9s. " * 20
    tokens = np.array([1, *sp.encode(text)], dtype=np.uint16)
    write_shard(tmp_path / "val_000.bin", tokens)
    val = load_val_tokens(str(tmp_path / "val_*.bin"))
    luts = build_luts(sp)
    canonical = int(token_bytes(val[:-1].astype(np.int64), val[1:].astype(np.int64), luts).sum())
    # independent count of the +1 bug: one extra byte per leading-space target token
    extra = int(sum(sp.id_to_piece(int(t)).startswith("\u2581") for t in val[1:]))

    audit = audit_script(FIXTURES / "plus_one_leading_space.py", tokenizer=sp1024, val_tokens=val)
    assert (audit.canonical_bytes, audit.script_bytes) == (canonical, canonical + extra)
    assert audit.inflation == pytest.approx(extra / canonical)
    assert audit_script(FIXTURES / "canonical.py", tokenizer=sp1024, val_tokens=val).inflation == 0.0
    assert set(audit.as_dict()) >= {"status", "deviations", "inflation"}


def test_the_wrapper_decodes_to_the_canonical_fixture_without_running_it() -> None:
    result = unwrap((FIXTURES / "wrapped_lzma_b85.py").read_text())
    assert result.wrapped and not result.obfuscated
    assert result.source == (FIXTURES / "canonical.py").read_text()
    assert "b85decode" in result.layers[0] and result.layers[0].startswith("line 3:")


def test_pgolf_baseline_template_is_correct(sp1024: Path) -> None:
    source = TEMPLATE.read_text()
    static = audit_source(source, tokenizer=sp1024)
    executed = audit_source(source, tokenizer=sp1024, execute=True)
    assert static.status == CORRECT, static.reason
    assert (executed.status, executed.mismatched_entries) == (CORRECT, 0), executed.reason


def test_unknown_when_no_table_builder_or_unmodelled_code() -> None:
    assert audit_source("print('hello')\n").status == UNKNOWN
    tricky = (FIXTURES / "canonical.py").read_text().replace(
        "piece = sp.id_to_piece(tid)", "piece = sp.id_to_piece(tid); open('/tmp/x')")
    audit = audit_source(tricky)
    assert audit.status == UNKNOWN and "open" in audit.reason
    assert audit_source("def f(:\n").status == UNKNOWN


def test_static_audit_never_executes_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = (FIXTURES / "canonical.py").read_text() + f"\nopen({str(marker)!r}, 'w').write('x')\n"
    source = source.replace("    n = int(sp.vocab_size())",
                            f"    open({str(marker)!r}, 'w').write('x')\n    n = int(sp.vocab_size())")
    assert audit_source(source).status == UNKNOWN
    assert not marker.exists()
    ast.parse(source)  # the script itself is valid Python: only the interpreter refused it


# Each line, put into the canonical builder, would run for hours or fill memory if handed to Python as is.
HOSTILE = {
    "tower of powers": "x = 9 ** 9 ** 9",
    "str repeat": 'x = "a" * 10 ** 10',
    "bytes repeat": 'x = b"ab" * 10 ** 9',
    "list repeat": "x = [0] * 10 ** 9",
    "squaring loop": "x = 2 ** 64\n    while True:\n        x = x * x",
    "doubling loop": 'x = "ab"\n    while True:\n        x = x + x',
    "augmented doubling": "x = [1]\n    while True:\n        x += x",
    "sum of a huge range": "x = sum(range(10 ** 15))",
    "max of a huge range": "x = max(range(10 ** 15))",
    "list of a huge range": "x = list(range(10 ** 12))",
    "zero bytes": "x = bytes(10 ** 11)",
    "printf width": 'x = "%0999999999d" % 1',
    "replace blow-up": 'x = ("a" * 10 ** 6).replace("", "b" * 100)',
    "join blow-up": 'x = "-".join(["a" * 10 ** 6] * 100)',
    "f-string blow-up": "x = f\"{'a' * 10 ** 7}{'b' * 10 ** 7}\"",
    "huge numpy table": "x = np.zeros(10 ** 10)",
    "huge arange": "x = np.arange(10 ** 10)",
    "array power": "x = np.ones(8) ** 10 ** 6",
    "left shift": "x = 1 << 10 ** 10",
    "endless recursion": "x = make_byte_tables(sp, vocab_size)",
    "deep expression": "x = " + "1 + " * 1500 + "1",
    "division by zero": "x = 1 / 0",
    "type error": 'x = "a" + 1',
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_builders_are_refused_not_run(case: str) -> None:
    source = (FIXTURES / "canonical.py").read_text().replace(
        "    n = int(sp.vocab_size())", f"    {HOSTILE[case]}\n    n = int(sp.vocab_size())")
    ast.parse(source)
    audit = audit_source(source)
    if case == "deep expression":  # refused before interpreting: no reader walks a tree that deep
        assert audit.status == UNKNOWN and "nested more than 200 levels deep" in audit.reason
        return
    assert audit.status == UNKNOWN and audit.function == "make_byte_tables", audit.reason
    assert audit.reason.startswith("make_byte_tables (line 7): ")


def test_execute_gives_the_builder_no_secrets_and_an_empty_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from pgolf.submission.lut_audit import PROBE_TABLE_SIZE, PROBE_VOCAB, run_isolated
    from pgolf.submission.probe import ProbeTokenizer

    monkeypatch.setenv("PGOLF_PROBE_SECRET", "hunter2")
    probe = FIXTURES / "probe_environment.py"
    assert audit_script(probe).status == UNKNOWN  # `os` is not modelled statically
    # in this process the fixture does see the secret, so the executed verdict below is informative
    spec = importlib.util.spec_from_file_location("probe_environment", probe)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    leaked = module.make_byte_tables(ProbeTokenizer(PROBE_VOCAB), PROBE_TABLE_SIZE)
    assert leaked[0][5] == len("the") + 1
    executed = audit_script(probe, execute=True)
    assert (executed.status, executed.deviation_codes) == (CORRECT, []), executed.reason

    proc = run_isolated(["-c", "import json, os, sys; print(json.dumps([dict(os.environ), os.getcwd(), "
                                "os.listdir('.'), sys.flags.isolated]))"], "", 30)
    env, cwd, listing, isolated = __import__("json").loads(proc.stdout)
    assert "PGOLF_PROBE_SECRET" not in env and set(env) <= {"PATH", "HOME", "TMPDIR", "LANG"}
    assert env["HOME"] == cwd and listing == [] and isolated == 1
    assert not Path(cwd).exists()  # the temporary folder is gone afterwards
