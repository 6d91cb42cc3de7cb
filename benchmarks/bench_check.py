"""Benchmark `pgolf check` on real records folders (a scratch copy of the challenge's repository).

Run: .venv/bin/python benchmarks/bench_check.py --records /tmp/pg/records [--limit N] [--repeats R]

For every folder under RECORDS/<track>/ it times the whole command (`pgolf check DIR --json`, a fresh
process: start-up included) and, in this process, pgolf's own part (loading the folder and running
every check), and prints the median and the maximum beside the target. The records are third-party code
read as text, never executed; keep the copy outside this repository.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MEDIAN_S = 2.0  # the whole command, per folder
REFERENCE = {"median_s": 4.0, "max_s": 11.0}  # pgolf before the checker's rework, same folders


def _folders(records: Path, limit: int | None) -> list[Path]:
    found = sorted(p for p in records.glob("*/*") if p.is_dir())
    return found[:limit] if limit else found


def _in_process(folder: Path) -> float:
    from pgolf.rules import get_ruleset
    from pgolf.submission.checks import run_checks
    from pgolf.submission.folder import load_path

    start = time.perf_counter()
    sub = load_path(folder)
    run_checks(sub, get_ruleset(sub.track or "track_10min_16mb"))
    return time.perf_counter() - start


def _command(folder: Path) -> float:
    pgolf = Path(sys.executable).with_name("pgolf")
    start = time.perf_counter()
    subprocess.run([str(pgolf), "check", str(folder), "--json"], capture_output=True, check=False)
    return time.perf_counter() - start


def _line(name: str, values: list[float], target: str) -> str:
    return (f"{name:34s} median {statistics.median(values):6.2f} s   max {max(values):6.2f} s   "
            f"(n={len(values)}) {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, required=True, help="the records/ folder of a scratch copy")
    parser.add_argument("--limit", type=int, default=None, help="only the first N folders")
    parser.add_argument("--repeats", type=int, default=1, help="command runs per folder (the median is kept)")
    args = parser.parse_args()
    folders = _folders(args.records, args.limit)
    if not folders:
        sys.exit(f"{args.records}: no records folders (expected RECORDS/<track>/<folder>/)")
    own = [_in_process(f) for f in folders]
    whole = [statistics.median(_command(f) for _ in range(args.repeats)) for f in folders]
    slowest = folders[max(range(len(whole)), key=whole.__getitem__)].name
    print(_line("pgolf's own part (in process)", own, ""))
    print(_line("pgolf check DIR --json (command)", whole,
                f"target median <= {TARGET_MEDIAN_S:.1f} s; before: median {REFERENCE['median_s']:.0f} s, "
                f"max {REFERENCE['max_s']:.0f} s"))
    print(f"slowest folder: {slowest}")
    print("PASS" if statistics.median(whole) <= TARGET_MEDIAN_S else "MISS", "median target")


if __name__ == "__main__":
    main()
