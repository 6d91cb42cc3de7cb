"""The program.md sections the loop refreshes after every run: best result, history, tier correlation.

The tables themselves are research.inject's renderers (one implementation for every writer of
program.md); the loop adds the noise floor, which only it knows.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgolf.ledger import LedgerRow
from pgolf.loop.noise import NoiseFloor
from pgolf.research.inject import render_best, render_experiments


def noise_line(noise: NoiseFloor | None) -> str:
    """One line saying what gain a change must beat, or that the floor is not measured yet."""
    if noise is None:
        return "- noise floor (local): not measured yet"
    return (f"- noise floor (local): {noise.runs} baseline seeds, mean {noise.mean:.4f}, sigma "
            f"{noise.sigma:.4f}; a change must gain more than {noise.threshold:.4f} to be kept")


def loop_sections(rows: Sequence[LedgerRow], noise: NoiseFloor | None) -> dict[str, str]:
    """The BEST and EXPERIMENTS bodies."""
    return {"BEST": render_best(rows) + "\n" + noise_line(noise), "EXPERIMENTS": render_experiments(rows)}
