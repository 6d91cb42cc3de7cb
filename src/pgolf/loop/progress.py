"""Live progress of a training run, read from its official log lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRAIN = re.compile(r"^step:(\d+)/(\d+) train_loss:([\d.eE+-]+|nan|inf)(?: train_time:([\d.]+)ms)?"
                    r"(?: step_avg:([\d.]+)ms)?")
_VAL = re.compile(r"^step:(\d+)/(\d+) val_loss:([\d.eE+-]+|nan|inf) val_bpb:([\d.eE+-]+|nan|inf)")


@dataclass
class Progress:
    """What the log has said so far."""

    step: int = 0
    total_steps: int = 0
    train_loss: float | None = None
    val_bpb: float | None = None
    train_ms: float | None = None
    step_avg_ms: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    last_line: str = ""


class ProgressTracker:
    """Feeds log lines into a Progress; knows the tokens per step and the wallclock limit for rates."""

    def __init__(self, tokens_per_step: int | None = None, wallclock_seconds: float | None = None) -> None:
        self.tokens_per_step = tokens_per_step
        self.wallclock_seconds = wallclock_seconds
        self.progress = Progress()

    def feed(self, line: str) -> Progress:
        """Update from one log line and return the current state."""
        p = self.progress
        text = line.strip()
        if text:
            p.last_line = text
        if m := _TRAIN.match(text):
            p.step, p.total_steps = int(m[1]), int(m[2])
            p.train_loss = float(m[3])
            if m[4]:
                p.train_ms = float(m[4])
            if m[5]:
                p.step_avg_ms = float(m[5])
            self._rates()
        elif m := _VAL.match(text):
            p.step, p.total_steps = int(m[1]), int(m[2])
            p.val_bpb = float(m[4])
        return p

    def _rates(self) -> None:
        p = self.progress
        if not p.step_avg_ms or p.step_avg_ms <= 0:
            return
        if self.tokens_per_step:
            p.tokens_per_second = self.tokens_per_step / (p.step_avg_ms / 1000.0)
        by_steps = max(p.total_steps - p.step, 0) * p.step_avg_ms / 1000.0
        if self.wallclock_seconds and p.train_ms is not None:
            by_steps = min(by_steps, max(self.wallclock_seconds - p.train_ms / 1000.0, 0.0))
        p.eta_seconds = by_steps
