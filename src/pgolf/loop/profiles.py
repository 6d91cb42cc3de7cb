"""`pgolf init --profile cpu|gpu`: local-tier settings sized for the machine the loop runs on.

The challenge's baseline (9×512, 524,288 tokens per step) takes minutes per step and ~15 GB on a CPU;
the cpu profile puts a small model into `[tiers.local] env` so that a run takes about a minute there.
The script's own defaults are left as they are (a remote tier still trains the full model).
"""

from __future__ import annotations

from dataclasses import dataclass

from pgolf.errors import ConfigError

PROFILES = ("cpu", "gpu")

# Step-limited, with validation cut to a prefix: on CPU, scoring the whole 62M-token split takes hours.
CPU_ENV: dict[str, str] = {
    "NUM_LAYERS": "2", "MODEL_DIM": "128", "NUM_HEADS": "4", "NUM_KV_HEADS": "2", "TRAIN_SEQ_LEN": "128",
    "TRAIN_BATCH_TOKENS": "4096", "ITERATIONS": "100", "WARMUP_STEPS": "0", "VAL_LOSS_EVERY": "0",
    "TRAIN_LOG_EVERY": "10", "VAL_TOKENS_LIMIT": "65536", "VAL_BATCH_SIZE": "16384",
}


def _cpu_search_space() -> str:
    """The default search space, its warm-down range scaled to 100 steps (env may not set what is searched)."""
    from pgolf.workspace import DEFAULT_TEMPLATE_VALUES

    lines = str(DEFAULT_TEMPLATE_VALUES["search_space"]).splitlines(keepends=True)
    return "".join('WARMDOWN_ITERS = { type = "int", low = 10, high = 100, step = 10 }\n'
                   if line.startswith("WARMDOWN_ITERS") else line for line in lines)


@dataclass(frozen=True)
class Profile:
    """The template values of a profile and the sentence `pgolf init` says about it."""

    name: str
    template_values: dict[str, object]
    summary: str


def machine_profile() -> str:
    """The profile this machine wants: gpu when it shows a CUDA GPU, else cpu."""
    from pgolf.loop.setup_check import cuda_available

    return "gpu" if cuda_available() else "cpu"


def get_profile(name: str) -> Profile:
    """The named profile; an unknown name is a ConfigError."""
    if name == "gpu":
        return Profile("gpu", {}, "the challenge's baseline as it is (9×512, 524,288 tokens per step, 600 s)")
    if name == "cpu":
        env = ", ".join(f'{key} = "{value}"' for key, value in CPU_ENV.items())
        return Profile("cpu", {"local_env": env, "search_space": _cpu_search_space()},
                       f"[tiers.local] env trains a {CPU_ENV['NUM_LAYERS']}-layer, width-{CPU_ENV['MODEL_DIM']} model "
                       f"on {int(CPU_ENV['TRAIN_BATCH_TOKENS']):,} tokens per step for {CPU_ENV['ITERATIONS']} steps, "
                       f"scored on the first {int(CPU_ENV['VAL_TOKENS_LIMIT']):,} validation tokens")
    raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
