"""Benchmark `pgolf research fetch` with no network: how long until it says so.

Run: .venv/bin/python benchmarks/bench_research_offline.py [--repeats N]

A fresh workspace with the default `[research]` sources (keys set, so all seven run) is fetched in a new
network namespace that has no interface at all (`unshare -rn`: name resolution fails at once, as on a
machine that is offline). Where `unshare` is not allowed, every source is pointed at a 127.0.0.1 port with
nothing listening instead (connection refused), which the fetcher treats the same way. Prints the median
wall time of the whole command and the slowest source's own time, next to the reference (the fetcher
before connect failures stopped being retried: 4 tries a source with 2 + 4 + 8 s of backoff, 16.7 s
reported, 17.8 s measured here) and the target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_S = 16.7
TARGET_SOURCE_S = 0.5  # the slowest source's own time: no backoff, no retries
TARGET_WALL_S = 3.0  # the whole command, CLI start-up included
KEYS = {"GITHUB_TOKEN": "ghp-bench", "TAVILY_API_KEY": "tvly-bench"}


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rn", "true"], capture_output=True).returncode == 0


def _point_at_closed_port(root: Path) -> None:
    """Every source's base URL and feed at 127.0.0.1:9, where nothing listens."""
    closed = "http://127.0.0.1:9"
    tables = {"arxiv": f"{closed}/api/query", "openreview": closed, "semantic_scholar": closed,
              "github_prs": closed, "github_code": closed, "tavily": closed}
    text = (root / "pgolf.toml").read_text()
    text += "".join(f'\n[research.sources.{name}]\nbase_url = "{url}"\n' for name, url in tables.items())
    text += f'\n[research.sources.feeds]\nurls = ["{closed}/a.xml", "{closed}/b.xml", "{closed}/c.xml"]\n'
    (root / "pgolf.toml").write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pgolf = [sys.executable, "-m", "pgolf"]
    isolated = _can_unshare()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([*pgolf, "init", str(root)], check=True, capture_output=True)
        if not isolated:
            _point_at_closed_port(root)
        command = (["unshare", "-rn"] if isolated else []) + [*pgolf, "research", "fetch", "--json"]
        walls, slowest, requests = [], [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, env={**os.environ, **KEYS})
            walls.append(time.perf_counter() - started)
            report = json.loads(done.stdout)
            slowest.append(max(s["seconds"] for s in report["sources"]))
            requests.append(sum(s["requests"] for s in report["sources"]))
            if done.returncode != 2 or any(s["status"] != "failed" for s in report["sources"]):
                print(f"unexpected outcome (exit {done.returncode}): {report['summary']}", file=sys.stderr)
                return 1
    how = "no network namespace (unshare -rn)" if isolated else "a closed port on 127.0.0.1"
    wall, source = statistics.median(walls), statistics.median(slowest)
    print(f"offline via {how}, {args.repeats} runs, 7 sources, {statistics.median(requests):g} requests per run")
    print(f"{'':<28}{'pgolf':>8}{'reference':>11}{'target':>9}")
    print(f"{'whole command (median, s)':<28}{wall:>8.2f}{REFERENCE_S:>11.1f}{TARGET_WALL_S:>9.1f}")
    print(f"{'slowest source (median, s)':<28}{source:>8.2f}{'':>11}{TARGET_SOURCE_S:>9.1f}")
    ok = wall <= TARGET_WALL_S and source <= TARGET_SOURCE_S
    print("within target" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
