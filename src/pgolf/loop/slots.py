"""Slots: how many runs the local tier holds at once, and each one's GPUs and CPU threads.

`[tiers.local] slots = N | "auto"` ("auto": one per `gpus_per_slot` visible CUDA GPUs, else 1). A slot
on a GPU machine sees only its GPUs (`CUDA_VISIBLE_DEVICES`); on CPU every slot gets an even share of
the cores (`OMP_NUM_THREADS`, which torch takes as its intra-op thread count).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from pgolf.config import LocalTier

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class Slot:
    """One place a run can go: its index (1-based) and the environment that pins it."""

    index: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        gpus = self.env.get("CUDA_VISIBLE_DEVICES")
        return f"slot {self.index}" + (f" (GPU {gpus})" if gpus else "")


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use: CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, else none."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def plan_slots(tier: LocalTier, gpus: list[str] | None = None, cpus: int | None = None) -> list[Slot]:
    """The tier's slots with their pinning."""
    gpus = visible_gpus() if gpus is None else gpus
    per = tier.gpus_per_slot
    count = tier.slots if isinstance(tier.slots, int) else max(len(gpus) // per, 1)
    if gpus:
        groups = [gpus[i * per:(i + 1) * per] for i in range(count)]
        if all(groups):
            return [Slot(i + 1, {"CUDA_VISIBLE_DEVICES": ",".join(g)}) for i, g in enumerate(groups)]
    # CPU (or more slots than GPUs): share the cores evenly; a user's own setting wins.
    cores = cpus or os.cpu_count() or 1
    threads = str(max(cores // count, 1))
    env = {name: threads for name in THREAD_ENV if name not in tier.env}
    return [Slot(i + 1, dict(env)) for i in range(count)]
