"""A workspace: a git repository holding train_gpt.py, pgolf.toml, program.md, results.tsv, .pgolf/."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from pgolf import git
from pgolf.atomic import atomic_write_text
from pgolf.budget import BudgetManager
from pgolf.compute.base import COMMAND_NAME, ENV_NAME, LOG_NAME, RESULT_NAME
from pgolf.config import CONFIG_FILENAME, PgolfConfig, load_config
from pgolf.errors import WorkspaceError
from pgolf.ledger import Ledger
from pgolf.program import template_text
from pgolf.rules import DEFAULT_RULESET, get_ruleset

TRAIN_SCRIPT = "train_gpt.py"  # the one file experiments change, relative to the workspace root
TRACKED_FILES = (TRAIN_SCRIPT, CONFIG_FILENAME, ".gitignore")


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run, `.pgolf/runs/<run_id>/`, and the name of every file pgolf keeps in it."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def log(self) -> Path:
        return self.path / LOG_NAME

    @property
    def result(self) -> Path:
        return self.path / RESULT_NAME

    @property
    def command(self) -> Path:
        return self.path / COMMAND_NAME

    @property
    def env(self) -> Path:
        return self.path / ENV_NAME

    @property
    def diff(self) -> Path:
        return self.path / "diff.patch"

    @property
    def decision(self) -> Path:
        return self.path / "decision.json"

    @property
    def preflight(self) -> Path:
        return self.path / "preflight.json"

    @property
    def promotion(self) -> Path:
        return self.path / "promotion.json"

    @property
    def plan(self) -> Path:
        return self.path / "plan.json"

    @property
    def handoff(self) -> Path:
        return self.path / "handoff.md"

    @property
    def agent_log(self) -> Path:
        return self.path / "agent.log"

    @property
    def description(self) -> Path:
        return self.path / "description.txt"

    def exists(self) -> bool:
        return self.path.is_dir()


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace; every file pgolf reads or writes is named here."""

    root: Path

    def __post_init__(self) -> None:
        # Runs execute in their own folders: every path handed to them must be absolute.
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILENAME

    @property
    def train_script(self) -> Path:
        return self.root / TRAIN_SCRIPT

    @property
    def program_md(self) -> Path:
        return self.root / "program.md"

    @property
    def results_tsv(self) -> Path:
        return self.root / "results.tsv"

    @property
    def state_dir(self) -> Path:
        return self.root / ".pgolf"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def budget_json(self) -> Path:
        return self.state_dir / "budget.json"

    @property
    def research_db(self) -> Path:
        return self.state_dir / "research.db"

    def run(self, run_id: str) -> RunFolder:
        """The folder of one run: log, result.json, diff, command, decision."""
        return RunFolder(self.runs_dir / run_id)

    def run_dir(self, run_id: str) -> Path:
        """`run(run_id).path`, for callers that only need the folder."""
        return self.run(run_id).path

    @property
    def run_lock(self) -> Path:
        """flock-ed by `pgolf run` for its whole life; holds the loop's pid."""
        return self.state_dir / "run.lock"

    @property
    def running_dir(self) -> Path:
        """One `<run_id>.json` per local run in flight (the loop's crash-recovery records)."""
        return self.state_dir / "running"

    @property
    def promotions_dir(self) -> Path:
        """One `<remote_run_id>.json` per promotion under way."""
        return self.state_dir / "inflight"

    @property
    def slots_dir(self) -> Path:
        """The slots' git worktrees, one folder per slot."""
        return self.state_dir / "slots"

    def slot(self, index: int) -> Path:
        return self.slots_dir / f"slot{index}"

    @property
    def agent_edit(self) -> Path:
        """`pgolf mcp`: the agent's edit, set aside while run_experiment runs it (beside its lock)."""
        return self.state_dir / "mcp" / "edit.json"

    def search_journal(self, sampler: str) -> Path:
        """The Optuna study of the search proposer."""
        return self.state_dir / f"search-{sampler}.journal"

    @property
    def pods_dir(self) -> Path:
        return self.state_dir / "pods"

    @property
    def workspace_id_file(self) -> Path:
        return self.state_dir / "workspace_id"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def loop_log(self) -> Path:
        """Everything `pgolf run` printed, also when its stdout was closed."""
        return self.state_dir / "loop.log"

    @property
    def research_daemon_lock(self) -> Path:
        return self.state_dir / "research-daemon.lock"

    def resolve(self, path: str | Path) -> Path:
        """A path from pgolf.toml: relative ones are relative to the workspace."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p

    def config(self) -> PgolfConfig:
        """The validated pgolf.toml."""
        return load_config(self.config_path)

    def ledger(self) -> Ledger:
        """The workspace's results.tsv."""
        return Ledger(self.results_tsv)

    def budget(self, config: PgolfConfig | None = None) -> BudgetManager:
        """The workspace's money, with limits from pgolf.toml."""
        cfg = config or self.config()
        return BudgetManager(self.budget_json, cfg.budget)


def find_workspace(start: Path | None = None) -> Workspace:
    """The workspace containing `start` (default: the current directory), searching upwards."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILENAME).is_file():
            return Workspace(folder)
    raise WorkspaceError(f"no {CONFIG_FILENAME} in {here} or above; run `pgolf init DIR` first")


def _template(name: str) -> str:
    return resources.files("pgolf.templates").joinpath(name).read_text(encoding="utf-8")


# Values substituted into templates/pgolf.toml; `pgolf demo` passes its own.
DEFAULT_TEMPLATE_VALUES: dict[str, Any] = {
    "dataset_dir": "data/datasets/fineweb10B_sp1024",
    "tokenizer_path": "data/tokenizers/fineweb_1024_bpe.model",
    "vocab_size": 1024,
    "wallclock_seconds": 600,
    "timeout_seconds": 1800,
    "local_env": "",
    "slots": 1,
    "local_extra": "",
    "loop_extra": "",
    "replicates": 4,
    "min_gain": 0.002,
    "search_space": (
        "[proposer.search_space]         # searched values are rewritten in train_gpt.py's defaults\n"
        'MATRIX_LR = { type = "float", low = 0.02, high = 0.08, log = true }\n'
        'SCALAR_LR = { type = "float", low = 0.02, high = 0.08, log = true }\n'
        'TIED_EMBED_LR = { type = "float", low = 0.02, high = 0.12, log = true }\n'
        'WARMDOWN_ITERS = { type = "int", low = 600, high = 2400, step = 100 }\n'
        'MUON_MOMENTUM = { type = "float", low = 0.9, high = 0.98 }\n'
        'QK_GAIN_INIT = { type = "float", low = 1.0, high = 2.5 }\n'
    ),
}


def render_config(ruleset: str = DEFAULT_RULESET, **values: Any) -> str:
    """The pgolf.toml text for a new workspace."""
    get_ruleset(ruleset)  # unknown names fail before anything is written
    merged = {**DEFAULT_TEMPLATE_VALUES, **values, "ruleset": ruleset}
    return Template(_template(CONFIG_FILENAME)).substitute(merged)


def init_workspace(
    root: Path, *, ruleset: str = DEFAULT_RULESET, force: bool = False,
    train_script: Path | None = None, **template_values: Any,
) -> Workspace:
    """Create a workspace in `root` (a new or existing folder) and make its first commit."""
    root = Path(root).resolve()
    ws = Workspace(root)
    if ws.config_path.exists() and not force:
        raise WorkspaceError(f"{root} is already a pgolf workspace (use --force to overwrite it)")
    config_text = render_config(ruleset, **template_values)
    try:
        root.mkdir(parents=True, exist_ok=True)
        kept_script = _place_script(ws, train_script, force=force)
        atomic_write_text(ws.config_path, config_text)
        _merge_gitignore(root / ".gitignore")
        atomic_write_text(ws.program_md, template_text())
        ws.ledger().create()  # an existing ledger is kept, even with --force: results are never lost
        ws.runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WorkspaceError(f"{root}: cannot create a workspace ({err.strerror or err})") from None
    if not git.is_repo(root) or git.git(root, "rev-parse", "--show-toplevel") != str(root):
        git.git(root, "init", "-q", "-b", "main")
    git.git(root, "add", "--", *TRACKED_FILES)
    if git.git(root, "status", "--porcelain", "--", *TRACKED_FILES):
        # Only pgolf's files: whatever else the user had staged stays staged, uncommitted.
        message = "pgolf init: adopt train_gpt.py" if kept_script else "pgolf init: baseline train_gpt.py"
        git.git(root, "commit", "-q", "-m", message, "--", *TRACKED_FILES)
    return ws


def _place_script(ws: Workspace, source: Path | None, *, force: bool) -> bool:
    """Put the training script in place; an existing one is adopted unless `force`. True when kept."""
    if ws.train_script.exists() and source is None and not force:
        return True
    source = source or Path(str(resources.files("pgolf.templates").joinpath("train_gpt.py")))
    shutil.copyfile(source, ws.train_script)
    return False


def _merge_gitignore(path: Path) -> None:
    """Add pgolf's ignore lines to a .gitignore, keeping every line the user already had."""
    ours = _template("gitignore")
    if not path.exists():
        atomic_write_text(path, ours)
        return
    existing = path.read_text(encoding="utf-8")
    have = {line.strip() for line in existing.splitlines()}
    missing = [line for line in ours.splitlines() if line.strip() and line.strip() not in have]
    if missing:
        atomic_write_text(path, existing.rstrip("\n") + "\n" + "\n".join(missing) + "\n")
