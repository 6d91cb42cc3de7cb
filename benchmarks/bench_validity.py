"""Validity of the keep decision: false keeps in a world with no effect, captures in a world with one.

Run: .venv/bin/python benchmarks/bench_validity.py [--sessions 200] [--experiments 30] [--rho 0]
     .venv/bin/python benchmarks/bench_validity.py --real [--sessions 20] [--experiments 30]

Two stub worlds share one scoring function (`WORLD` below, also pasted into the stub training script):
- null: val_bpb = 1.25 + σ·z with σ = 0.01, z a normal draw fixed by (session salt, seed, hyperparameters):
  the same script with the same seed scores the same, anything else draws anew; nothing the search
  changes matters.
- effect: the same, plus a bump of -0.025 bpb (2.5σ) around MATRIX_LR = 0.07 (width 0.15 in ln): the
  default 0.04 sits outside it; about one random draw in five from the default search space lands where
  at least 60% of the effect is.
`--rho` shares that part of the variance between runs of one seed (what pairing seeds can remove);
0 (the default) is the hardest case for the paired test.

A session is a noise floor (noise_seeds baseline runs) and `--experiments` proposals of the default
search space (random sampling, or `--sampler tpe`). Two rules judge them:
- old: one run of each proposal, kept when it beats the best single score by max(2σ, min_gain), σ from
  the baseline seeds (the rule of loop/decision.py + loop/noise.py before the judge);
- judge: pgolf.loop.judge with the `[loop]` defaults, replicate runs scheduled exactly as its verdicts
  say (the candidate's index among those that cleared the screening bar fixed when it clears it).
Printed per rule: sessions that kept any change in the null world (target <= 5%), sessions whose final
best captures >= 60% of the effect (target >= 85%), and runs per proposal (the cost).

`--real` runs `pgolf run` itself (the engine's scheduler) in temporary workspaces with the stub script as
the training command; fewer sessions, minutes each.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pgolf.config import LoopConfig, SearchParam
from pgolf.loop.hyperparams import format_value, read_hyperparameters
from pgolf.loop.judge import KeepPolicy, Sample, judge, pooled_sigma
from pgolf.workspace import DEFAULT_TEMPLATE_VALUES

NULL_TARGET, CAPTURE_TARGET, CAPTURE_SHARE = 0.05, 0.85, 0.60
BASELINE_SEED = 1337  # the engine's first seed (loop/noise.py); every proposal's first run uses it
OLD_SIGMA_MULTIPLIER = 2.0  # the old rule's bar: max(2σ, min_gain)

# The one scoring function of both worlds: exec'd here, pasted into the stub script for --real.
WORLD = '''
import math, random
SIGMA, BASE, EFFECT, LR_STAR, WIDTH = 0.01, 1.25, 0.025, 0.07, 0.15

def world_effect(params, world):
    """The true change of val_bpb from the hyperparameters (negative is better)."""
    if world != "effect":
        return 0.0
    x = math.log(float(params["MATRIX_LR"]) / LR_STAR)
    return -EFFECT * math.exp(-x * x / (2 * WIDTH * WIDTH))

def world_score(params, seed, world, salt, rho):
    """One run's val_bpb: base, effect, and seed noise that is fixed by (salt, seed, params)."""
    key = "|".join(f"{k}={params[k]}" for k in sorted(params))
    shared = random.Random(f"{salt}|{seed}").gauss(0.0, 1.0)
    own = random.Random(f"{salt}|{seed}|{key}").gauss(0.0, 1.0)
    noise = SIGMA * (math.sqrt(rho) * shared + math.sqrt(1.0 - rho) * own)
    return BASE + world_effect(params, world) + noise
'''
_world: dict[str, Any] = {}
exec(WORLD, _world)  # noqa: S102 - our own constant, shared with the stub script
world_effect: Callable[[dict[str, Any], str], float] = _world["world_effect"]
world_score: Callable[[dict[str, Any], int, str, str, float], float] = _world["world_score"]
EFFECT = _world["EFFECT"]


def search_space() -> dict[str, SearchParam]:
    """The default search space of a new workspace (pgolf.toml's template)."""
    text = DEFAULT_TEMPLATE_VALUES["search_space"]
    table = tomllib.loads(text)["proposer"]["search_space"]
    return {name: SearchParam(**spec) for name, spec in table.items()}


def script_defaults(space: dict[str, SearchParam]) -> dict[str, Any]:
    """The searched hyperparameters' defaults in the template train_gpt.py."""
    script = resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")
    block = {p.env: p for p in read_hyperparameters(script).values()}
    return {name: block[name].default for name in space}


class RandomProposer:
    """Independent draws from the space, as Optuna's RandomSampler draws them, rounded as the script stores them."""

    def __init__(self, space: dict[str, SearchParam], seed: int) -> None:
        self.space, self.rng = space, random.Random(seed)

    def ask(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, p in self.space.items():
            lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
            if p.type == "int":
                step = int(p.step or 1)
                out[name] = int(lo) + step * self.rng.randint(0, int((hi - lo) // step))
            elif p.log:
                out[name] = float(format_value("float", math.exp(self.rng.uniform(math.log(lo), math.log(hi)))))
            else:
                out[name] = float(format_value("float", self.rng.uniform(lo, hi)))
        return out

    def tell(self, value: float) -> None:
        pass


class TpeProposer:
    """Optuna TPE in memory, with the search proposer's settings."""

    def __init__(self, space: dict[str, SearchParam], seed: int) -> None:
        import logging

        import optuna

        from pgolf.loop.proposers.search import STARTUP_TRIALS, _distribution

        optuna.logging.set_verbosity(logging.WARNING)
        self.dists = {name: _distribution(name, p) for name, p in space.items()}
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.trial: Any = None

    def ask(self) -> dict[str, Any]:
        self.trial = self.study.ask(self.dists)
        return {k: float(format_value("float", v)) if isinstance(v, float) else v
                for k, v in self.trial.params.items()}

    def tell(self, value: float) -> None:
        self.study.tell(self.trial, value)


@dataclass
class Outcome:
    """One session: how many changes it kept, the true gain of its final best, what it cost."""

    keeps: int
    true_gain: float
    runs: int
    proposals: int


class World:
    """One session's stub world: scores runs and counts them."""

    def __init__(self, name: str, salt: str, rho: float) -> None:
        self.name, self.salt, self.rho = name, salt, rho
        self.runs = 0
        self.groups: dict[str, list[float]] = {}  # one group of repeated runs per script

    def run(self, params: dict[str, Any], seed: int) -> Sample:
        self.runs += 1
        value = world_score(params, seed, self.name, self.salt, self.rho)
        self.groups.setdefault(_key(params), []).append(value)
        return Sample(seed, value)

    def gain(self, base: dict[str, Any], best: dict[str, Any]) -> float:
        return world_effect(base, self.name) - world_effect(best, self.name)


def _key(params: dict[str, Any]) -> str:
    return "|".join(f"{k}={params[k]}" for k in sorted(params))


def session_old(world: World, proposer: Any, base: dict[str, Any], experiments: int, loop: LoopConfig) -> Outcome:
    """The single-run rule: keep when the one run beats the best single score by max(2σ, min_gain)."""
    scores = [world.run(base, BASELINE_SEED + i).val_bpb for i in range(loop.noise_seeds)]
    threshold = max(OLD_SIGMA_MULTIPLIER * statistics.stdev(scores), loop.min_gain)
    best, best_params, keeps = statistics.fmean(scores), base, 0
    for _ in range(experiments):
        params = proposer.ask()
        score = world.run(params, BASELINE_SEED).val_bpb
        proposer.tell(score)
        if best - score > threshold:
            best, best_params, keeps = score, params, keeps + 1
    return Outcome(keeps, world.gain(base, best_params), world.runs, experiments)


def session_judge(world: World, proposer: Any, base: dict[str, Any], experiments: int,
                  policy: KeepPolicy, noise_seeds: int) -> Outcome:
    """The judge, with replicate runs scheduled as its verdicts name them."""
    inc_params = base
    incumbent = [world.run(base, BASELINE_SEED + i) for i in range(noise_seeds)]
    screened, keeps = 0, 0
    for _ in range(experiments):
        params = proposer.ask()
        if _key(params) == _key(inc_params):
            continue  # the loop skips a proposal that changes nothing
        candidate = [world.run(params, BASELINE_SEED)]
        index: int | None = None
        while True:
            verdict = judge(candidate, incumbent, pooled_sigma(world.groups.values()), policy=policy,
                            candidates_tested=screened if index is None else index, simpler=False)
            if verdict.action != "replicate":
                break
            if index is None and verdict.candidate_seeds:
                index, screened = screened, screened + 1  # it cleared the screening bar
            candidate += [world.run(params, s) for s in verdict.candidate_seeds]
            incumbent += [world.run(inc_params, s) for s in verdict.incumbent_seeds]
        proposer.tell(verdict.candidate_mean)
        if verdict.action == "keep":
            inc_params, incumbent, keeps = params, candidate, keeps + 1
    return Outcome(keeps, world.gain(base, inc_params), world.runs, experiments)


@dataclass
class Rates:
    """Null-world false keeps and effect-world captures of one rule over many sessions."""

    null_any: float
    null_keeps: float
    capture: float
    mean_gain: float
    runs_per_proposal_null: float
    runs_per_proposal_effect: float
    sessions: int


def measure(rule: str, sessions: int, experiments: int, rho: float, sampler: str, loop: LoopConfig,
            policy: KeepPolicy, salt: str = "") -> Rates:
    """Run `sessions` sessions of each world under `rule` (old | judge)."""
    space = search_space()
    base = script_defaults(space)
    results: dict[str, list[Outcome]] = {"null": [], "effect": []}
    for name in results:
        for i in range(sessions):
            world = World(name, f"{salt}{name}-{i}", rho)
            proposer = (TpeProposer if sampler == "tpe" else RandomProposer)(space, seed=i)
            if rule == "old":
                out = session_old(world, proposer, base, experiments, loop)
            else:
                out = session_judge(world, proposer, base, experiments, policy, loop.noise_seeds)
            results[name].append(out)
    return _rates(results["null"], results["effect"], sessions)


def _rates(null: list[Outcome], effect: list[Outcome], sessions: int) -> Rates:
    return Rates(
        null_any=sum(o.keeps > 0 for o in null) / len(null),
        null_keeps=statistics.fmean(o.keeps for o in null),
        capture=sum(o.true_gain >= CAPTURE_SHARE * EFFECT for o in effect) / len(effect),
        mean_gain=statistics.fmean(o.true_gain for o in effect),
        runs_per_proposal_null=statistics.fmean(o.runs / o.proposals for o in null),
        runs_per_proposal_effect=statistics.fmean(o.runs / o.proposals for o in effect),
        sessions=sessions,
    )


def _interval(share: float, n: int) -> str:
    """A 95% Wilson interval for a share of n sessions."""
    z = 1.96
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"[{max(0.0, centre - half):.1%}, {min(1.0, centre + half):.1%}]"


def report(rows: dict[str, Rates], experiments: int, mode: str, judged: str = "judge") -> bool:
    """Print the table; True when the row `judged` meets both targets."""
    print(f"{mode}: {experiments} proposals per session")
    print(f"{'rule':<12}{'sessions':>9}{'null: any keep':>16}{'95% CI':>18}{'keeps/session':>15}"
          f"{'effect: >=60%':>15}{'95% CI':>18}{'mean gain':>11}{'runs/proposal':>15}")
    for rule, r in rows.items():
        print(f"{rule:<12}{r.sessions:>9}{r.null_any:>16.1%}{_interval(r.null_any, r.sessions):>18}{r.null_keeps:>15.2f}"
              f"{r.capture:>15.1%}{_interval(r.capture, r.sessions):>18}{r.mean_gain:>11.4f}"
              f"{r.runs_per_proposal_null:>7.2f}/{r.runs_per_proposal_effect:<7.2f}")
    new = rows[judged]
    ok = new.null_any <= NULL_TARGET and new.capture >= CAPTURE_TARGET
    print(f"targets ({judged}): null any keep <= {NULL_TARGET:.0%}: {new.null_any:.1%}; "
          f"capture >= {CAPTURE_TARGET:.0%}: {new.capture:.1%} -> {'PASS' if ok else 'FAIL'}")
    return ok


# -- --real: `pgolf run` in temporary workspaces ---------------------------------------------------

STUB_HEAD = '''"""Stub training script of bench_validity: val_bpb from the hyperparameters and the seed, no training."""
import json
import os
'''
STUB_TAIL = '''
args = Hyperparameters()
params = {name: getattr(args, name.lower()) for name in SEARCHED}
seed = int(os.environ.get("SEED", 1337))
bpb = world_score(params, seed, os.environ["STUB_WORLD"], os.environ["STUB_SALT"], float(os.environ["STUB_RHO"]))
print("step:10/10 train_loss:2.0000 train_time:10ms step_avg:1.00ms")
print(f"step:10/10 val_loss:{bpb * 1.7:.6f} val_bpb:{bpb:.6f} train_time:10ms step_avg:1.00ms")
print(f"final_int8_zlib_roundtrip_exact val_loss:{bpb * 1.7:.8f} val_bpb:{bpb:.8f}")
with open(os.environ["PGOLF_RESULT_JSON"], "w", encoding="utf-8") as fh:
    json.dump({"status": "ok", "reason": "", "val_bpb": bpb, "val_loss": bpb * 1.7, "artifact_bytes": 1000,
               "model_bytes": 500, "code_bytes": 500, "steps": 10, "train_ms": 10, "seed": seed,
               "hyperparameters": params}, fh)
'''


def stub_script() -> str:
    """A training script whose Hyperparameters block is the searched part of the template's, with its defaults."""
    space = search_space()
    defaults = script_defaults(space)
    kinds = {name: "int" if p.type == "int" else "float" for name, p in space.items()}
    block = "".join(f'    {name.lower()} = {kinds[name]}(os.environ.get("{name}", {defaults[name]!r}))\n'
                    for name in space)
    return (STUB_HEAD + WORLD + f"\nSEARCHED = {list(space)!r}\n\n\nclass Hyperparameters:\n" + block
            + STUB_TAIL)


def _real_session(root: Path, world: str, salt: str, rho: float, experiments: int, loop: LoopConfig) -> Outcome:
    """One `pgolf run -n experiments` in a fresh workspace; the outcome from its ledger and pgolf/best."""
    import subprocess

    from pgolf.workspace import init_workspace

    script = root / "stub_train.py"
    script.write_text(stub_script(), encoding="utf-8")
    env = f'STUB_WORLD = "{world}", STUB_SALT = "{salt}", STUB_RHO = "{rho}"'
    ws = init_workspace(root / "ws", train_script=script, local_env=env, wallclock_seconds=60, timeout_seconds=60)
    ours = {k: v for k, v in loop.model_dump().items() if k in KeepPolicy.__dataclass_fields__ or k == "noise_seeds"}
    lines = [line for line in ws.config_path.read_text(encoding="utf-8").splitlines()
             if line.split("=")[0].strip() not in ours]  # the template's own values of these keys
    at = lines.index("[loop]") + 1
    lines[at:at] = [f"{k} = {json.dumps(v)}" for k, v in ours.items()]
    text = "\n".join(lines) + "\n"
    text = text.replace('command = "python train_gpt.py"', f'command = "{sys.executable} train_gpt.py"')
    text = text.replace('kind = "search"', f'kind = "search"\nsearch_sampler = "random"\nseed = {zlib.crc32(salt.encode())}')
    ws.config_path.write_text(text, encoding="utf-8")
    subprocess.run(["git", "commit", "-qam", "bench_validity settings"], cwd=ws.root, check=False)
    pgolf = Path(sys.executable).with_name("pgolf")
    done = subprocess.run([str(pgolf), "run", "--experiments", str(experiments), "--json"], cwd=ws.root,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"pgolf run failed in {ws.root}: {(done.stderr or done.stdout).strip()[-400:]}")
    rows = ws.ledger().rows()
    best = subprocess.run(["git", "show", "pgolf/best:train_gpt.py"], cwd=ws.root, capture_output=True, text=True,
                          check=True).stdout
    params = {p.env: p.default for p in read_hyperparameters(best).values()}
    base = script_defaults(search_space())
    runs = sum(1 for r in rows if r.val_bpb is not None)
    keeps = len({r.commit for r in rows if r.status == "keep"})
    return Outcome(keeps, world_effect(base, world) - world_effect(params, world), runs, experiments)


def run_real(sessions: int, experiments: int, rho: float, jobs: int, loop: LoopConfig, policy: KeepPolicy,
             offset: int = 0) -> int:
    """`pgolf run` sessions of both worlds, `jobs` at a time; the table beside the simulation's."""
    import tempfile
    import time
    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    results: dict[str, list[Outcome]] = {"null": [], "effect": []}
    with tempfile.TemporaryDirectory(prefix="pgolf-validity-") as tmp, ThreadPoolExecutor(jobs) as pool:
        futures = {}
        for name in results:
            for i in range(offset, offset + sessions):
                root = Path(tmp) / f"{name}-{i}"
                root.mkdir()
                futures[pool.submit(_real_session, root, name, f"real-{name}-{i}", rho, experiments, loop)] = name
        for future, name in futures.items():
            results[name].append(future.result())
            print(f"  {name} session {len(results[name])}/{sessions}: {results[name][-1]}", flush=True)
    real = _rates(results["null"], results["effect"], sessions)
    print(f"--real: {time.perf_counter() - start:.0f} s")
    sim = {rule: measure(rule, 1000, experiments, rho, "random", loop, policy) for rule in ("old", "judge")}
    rows = {"old (sim)": sim["old"], "judge (sim)": sim["judge"], "pgolf run": real}
    return 0 if report(rows, experiments, "--real: `pgolf run` of this checkout beside the simulation",
                       judged="pgolf run") else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=None, help="sessions per world (default 400, --real 20)")
    parser.add_argument("--experiments", type=int, default=30, help="proposals per session")
    parser.add_argument("--rho", type=float, default=0.0, help="share of the noise common to runs of one seed")
    parser.add_argument("--sampler", choices=("random", "tpe"), default="random")
    parser.add_argument("--real", action="store_true", help="run `pgolf run` in temporary workspaces")
    parser.add_argument("--jobs", type=int, default=2, help="--real: sessions at once")
    parser.add_argument("--offset", type=int, default=0,
                        help="--real: number sessions from here (new sessions to add to an earlier measurement)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a [loop] key of the judge (tuning), e.g. --set screen_sigmas=1.2")
    args = parser.parse_args(argv)
    if not 0 <= args.rho < 1:
        parser.error("--rho must lie in [0, 1)")
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = float(value) if "." in value else int(value)
    loop = LoopConfig(**overrides)
    policy = KeepPolicy.from_config(loop)
    if args.real:
        return run_real(args.sessions or 20, args.experiments, args.rho, args.jobs, loop, policy, args.offset)
    sessions = args.sessions or 1000
    rows = {
        "old": measure("old", sessions, args.experiments, args.rho, args.sampler, loop, policy),
        "judge": measure("judge", sessions, args.experiments, args.rho, args.sampler, loop, policy),
    }
    return 0 if report(rows, args.experiments, f"simulation ({args.sampler} sampler, rho {args.rho})") else 1


if __name__ == "__main__":
    sys.exit(main())
