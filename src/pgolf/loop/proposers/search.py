"""The built-in offline proposer: Optuna TPE over pgolf.toml's search space.

Each trial's values are written into the default literals of train_gpt.py's hyperparameter block, so
every experiment is a real diff. The study lives in `.pgolf/search-<sampler>.journal` and resumes.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

from pgolf.config import PgolfConfig, SearchParam
from pgolf.errors import ConfigError
from pgolf.loop.hyperparams import find, format_value, read_hyperparameters, set_defaults
from pgolf.loop.proposers.base import Proposal, ProposalContext
from pgolf.status import TELLS_A_VALUE
from pgolf.workspace import Workspace

# Random trials before TPE models the space; the baseline is told to the study as the first trial.
STARTUP_TRIALS = 4


def _distribution(name: str, p: SearchParam) -> Any:
    import optuna.distributions as d

    if p.type == "categorical":
        if not p.choices:
            raise ConfigError(f"search space {name}: categorical needs choices")
        return d.CategoricalDistribution(p.choices)
    if p.low is None or p.high is None or p.low >= p.high:
        raise ConfigError(f"search space {name}: needs low < high")
    if p.type == "int":
        return d.IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
    return d.FloatDistribution(p.low, p.high, log=p.log, step=p.step)


def validate_space(space: dict[str, SearchParam], script: str) -> dict[str, Any]:
    """Optuna distributions for the space; every name must be in the script's hyperparameter block."""
    if not space:
        raise ConfigError("the search proposer needs [proposer.search_space] in pgolf.toml")
    params = read_hyperparameters(script)
    for name in space:
        if find(params, name) is None:
            raise ConfigError(f"search space names {name}, which train_gpt.py's Hyperparameters "
                              "block does not have")
    return {name: _distribution(name, p) for name, p in space.items()}


def _same(kind: str, a: Any, b: Any) -> bool:
    return format_value(kind, a) == format_value(kind, b)


class SearchProposer:
    """Optuna's TPE sampler (or random sampling, for comparison) over the configured space."""

    kind = "search"

    def __init__(self, ws: Workspace, config: PgolfConfig, sampler: str | None = None) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(logging.WARNING)
        self.ws = ws
        self._lock = threading.Lock()
        self.sampler_name = sampler or config.proposer.search_sampler
        self.distributions = validate_space(config.proposer.search_space, ws.train_script.read_text())
        ws.state_dir.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(ws.search_journal(self.sampler_name))))
        study_name = f"pgolf-{self.sampler_name}"
        # A resumed study gets a fresh seed offset, so it never replays the random draws it already made.
        done = 0
        if study_name in optuna.study.get_all_study_names(storage):
            done = len(optuna.load_study(study_name=study_name, storage=storage).trials)
        seed = config.proposer.seed + done
        if self.sampler_name == "random":
            chosen: Any = optuna.samplers.RandomSampler(seed=seed)
        else:
            # constant_liar: trials still running (other slots) count as bad values, so parallel asks differ.
            with warnings.catch_warnings():  # multivariate and constant_liar are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                chosen = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True,
                                                    constant_liar=True)
        self.study = optuna.create_study(study_name=study_name, storage=storage, sampler=chosen,
                                         direction="minimize", load_if_exists=True)
        # The workspace lock makes this the only loop: a trial still running was left by a killed one.
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)

    def _tell_baseline(self, ctx: ProposalContext, current: dict[str, Any]) -> None:
        """Give the study the unchanged script's score as its first point, when it lies in the space."""
        import optuna

        if self.study.trials or ctx.best_bpb is None:
            return
        try:
            trial = optuna.trial.create_trial(params=current, distributions=self.distributions,
                                              value=ctx.best_bpb)
        except ValueError:
            return  # the script's defaults lie outside the declared space
        self.study.add_trial(trial)

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Ask the study for values and write them into the hyperparameter block."""
        script = ctx.script.read_text(encoding="utf-8")
        block = read_hyperparameters(script)
        params = {name: find(block, name) for name in self.distributions}
        current = {name: p.default for name, p in params.items() if p is not None}
        with self._lock:  # slots ask from their own threads; the study's journal is one file
            self._tell_baseline(ctx, current)
            trial = self.study.ask(self.distributions)
        changes = {name: value for name, value in trial.params.items()
                   if not _same(params[name].type, params[name].default, value)}  # type: ignore[union-attr]
        state = {"trial": trial.number, "params": trial.params}
        if not changes:
            return Proposal("search: the sampled values equal the current ones", changed=False, state=state)
        ctx.script.write_text(set_defaults(script, changes), encoding="utf-8")
        parts = [f"{name} {format_value(params[name].type, params[name].default)}->"  # type: ignore[union-attr]
                 f"{format_value(params[name].type, value)}" for name, value in changes.items()]  # type: ignore[union-attr]
        return Proposal(f"{self.sampler_name}: " + ", ".join(parts), state=state)

    def observe(self, state: dict[str, Any], status: str, val_bpb: float | None) -> None:
        """Tell the study the trial's score; failed runs are failed trials."""
        import optuna

        number = state.get("trial")
        if number is None:
            return
        with self._lock:
            trials = self.study.get_trials(deepcopy=False)
            trial = trials[number] if number < len(trials) else None
            if trial is None or trial.state != optuna.trial.TrialState.RUNNING:
                return  # already told (e.g. recovered twice)
            if status in TELLS_A_VALUE and val_bpb is not None:
                self.study.tell(number, val_bpb)
            else:
                self.study.tell(number, state=optuna.trial.TrialState.FAIL)
