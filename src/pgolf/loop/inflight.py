"""The loop's crash-recovery records: `.pgolf/running/<run_id>.json`, one per local run in flight.

Written before a run starts and at each phase (`proposing`, `running`, `recorded`), removed once the
run is recorded and git moved; whatever a killed pgolf left is finished by `pgolf.loop.recovery`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pgolf import statefile
from pgolf.atomic import atomic_write_text
from pgolf.errors import DataError
from pgolf.workspace import Workspace


@dataclass
class InFlight:
    """One local run in flight."""

    run_id: str
    kind: str  # baseline | experiment | replicate
    commit: str
    parent_commit: str
    parent_run: str
    seed: int
    description: str
    proposer: str = ""
    source_item: str = ""
    proposal_state: dict[str, Any] = field(default_factory=dict)
    phase: str = "running"  # proposing | running | recorded
    status: str = ""
    pgolf_pid: int = 0
    child_pid: int = 0
    slot: int = 0
    candidate: str = ""  # a replicate run: the run id of the candidate's first run

    def save(self, ws: Workspace) -> None:
        ws.running_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(ws.running_dir / f"{self.run_id}.json", json.dumps(asdict(self), indent=1) + "\n")

    def clear(self, ws: Workspace) -> None:
        (ws.running_dir / f"{self.run_id}.json").unlink(missing_ok=True)


def load_all(ws: Workspace, *, remove_damaged: bool = True) -> tuple[list[InFlight], list[str]]:
    """Every run left in flight, oldest run id first, and a line for each damaged file (removed, unless a
    reader such as `pgolf status` only looks)."""
    found, problems = [], []
    folder = ws.running_dir
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:  # the state-file guards: UTF-8, nesting, NaN, each field's type
            data = statefile.load_json(path, missing=None, want=dict)
            if data is not None:  # None: removed since the listing
                found.append(statefile.from_record(InFlight, data, path.name, allow_unknown=True))
        except DataError as err:
            if path.is_dir():
                raise  # a folder is not ours to delete: one line, the user decides
            problems.append(f"ignored a damaged {path.name} ({str(err).removeprefix(f'{path}: ')})")
            if remove_damaged:
                path.unlink(missing_ok=True)
    return found, problems
