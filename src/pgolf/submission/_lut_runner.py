"""Run one extracted table-building function; started by `pgolf audit lut --execute` in a subprocess.

Started as `python -I -m pgolf.submission._lut_runner` in an empty temporary folder with a clean
environment, so the submission's code sees no secrets and no pgolf source folder.

Reads a JSON spec on stdin (the function's source, the module's imports, which argument is what, the
tokenizer path and the probe vocabulary), calls the function with the probe tokenizer and, when given,
the real tokenizer, and prints the tables as JSON. This runs the submission's code: only on request.
"""

from __future__ import annotations

import contextlib
import json
import sys

from pgolf.submission.probe import ProbeTokenizer


def _tables(result: object) -> list[list[int]]:
    if isinstance(result, dict):
        result = list(result.values())
    out = []
    for table in result:  # type: ignore[union-attr]
        if hasattr(table, "tolist"):
            table = table.tolist()
        out.append([int(v) for v in table])
    return out


def main() -> None:
    spec = json.load(sys.stdin)
    namespace: dict[str, object] = {"__name__": "pgolf_lut_audit"}
    for line in spec["imports"]:
        # the script's own imports; one that fails (a missing optional package) leaves its name unbound
        with contextlib.suppress(Exception):
            exec(line, namespace)
    exec(compile(spec["source"], "<submission>", "exec"), namespace)
    func = namespace[spec["function"]]
    device: object = "cpu"
    if "device" in spec["roles"]:  # importing torch costs seconds; only when the function takes a device
        try:
            import torch

            device = torch.device("cpu")
        except ImportError:
            pass

    def call(tokenizer: object, table_size: int) -> list[list[int]]:
        args = [{"tokenizer": tokenizer, "size": table_size, "device": device}[role]
                for role in spec["roles"]]
        return _tables(func(*args))  # type: ignore[operator]

    out = {"probe": call(ProbeTokenizer(spec["probe"]), spec["probe_table_size"])}
    if spec.get("tokenizer"):
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor()
        sp.Load(spec["tokenizer"])
        out["tokenizer"] = call(sp, int(spec.get("table_size") or sp.vocab_size()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
