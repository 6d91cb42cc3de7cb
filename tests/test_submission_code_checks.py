"""The code checks on small scripts: counted code, network, dependencies, grammar, score-first TTT, wallclock."""

from __future__ import annotations

import base64
import lzma
import sys
from pathlib import Path

import pytest

from pgolf.errors import DataError
from pgolf.rules import TRACK_10MIN_16MB
from pgolf.submission.checks import FAIL, NA, PASS, UNKNOWN, WARN, run_checks
from pgolf.submission.code_scan import score_first_findings, val_leak_findings
from pgolf.submission.folder import Submission, load_path

TEMPLATE = Path(__file__).parents[1] / "src" / "pgolf" / "templates" / "train_gpt.py"
FIXTURES = Path(__file__).parent / "fixtures" / "lut_scripts"


def _checks(source: str, extra: dict[str, bytes] | None = None) -> dict[str, object]:
    files = {"train_gpt.py": source.encode(), **(extra or {})}
    sub = Submission(name="2026-05-01_Test", where="mem", files=files, sizes={k: len(v) for k, v in files.items()},
                     track="track_10min_16mb")
    return {r.name: r for r in run_checks(sub, TRACK_10MIN_16MB)}


def test_pgolf_baseline_passes_every_code_check() -> None:
    results = {r.name: r for r in run_checks(load_path(TEMPLATE), TRACK_10MIN_16MB)}
    for name in ("wrapper", "counted_code", "no_network", "dependencies", "python_grammar", "lut_audit",
                 "score_first_ttt"):
        assert results[name].status == PASS, (name, results[name].summary)
    assert results["time_limits"].status == NA


def test_counted_code_findings() -> None:
    helper = "import numpy as np\nimport helpers\nexec(open('extra.py').read())\n"
    result = _checks(helper, {"helpers.py": b"x = 1\n", "extra.py": b"y = 2\n"})["counted_code"]
    assert result.status == FAIL
    text = " ".join(result.evidence)
    assert "train_gpt.py:3: exec of a file's contents" in text and "train_gpt.py:2: imports helpers.py" in text
    pip = _checks("import subprocess\nsubprocess.run(['pip', 'install', 'x'])\n")["counted_code"]
    assert pip.status == FAIL and "installs or downloads" in pip.summary


def test_network_and_dependencies() -> None:
    source = "import requests\ntry:\n    import flash_attn\nexcept ImportError:\n    pass\n" \
             "def evaluate():\n    return requests.get('http://x')\n"
    results = _checks(source)
    assert results["no_network"].status == FAIL
    assert "train_gpt.py:7: network call requests.get() (inside an evaluation function)" in results["no_network"].evidence
    deps = results["dependencies"]
    assert deps.status == FAIL and "imports requests" in deps.summary
    assert any("flash_attn (optional)" in e for e in deps.evidence)
    declared = _checks(source, {"requirements.txt": b"requests==2.0\nflash-attn\n"})["dependencies"]
    assert declared.status == PASS


def test_python_grammar_versions() -> None:
    newer = _checks("try:\n    pass\nexcept* ValueError:\n    pass\n")["python_grammar"]  # 3.11 syntax
    assert newer.status == WARN and newer.evidence[0].startswith("train_gpt.py: Python 3.10: line 4: Exception groups")
    broken = _checks("def f(:\n    pass\n")
    assert broken["python_grammar"].status == FAIL  # the same answer whatever interpreter runs pgolf
    assert broken["lut_audit"].status == UNKNOWN


# Python 3.12 f-strings (PEP 701), which a 3.11 tokenizer refuses and a 3.12 one accepts under any feature_version
PEP701 = {
    "nested same quotes": 'names = {"a": 1}\nprint(f"{names["a"]}")\n',
    "backslash inside braces": 'rows = ["x"]\nprint(f"{"\\n".join(rows)}")\n',
    "comment inside braces": 'x = 1\nprint(f"""{x # a comment\n}""")\n',
}


@pytest.mark.parametrize("kind", sorted(PEP701))
def test_python_312_fstrings_are_told_apart_from_311(kind: str) -> None:
    result = _checks(PEP701[kind])["python_grammar"]
    assert result.status == WARN and result.summary == "needs a newer Python than 3.11"
    assert [e.split(": ", 2)[1] for e in result.evidence] == ["Python 3.10", "Python 3.11"]
    assert all("PEP 701" in e for e in result.evidence)


def test_python_311_fstrings_pass_every_grammar() -> None:
    result = _checks('x = {"a": 1}\nprint(f"{x[\'a\']!r:>{8}} {x=}")\n')["python_grammar"]
    assert result.status == PASS, result.evidence


def test_code_in_312_syntax_is_read_by_every_code_check() -> None:
    # a network call hidden behind a 3.12-only f-string on line 3 is still found, at its own line
    source = 'import socket\nd = {"k": 1}\nprint(f"{d["k"]}")\nsocket.create_connection(("h", 1))\n'
    results = _checks(source)
    assert results["no_network"].status == WARN
    assert "train_gpt.py:4: network call socket.create_connection()" in " ".join(results["no_network"].evidence)


SCORE_FIRST = '''
def eval_val_ttt(model, opt, val_tokens):
    nll_sum = 0.0
    for chunk in val_tokens:
        with no_grad():
            nll_sum += model(chunk)
        loss = model(chunk)
        loss.backward()
        opt.step()
    return nll_sum
'''


def test_score_first_ttt_order() -> None:
    assert score_first_findings(SCORE_FIRST) == []
    train_first = SCORE_FIRST.replace("        with no_grad():\n            nll_sum += model(chunk)\n", "") \
        .replace("        opt.step()\n", "        opt.step()\n        nll_sum += model(chunk)\n")
    findings = score_first_findings(train_first)
    assert findings and findings[0][0] == FAIL and "before the chunk is scored" in findings[0][2]
    assert _checks(train_first)["score_first_ttt"].status == FAIL


def test_validation_data_fed_to_calibration() -> None:
    source = "import glob\nval_tokens = load('fineweb_val_*.bin')\ncalibrate_gptq(model, val_tokens)\n"
    findings = val_leak_findings(source)
    assert findings == [("FAIL", "3", "validation data val_tokens passed to calibrate_gptq()")]


def test_wallclock_override() -> None:
    source = "import os\nMAX = float(os.environ.get('MAX_WALLCLOCK_SECONDS', 1200))\n"
    result = _checks(source)["time_limits"]
    assert result.status == FAIL and "train_gpt.py:2" in result.evidence[0]
    ms = _checks("max_wallclock_ms = 600000.0\n")["time_limits"]
    assert ms.status == UNKNOWN and not ms.evidence  # no logs; a cap held in ms and within the limit


def test_wrapped_script_is_checked_inside() -> None:
    inner = (FIXTURES / "plus_one_leading_space.py").read_text()
    wrapped = f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({base64.b85encode(lzma.compress(inner.encode())).decode()!r})))\n"  # noqa: E501
    results = _checks(wrapped)
    assert results["wrapper"].status == PASS and results["wrapper"].evidence[0].startswith("train_gpt.py: line 2")
    assert results["lut_audit"].status == FAIL and "leading_space_plus_one" in results["lut_audit"].summary
    assert _checks((FIXTURES / "obfuscated.py").read_text())["wrapper"].status == WARN


@pytest.mark.skipif(sys.version_info < (3, 11), reason="stdlib_module_names")
def test_stdlib_imports_need_no_declaration() -> None:
    assert _checks("import os, json, lzma\nimport numpy, torch\n")["dependencies"].status == PASS


def test_code_that_does_not_parse_passes_no_code_check() -> None:
    results = _checks("import requests\ndef f(:\n    requests.get('http://x')\n")
    for name in ("wrapper", "counted_code", "no_network", "dependencies", "score_first_ttt", "lut_audit"):
        assert results[name].status == UNKNOWN, (name, results[name].summary)
        assert "does not parse (line 2: " in results[name].summary
    assert results["python_grammar"].status in (WARN, FAIL)


@pytest.mark.parametrize("content", [b"Hello, this is a README.\nNothing to run.\n", b"def f(:\n    pass\n",
                                     bytes(range(256)) * 4])
def test_a_single_file_that_is_not_python_is_refused(content: bytes, tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "notes.py"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"notes\.py: not a Python script \((line \d+: )?\w"):
        run_checks(load_path(path), TRACK_10MIN_16MB)
    done = subprocess.run([sys.executable, "-m", "pgolf", "check", str(path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "notes.py: not a Python script (" in done.stderr


def test_evidence_names_the_checked_script(tmp_path: Path) -> None:
    path = tmp_path / "my_train.py"
    path.write_text("import requests\ndef evaluate():\n    return requests.get('http://x')\n"
                    "MAX = float(__import__('os').environ.get('MAX_WALLCLOCK_SECONDS', 1200))\n")
    results = {r.name: r for r in run_checks(load_path(path), TRACK_10MIN_16MB)}
    assert results["no_network"].evidence == ["my_train.py:1: imports requests",
                                              "my_train.py:3: network call requests.get() (inside an evaluation "
                                              "function)"]
    assert results["dependencies"].evidence[0].startswith("my_train.py:1: ")
    assert any(e.startswith("my_train.py:4: ") for e in results["time_limits"].evidence)
    lut = load_path(FIXTURES / "plus_one_leading_space.py")
    assert {r.name: r for r in run_checks(lut, TRACK_10MIN_16MB)}["lut_audit"].evidence[0].startswith(
        "plus_one_leading_space.py:7: make_byte_tables: ")
    assert not any("train_gpt.py" in e for r in results.values() for e in r.evidence)


def test_grammar_warning_states_its_failure_once() -> None:
    newer = _checks("try:\n    pass\nexcept* ValueError:\n    pass\n")["python_grammar"]
    assert newer.summary == "needs a newer Python than 3.10"
    assert newer.evidence == ["train_gpt.py: Python 3.10: line 4: Exception groups are only supported in "
                              "Python 3.11 and greater"]
    broken = _checks("def f(:\n    pass\n")["python_grammar"]
    assert not any(e.split(": ", 1)[1] in broken.summary for e in broken.evidence)


def test_312_statements_inside_decorated_functions_and_classes_keep_their_lines() -> None:
    source = ('import socket\n'
              'def deco(f):\n    return f\n'
              '@deco\n'
              'def show(d):\n'
              '    return f"{d["k"]}"\n'
              'class A:\n'
              '    def m(self, rows):\n'
              '        return f"{"\\n".join(rows)}"\n'
              'socket.create_connection(("h", 1))\n')
    result = _checks(source)
    assert "train_gpt.py:10: network call socket.create_connection()" in " ".join(result["no_network"].evidence)
    assert result["python_grammar"].status == WARN
