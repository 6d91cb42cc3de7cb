"""Start-up time of the `pgolf` command, the whole process, as agents and hooks call it.

Run: .venv/bin/python benchmarks/bench_cli.py [--repeats N] [--command 'PGOLF COMMAND']

Measures the median wall time (of N >= 5 runs, after one warm-up run) of
- `pgolf --help`;
- `pgolf status --json` in a fresh workspace whose results.tsv holds 10,000 rows;
- `pgolf hook pre-tool` with a PreToolUse payload on stdin, when `pgolf.agents.hook` exists;
and prints each beside its target. The exit code is 1 when a measured figure misses its target.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pgolf.ledger import HEADER, LedgerRow
from pgolf.workspace import init_workspace

LEDGER_ROWS = 10_000
TARGETS_S = {"pgolf --help": 0.3, "pgolf status --json": 0.5, "pgolf hook pre-tool": 0.1}
HOOK_PAYLOAD = {"hook_event_name": "PreToolUse", "tool_name": "Bash",
                "tool_input": {"command": "python train_gpt.py"}, "cwd": "."}


def _pgolf() -> str:
    """The console script next to this interpreter: what a user or an agent runs."""
    script = Path(sys.executable).with_name("pgolf")
    if not script.exists():
        sys.exit(f"no pgolf console script beside {sys.executable}; run `make .venv/.installed-dev`")
    return str(script)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its package is missing
        return False


def _median_wall(argv: list[str], repeats: int, *, cwd: Path, stdin: str = "") -> tuple[float, float, int]:
    """Median wall and CPU seconds of `argv` as a fresh process; the first (warm-up) run is not counted.

    The CPU time (user + system of the child) is printed beside the wall time because on a loaded
    machine the wall time measures the other processes too.
    """
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"}
    walls, cpus, rc = [], [], 0
    for i in range(repeats + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rc = proc.returncode
        if i:
            walls.append(elapsed)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus), rc


def _workspace_with_ledger(root: Path, rows: int) -> Path:
    """A fresh workspace whose results.tsv holds `rows` varied rows (written at once, not appended)."""
    ws = init_workspace(root / "ws")
    statuses = ("keep", "discard", "crash", "skipped", "discard", "timeout", "baseline", "discard")
    lines = [HEADER]
    for i in range(rows):
        status = statuses[i % len(statuses)]
        scored = status in ("keep", "discard", "baseline")
        lines.append(LedgerRow(
            commit=f"{i:040x}", tier="local" if i % 10 else "runpod",
            val_bpb=1.3 - i * 1e-5 if scored else None, artifact_bytes=15_000_000 + i if scored else None,
            memory_gb=10.5, status=status, description=f"experiment {i}: change something, tab-free",
            run_id=f"r{i + 1:05d}", seed=1337, steps=1000, train_seconds=600.0,
            finished_at="2026-01-01T00:00:00+00:00",
        ).to_line())
    ws.results_tsv.write_text("".join(lines), encoding="utf-8")
    return ws.root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per command (at least 5)")
    parser.add_argument("--command", help="the pgolf command to time, split on spaces, e.g. to compare "
                        "another checkout: 'env PYTHONPATH=../old/src .venv/bin/python -m pgolf' "
                        "(default: the console script beside this interpreter)")
    args = parser.parse_args()
    repeats = max(5, args.repeats)
    pgolf = args.command.split() if args.command else [_pgolf()]
    results: list[tuple[str, float | None, float, int, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        root = _workspace_with_ledger(Path(tmp), LEDGER_ROWS)
        results.append(("pgolf --help", *_median_wall([*pgolf, "--help"], repeats, cwd=root), ""))
        t, cpu, rc = _median_wall([*pgolf, "status", "--json"], repeats, cwd=root)
        results.append(("pgolf status --json", t, cpu, rc, f"{LEDGER_ROWS:,} ledger rows"))
        if not _has_module("pgolf.agents.hook"):
            results.append(("pgolf hook pre-tool", None, 0.0, 0, "pgolf.agents.hook not installed yet"))
        else:
            t, cpu, rc = _median_wall([*pgolf, "hook", "pre-tool"], repeats, cwd=root,
                                      stdin=json.dumps(HOOK_PAYLOAD | {"cwd": str(root)}))
            results.append(("pgolf hook pre-tool", t, cpu, rc, f"exit {rc} on a Bash payload"))
    missed = 0
    print(f"median of {repeats} runs of the whole process; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"{'command':<22} {'wall':>8} {'cpu':>8} {'target':>8}  verdict  note")
    for name, seconds, cpu, rc, note in results:
        target = TARGETS_S[name]
        if seconds is None:
            print(f"{name:<22} {'-':>8} {'-':>8} {target:>7.3f}s  n/a      {note}")
            continue
        ok = seconds <= target and (rc == 0 or name == "pgolf hook pre-tool")
        missed += not ok
        rc_note = "" if rc == 0 or name == "pgolf hook pre-tool" else f"exit {rc}; "
        print(f"{name:<22} {seconds:>7.3f}s {cpu:>7.3f}s {target:>7.3f}s  {'ok' if ok else 'MISSED':<7}  "
              f"{rc_note}{note}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
