"""`pgolf score`: tokens and canonical bytes of the scored validation targets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pgolf.cli._common import console, print_json


def score(
    tokenizer: Annotated[Path, typer.Option(help="The SentencePiece model the shards were encoded with.")],
    val: Annotated[str, typer.Option(help="Validation shards: a glob such as 'data/datasets/fineweb10B_sp1024/fineweb_val_*.bin'.")],
    seq_len: Annotated[int | None, typer.Option(help="Evaluation sequence length: score the first ((N-1)//L)*L targets, as train_gpt.py does. Default: every target (sliding-window evaluation).", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (keys tokens, bytes, tokens_per_byte).")] = False,
) -> None:
    """Count the scored targets of a validation split and their bytes under the canonical byte rule.

    val_bpb = (summed NLL in nats / ln 2) / bytes, so tokens_per_byte converts a per-token loss to BPB:
    val_bpb = val_loss / ln 2 * tokens_per_byte.
    """
    from pgolf.scoring.count import count_scored_bytes
    from pgolf.scoring.luts import build_luts

    result = count_scored_bytes(val, build_luts(tokenizer), seq_len=seq_len)
    if as_json:
        print_json(result.as_dict())
        return
    console.print(f"tokens           {result.tokens:,}")
    console.print(f"bytes            {result.bytes:,}")
    console.print(f"tokens_per_byte  {result.tokens_per_byte:.8f}")
