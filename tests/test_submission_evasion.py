"""An exec/eval never hides a script from the checks: a FAIL or WARN stays a FAIL or WARN (issue 14 item 1).

Each case is a script of our own, checked through the CLI (`pgolf check FILE --json`, a real process), once
as written and once with an evasion added; the evasion may only make the verdict worse.
"""

from __future__ import annotations

import base64
import json
import lzma
import subprocess
import sys
from pathlib import Path

import pytest

from pgolf.rules import TRACK_10MIN_16MB
from pgolf.submission.checks import FAIL, PASS, UNKNOWN, WARN, run_checks
from pgolf.submission.folder import Submission
from pgolf.submission.lut_audit import BUGGY, audit_source

FIXTURES = Path(__file__).parent / "fixtures" / "lut_scripts"
SEVERITY = {"N/A": 0, PASS: 1, UNKNOWN: 2, WARN: 3, FAIL: 4}
NETWORK = 'import socket\nsocket.create_connection(("example.org", 80))\n'


def _wrap(code: str) -> str:
    payload = base64.b85encode(lzma.compress(code.encode())).decode()
    return f"import lzma as L,base64 as B\nexec(L.decompress(B.b85decode({payload!r})))\n"


EVASIONS = {
    "eval of a constant at the end": lambda code: code + 'eval("0")\n',
    "eval inside a function": lambda code: code + 'def f():\n    return eval("0")\n',
    "exec of a variable": lambda code: code + "import sys\nsrc = sys.argv[-1]\nexec(src)\n",
    "inside a real wrapper": lambda code: _wrap(code + 'eval("0")\n'),
    "exec of a constant holding the code": lambda code: f"exec({code!r})\n",
}


def _report(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pgolf", "check", str(path), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert proc.returncode == (1 if report["verdict"] == FAIL else 0)
    return report


def _cli(path: Path) -> dict[str, str]:
    return {c["name"]: c["status"] for c in _report(path)["checks"]}


@pytest.mark.parametrize("evasion", sorted(EVASIONS))
def test_network_code_stays_flagged_whatever_exec_is_added(evasion: str, tmp_path: Path) -> None:
    plain, evaded = tmp_path / "plain.py", tmp_path / "evaded.py"
    plain.write_text(NETWORK)
    evaded.write_text(EVASIONS[evasion](NETWORK))
    before, after = _cli(plain), _cli(evaded)
    assert before["no_network"] == WARN
    assert SEVERITY[after["no_network"]] >= SEVERITY[WARN], (evasion, after)
    assert SEVERITY[max(after.values(), key=SEVERITY.get)] >= SEVERITY[WARN]


def test_an_exec_of_what_is_not_known_statically_is_itself_a_warning() -> None:
    files = {"train_gpt.py": b"import sys\ncode = sys.stdin.read()\nexec(code)\n"}
    sub = Submission("x.py", "mem", files, {"train_gpt.py": 40}, kind="folder")
    wrapper = next(r for r in run_checks(sub, TRACK_10MIN_16MB) if r.name == "wrapper")
    assert wrapper.status == WARN and "not known statically" in wrapper.summary
    assert wrapper.evidence == ["train_gpt.py:3: exec(code) runs code that is not known statically "
                                "(Call at line 2)"] or wrapper.evidence[0].startswith("train_gpt.py:3: exec(code)")


@pytest.mark.parametrize("evasion", sorted(EVASIONS))
def test_a_buggy_byte_table_stays_buggy(evasion: str) -> None:
    buggy = (FIXTURES / "plus_one_leading_space.py").read_text()
    assert audit_source(buggy).status == BUGGY
    assert audit_source(EVASIONS[evasion](buggy)).status == BUGGY


DEEP = {
    "attribute chain 2,500 deep": "x = a" + ".b" * 2500 + "()\n",
    "exec of 900 nested lambdas": "exec(" + "lambda: " * 900 + "0)\n",
    "import then a deep chain": NETWORK + "y = a" + ".b" * 2500 + "\n",
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_nesting_is_unknown_with_the_reason_never_a_crash(case: str, tmp_path: Path) -> None:
    script = tmp_path / "deep.py"
    script.write_text(DEEP[case])
    checks = {c["name"]: c for c in _report(script)["checks"]}
    assert checks["no_network"]["status"] == UNKNOWN and checks["wrapper"]["status"] == UNKNOWN
    assert "nested more than 200 levels deep" in checks["no_network"]["summary"]
    audit = subprocess.run([sys.executable, "-m", "pgolf", "audit", "lut", str(script), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert json.loads(audit.stdout)["status"] == UNKNOWN and "nested" in json.loads(audit.stdout)["reason"]
