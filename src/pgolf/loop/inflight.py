"""The loop's crash-recovery records: `.pgolf/running/<run_id>.json`, one per local run in flight.

Written before a run starts and at each phase (`proposing`, `running`, `recorded`), removed once the
run is recorded and git moved; whatever a killed pgolf left is finished by `pgolf.loop.recovery`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pgolf.atomic import atomic_write_text
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
    names = {f.name for f in fields(InFlight)}
    folder = ws.running_dir
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            found.append(InFlight(**{k: v for k, v in data.items() if k in names}))
        except (OSError, ValueError, TypeError, UnicodeDecodeError) as err:
            problems.append(f"ignored a damaged {path.name} ({err})")
            if remove_damaged:
                path.unlink(missing_ok=True)
    return found, problems
