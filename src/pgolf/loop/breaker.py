"""The proposer-failure breaker: a proposer that keeps failing stops the loop with its cause.

A broken agent command (not installed, not logged in, crashing) used to turn every experiment into a
silent `skipped` row. A failure is now a value with the exit code and the last lines of the agent's
stderr; the loop shows it, writes it into the run's decision.json, does not count it as an experiment
done, and stops after `[proposer] max_failures` of them in a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

TAIL_LINES = 5  # of the agent's stderr, on screen and in decision.json


@dataclass(frozen=True)
class ProposerFailure:
    """Why a proposer produced nothing to run: its own fault, not the change's."""

    cause: str  # one line: "exited with code 127", "timed out after 1800 s"
    exit_code: int | None = None
    stderr_tail: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line: the cause and the agent's last word on stderr."""
        last = self.stderr_tail[-1] if self.stderr_tail else ""
        return f"{self.cause}: {last}" if last else self.cause

    def as_dict(self) -> dict[str, Any]:
        """Plain mapping for decision.json."""
        data = asdict(self)
        data["stderr_tail"] = list(self.stderr_tail)
        return data


class ProposerBreaker:
    """Counts proposer failures in a row; any proposal that is not a failure resets the count."""

    def __init__(self, max_failures: int) -> None:
        self.max_failures = max_failures
        self.in_a_row = 0
        self.failures = 0  # in all: proposals that ran nothing, not experiments done
        self.last: ProposerFailure | None = None
        self.tripped = ""  # the stop reason, once tripped

    def observe(self, failure: ProposerFailure | None, say: Callable[[str], None] | None = None) -> str:
        """Count one proposal's outcome; return the stop reason once the breaker trips, else "".

        A failure's exit code and stderr tail are shown through `say` (the loop's display).
        """
        if failure is None:
            self.in_a_row, self.last = 0, None
            return ""
        self.in_a_row += 1
        self.failures += 1
        self.last = failure
        if say is not None:
            code = "no exit code" if failure.exit_code is None else f"exit code {failure.exit_code}"
            say(f"  proposer failure {self.in_a_row}/{self.max_failures} ({code}); its stderr ended with:"
                if failure.stderr_tail else f"  proposer failure {self.in_a_row}/{self.max_failures} ({code}), "
                "nothing on its stderr")
            for line in failure.stderr_tail:
                say(f"    | {line}")
        if self.in_a_row < self.max_failures:
            return ""
        if self.tripped:
            return ""  # said once; slots still in flight may add failures
        times = "time" if self.in_a_row == 1 else "times"
        self.tripped = (f"the proposer failed {self.in_a_row} {times} in a row (limit [proposer] max_failures = "
                        f"{self.max_failures}); last: {failure.summary()}")
        return self.tripped
