"""
train_gpt.py: the Parameter Golf baseline GPT, runnable from a laptop CPU to 8xH100.

This is the script a pgolf workspace starts from and the one its research loop edits. Model, optimizer,
schedule, evaluation and export follow the challenge's baseline, so its scores mean what everyone
else's mean: a 9x512 GPT (GQA 8/4 heads, relu^2 MLP, tied embeddings, U-Net skips) trained with Muon
and Adam on 524,288 tokens per step for at most 600 s, scored in bits per byte on the validation split,
then quantized to int8, zlib-compressed, reloaded and scored again (that last score is the result).

Run it:
    python train_gpt.py                                    # one GPU, CPU or MPS (picked automatically)
    torchrun --standalone --nproc_per_node=8 train_gpt.py  # DDP: NCCL on CUDA, gloo on CPU
Every hyperparameter is an environment variable (the block below, with the challenge's names). Also:
    VAL_TOKENS_LIMIT   score only the first N validation tokens (0 = the whole split; for smoke runs)
    QUANT_BITS         8 (default) or 6: bits per quantized weight in the export
    COMPRESSOR         zlib (default), lzma, zstd or brotli (the last two need their packages)
    EARLY_ABORT_STEP   with EARLY_ABORT_BPB: validate at that step and stop when val_bpb is worse
    EARLY_ABORT_BPB
    DEVICE             auto (default), cuda, cpu or mps
    COMPILE            auto (default: on for CUDA, off elsewhere), 1 or 0
    PGOLF_RESULT_JSON  where to write result.json (status ok | aborted | crashed; see write_result)

Outputs: the official log lines on stdout (and in logs/<RUN_ID>.txt, after a dump of this file), and the
compressed model final_model.int8.ptz next to this script (int6 with QUANT_BITS=6).

Exit codes:
    0  finished: trained, exported, round-trip evaluated
    1  failed: bad input or an error (result status crashed, reason says why)
    2  diverged: a non-finite loss stopped training (result status crashed)
    3  early abort: val_bpb at EARLY_ABORT_STEP was worse than EARLY_ABORT_BPB (result status aborted)
Under torchrun the launcher turns any non-zero worker exit into its own failure code; result.json
keeps the status either way.
"""

from __future__ import annotations

import copy
import glob
import io
import json
import lzma
import math
import os
import random
import re
import sys
import time
import traceback
import uuid
import zlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

# -----------------------------------------------------------------------------
# Hyperparameters: one line each, read from the environment. pgolf's search rewrites these default
# literals in place, so keep them literal and one per line.


def _set_aside_malformed_hyperparameters() -> list[str]:
    """Unset each hyperparameter variable whose value does not parse as its type; say why, one per variable.

    The class below converts its values as it is defined, at import, before main's error handling exists.
    Set aside here, a malformed value (SEED=abc) reaches main, which stops the run as bad input.
    """
    source = Path(__file__).read_text(encoding="utf-8")
    block = source.split("\nclass Hyperparameters:\n", 1)[1].split("\n\n\n", 1)[0]
    problems = []
    for kind, name in re.findall(r'\b(int|float)\(os\.environ\.get\("(\w+)"', block):
        try:
            {"int": int, "float": float}[kind](os.environ.get(name, "0"))
        except ValueError as err:
            problems.append(f"{name}: {err}")
            del os.environ[name]
    return problems


MALFORMED_HYPERPARAMETERS = _set_aside_malformed_hyperparameters()


class Hyperparameters:
    # Data: shard globs fineweb_{train,val}_*.bin inside DATA_PATH, and the SentencePiece tokenizer.
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    tokenizer_path = os.environ.get("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
    run_id = os.environ.get("RUN_ID", "")
    seed = int(os.environ.get("SEED", 1337))

    # Validation cadence and batch size (validation always covers the whole split, or VAL_TOKENS_LIMIT).
    val_batch_size = int(os.environ.get("VAL_BATCH_SIZE", 524288))
    val_loss_every = int(os.environ.get("VAL_LOSS_EVERY", 1000))
    train_log_every = int(os.environ.get("TRAIN_LOG_EVERY", 200))
    val_tokens_limit = int(os.environ.get("VAL_TOKENS_LIMIT", 0))

    # Training length: ITERATIONS steps or MAX_WALLCLOCK_SECONDS of training time, whichever comes first.
    iterations = int(os.environ.get("ITERATIONS", 20000))
    warmdown_iters = int(os.environ.get("WARMDOWN_ITERS", 1200))
    warmup_steps = int(os.environ.get("WARMUP_STEPS", 20))
    train_batch_tokens = int(os.environ.get("TRAIN_BATCH_TOKENS", 524288))
    train_seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 1024))
    max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))
    qk_gain_init = float(os.environ.get("QK_GAIN_INIT", 1.5))

    # Model shape.
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    num_layers = int(os.environ.get("NUM_LAYERS", 9))
    num_kv_heads = int(os.environ.get("NUM_KV_HEADS", 4))
    model_dim = int(os.environ.get("MODEL_DIM", 512))
    num_heads = int(os.environ.get("NUM_HEADS", 8))
    mlp_mult = int(os.environ.get("MLP_MULT", 2))
    tie_embeddings = int(os.environ.get("TIE_EMBEDDINGS", 1))
    rope_base = float(os.environ.get("ROPE_BASE", 10000.0))
    logit_softcap = float(os.environ.get("LOGIT_SOFTCAP", 30.0))

    # Optimizers: Muon for block matrices, Adam for the embedding, head, vectors and control tensors.
    embed_lr = float(os.environ.get("EMBED_LR", 0.6))
    head_lr = float(os.environ.get("HEAD_LR", 0.008))
    tied_embed_lr = float(os.environ.get("TIED_EMBED_LR", 0.05))
    tied_embed_init_std = float(os.environ.get("TIED_EMBED_INIT_STD", 0.005))
    matrix_lr = float(os.environ.get("MATRIX_LR", 0.04))
    scalar_lr = float(os.environ.get("SCALAR_LR", 0.04))
    muon_momentum = float(os.environ.get("MUON_MOMENTUM", 0.95))
    muon_backend_steps = int(os.environ.get("MUON_BACKEND_STEPS", 5))
    muon_momentum_warmup_start = float(os.environ.get("MUON_MOMENTUM_WARMUP_START", 0.85))
    muon_momentum_warmup_steps = int(os.environ.get("MUON_MOMENTUM_WARMUP_STEPS", 500))
    beta1 = float(os.environ.get("BETA1", 0.9))
    beta2 = float(os.environ.get("BETA2", 0.95))
    adam_eps = float(os.environ.get("ADAM_EPS", 1e-8))
    grad_clip_norm = float(os.environ.get("GRAD_CLIP_NORM", 0.0))

    # Export, early abort and where to run.
    quant_bits = int(os.environ.get("QUANT_BITS", 8))
    compressor = os.environ.get("COMPRESSOR", "zlib")
    early_abort_step = int(os.environ.get("EARLY_ABORT_STEP", 0))
    early_abort_bpb = float(os.environ.get("EARLY_ABORT_BPB", 0.0))
    device_kind = os.environ.get("DEVICE", "auto")
    compile_mode = os.environ.get("COMPILE", "auto")


def hyperparameter_values() -> dict[str, object]:
    """The hyperparameters as a plain mapping (recorded in result.json)."""
    return {k: v for k, v in vars(Hyperparameters).items() if not k.startswith("_")}


# -----------------------------------------------------------------------------
# How a run ends early. Each carries the result status and the process exit code.


class StopRun(Exception):
    """Bad input or a failed precondition: one clear line, status crashed, exit 1."""

    status = "crashed"
    exit_code = 1


class TrainingDiverged(StopRun):
    """A non-finite loss: continuing would only burn time."""

    exit_code = 2


class EarlyAbort(StopRun):
    """Validation at the early-abort step was worse than the threshold."""

    status = "aborted"
    exit_code = 3


# -----------------------------------------------------------------------------
# Muon: momentum SGD whose update for each 2-D matrix is orthogonalized by a Newton-Schulz iteration
# (https://kellerjordan.github.io/posts/muon/). Under DDP each rank orthogonalizes every world_size-th
# matrix and one all-reduce shares the results, so the expensive part is split across GPUs.


def zeropower_via_newtonschulz5(grad: Tensor, steps: int, dtype: torch.dtype, eps: float = 1e-7) -> Tensor:
    """Approximately the nearest orthogonal matrix to `grad` (quintic Newton-Schulz iteration)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = grad.to(dtype)
    x = x / (x.norm() + eps)
    tall = grad.size(0) > grad.size(1)
    if tall:  # iterate on the wide orientation: X @ X.T is then the smaller square
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon with nesterov momentum; `orthogonalize` may be a compiled zeropower_via_newtonschulz5."""

    def __init__(self, params, lr: float, momentum: float, backend_steps: int, update_dtype: torch.dtype,
                 orthogonalize=zeropower_via_newtonschulz5):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps))
        # Kept off the param groups so optimizer state_dicts stay plain data (they are deep-copied).
        self.update_dtype = update_dtype
        self.orthogonalize = orthogonalize

    @torch.no_grad()
    def step(self, closure=None):
        distributed = dist.is_available() and dist.is_initialized()
        world_size = dist.get_world_size() if distributed else 1
        rank = dist.get_rank() if distributed else 0
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            updates = torch.zeros(sum(p.numel() for p in params), device=params[0].device,
                                  dtype=self.update_dtype)
            offset = 0
            for i, p in enumerate(params):
                if i % world_size == rank and p.grad is not None:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p.grad)
                    buf = state["momentum_buffer"]
                    buf.mul_(group["momentum"]).add_(p.grad)
                    g = p.grad.add(buf, alpha=group["momentum"])  # nesterov
                    g = self.orthogonalize(g, group["backend_steps"], self.update_dtype)
                    g = g * max(1.0, g.size(0) / g.size(1)) ** 0.5  # same RMS update for tall matrices
                    updates[offset:offset + p.numel()] = g.reshape(-1)
                offset += p.numel()
            if distributed:
                dist.all_reduce(updates, op=dist.ReduceOp.SUM)
            offset = 0
            for p in params:
                p.add_(updates[offset:offset + p.numel()].view_as(p).to(p.dtype), alpha=-group["lr"])
                offset += p.numel()


# -----------------------------------------------------------------------------
# Data: the challenge's shards are a 256 x int32 header (magic 20240520, version 1, token count) followed
# by uint16 tokens. Training streams the train shards in order and wraps around; there is no sampling.

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256


def read_shard(path: Path, vocab_size: int) -> np.ndarray:
    """One shard's tokens (uint16), checked against its header and the vocabulary."""
    header = np.fromfile(path, dtype="<i4", count=SHARD_HEADER_INTS)
    if header.size != SHARD_HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise StopRun(f"{path}: not a token shard (bad header)")
    count = int(header[2])
    expected = SHARD_HEADER_INTS * 4 + 2 * count
    if path.stat().st_size != expected:
        raise StopRun(f"{path}: {path.stat().st_size} bytes, header says {expected}")
    tokens = np.fromfile(path, dtype="<u2", count=count, offset=SHARD_HEADER_INTS * 4)
    if count and int(tokens.max()) >= vocab_size:
        raise StopRun(f"{path}: token {int(tokens.max())} is out of range for VOCAB_SIZE={vocab_size}")
    return tokens


def shard_files(data_path: str, split: str) -> list[Path]:
    """The sorted shards of one split ("train" or "val"); none is an error."""
    pattern = os.path.join(data_path, f"fineweb_{split}_*.bin")
    files = [Path(p) for p in sorted(glob.glob(pattern))]
    if not files:
        raise StopRun(f"no {split} shards match {pattern} (set DATA_PATH)")
    return files


class TokenStream:
    """The train shards as one endless stream of tokens."""

    def __init__(self, files: list[Path], vocab_size: int):
        self.files, self.vocab_size = files, vocab_size
        self.file_index, self.pos = 0, 0
        self.tokens = read_shard(files[0], vocab_size)

    def take(self, n: int) -> np.ndarray:
        chunks = []
        while n > 0:
            if self.pos >= len(self.tokens):
                self.file_index = (self.file_index + 1) % len(self.files)
                self.tokens, self.pos = read_shard(self.files[self.file_index], self.vocab_size), 0
                continue
            k = min(n, len(self.tokens) - self.pos)
            chunks.append(self.tokens[self.pos:self.pos + k])
            self.pos, n = self.pos + k, n - k
        return np.concatenate(chunks)


class DistributedTokenLoader:
    """Each micro-step takes one contiguous chunk of the stream and gives each rank its own slice.

    Every rank reads the same stream, so the global batch is identical for any world size: with 2 ranks
    micro-step i holds exactly the sequences of single-process micro-steps 2i and 2i+1.
    """

    def __init__(self, files: list[Path], vocab_size: int, rank: int, world_size: int, device: torch.device):
        self.rank, self.world_size, self.device = rank, world_size, device
        self.stream = TokenStream(files, vocab_size)

    def next_batch(self, global_tokens: int, seq_len: int, grad_accum_steps: int) -> tuple[Tensor, Tensor]:
        span = global_tokens // (self.world_size * grad_accum_steps) + 1  # +1: targets are inputs shifted
        chunk = self.stream.take(span * self.world_size)
        local = torch.from_numpy(chunk[self.rank * span:(self.rank + 1) * span].astype(np.int64))
        x, y = local[:-1].view(-1, seq_len), local[1:].view(-1, seq_len)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def load_validation_tokens(data_path: str, seq_len: int, vocab_size: int, limit: int) -> np.ndarray:
    """The validation split (or its first `limit` scored tokens), cut to whole sequences plus one."""
    tokens = np.concatenate([read_shard(f, vocab_size) for f in shard_files(data_path, "val")])
    if limit > 0:
        tokens = tokens[:limit + 1]
    usable = ((len(tokens) - 1) // seq_len) * seq_len
    if usable <= 0:
        raise StopRun(f"validation split has {len(tokens)} tokens: too few for TRAIN_SEQ_LEN={seq_len}")
    return tokens[:usable + 1]


# -----------------------------------------------------------------------------
# Bits per byte. The score must not depend on the tokenizer, so the summed NLL is divided by the UTF-8
# bytes the scored tokens stand for. Per target t after token p:
#   bytes(t) = base_bytes[t] + (has_leading_space[t] and not is_boundary[p])
# base_bytes is the piece's UTF-8 length without its leading "▁" (byte-fallback pieces count 1); control,
# unknown and unused pieces are boundaries and count 0; table rows past the tokenizer's vocabulary too.


def build_byte_luts(sp: spm.SentencePieceProcessor,
                    table_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base_bytes int16, has_leading_space bool, is_boundary bool), indexed by token id."""
    vocab = int(sp.vocab_size())
    size = max(vocab, table_size)
    base_bytes = np.zeros(size, dtype=np.int16)
    has_leading_space = np.zeros(size, dtype=np.bool_)
    is_boundary = np.ones(size, dtype=np.bool_)
    for token in range(vocab):
        if sp.is_control(token) or sp.is_unknown(token) or sp.is_unused(token):
            continue
        is_boundary[token] = False
        if sp.is_byte(token):
            base_bytes[token] = 1
            continue
        piece = sp.id_to_piece(token)
        if piece.startswith("\u2581"):
            has_leading_space[token] = True
            piece = piece[1:]
        base_bytes[token] = len(piece.encode("utf-8"))
    return base_bytes, has_leading_space, is_boundary


class ByteCounter:
    """The byte tables on the run's device."""

    def __init__(self, luts: tuple[np.ndarray, np.ndarray, np.ndarray], device: torch.device):
        tables = (torch.from_numpy(t).to(device) for t in luts)
        self.base_bytes, self.has_leading_space, self.is_boundary = tables

    def count(self, prev: Tensor, target: Tensor) -> Tensor:
        """Total bytes of `target` tokens given the tokens before them, as float64."""
        extra = self.has_leading_space[target] & ~self.is_boundary[prev]
        return (self.base_bytes[target].to(torch.int32) + extra).sum(dtype=torch.float64)


# -----------------------------------------------------------------------------
# Model: a GPT with RMSNorm (no weight), RoPE on RMS-normed q and k with a learnable per-head q gain,
# GQA attention, relu^2 MLP, tanh logit softcap, tied embeddings, and a U-Net: the first half of the
# blocks store their outputs, the second half adds them back in reverse with learned per-channel weights.
# Every block also mixes in the embedding output x0 through a learned (residual, x0) pair.

# Small learned control tensors: kept in float32, optimized by Adam, never quantized.
CONTROL_TENSOR_PATTERNS = ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weight")


def is_control_tensor(name: str) -> bool:
    return any(pattern in name for pattern in CONTROL_TENSOR_PATTERNS)


class CastedLinear(nn.Linear):
    """A bias-free linear layer whose fp32 master weight is cast to the activation dtype (bf16 on GPU)."""

    def __init__(self, in_features: int, out_features: int, zero_init: bool = False):
        super().__init__(in_features, out_features, bias=False)
        self.zero_init = zero_init  # output projections start at zero, so each block starts as identity

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.to(x.dtype))


class Rotary(nn.Module):
    """RoPE cos/sin tables, computed in float32 and cached per sequence length and device."""

    def __init__(self, head_dim: int, base: float):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim),
                             persistent=False)
        self._cache: tuple[int, torch.device, Tensor, Tensor] | None = None

    def forward(self, seq_len: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        if self._cache is None or self._cache[0] != seq_len or self._cache[1] != device:
            positions = torch.arange(seq_len, device=device, dtype=torch.float32)
            freqs = torch.outer(positions, self.inv_freq.float().to(device))
            self._cache = (seq_len, device, freqs.cos()[None, None], freqs.sin()[None, None])
        return self._cache[2].to(dtype), self._cache[3].to(dtype)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, rope_base: float, qk_gain_init: float):
        super().__init__()
        if dim % num_heads or num_heads % num_kv_heads or (dim // num_heads) % 2:
            raise StopRun(f"MODEL_DIM={dim}, NUM_HEADS={num_heads}, NUM_KV_HEADS={num_kv_heads}: heads must "
                          "divide the width, KV heads must divide the heads, and the head size must be even")
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, dim // num_heads
        kv_dim = num_kv_heads * self.head_dim
        self.c_q = CastedLinear(dim, dim)
        self.c_k = CastedLinear(dim, kv_dim)
        self.c_v = CastedLinear(dim, kv_dim)
        self.proj = CastedLinear(dim, dim, zero_init=True)
        self.q_gain = nn.Parameter(torch.full((num_heads,), qk_gain_init, dtype=torch.float32))
        self.rotary = Rotary(self.head_dim, rope_base)

    def forward(self, x: Tensor) -> Tensor:
        bsz, seq_len, dim = x.shape
        q = self.c_q(x).view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).view(bsz, seq_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.c_v(x).view(bsz, seq_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = F.rms_norm(q, (self.head_dim,)), F.rms_norm(k, (self.head_dim,))
        cos, sin = self.rotary(seq_len, x.device, q.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q = q * self.q_gain.to(q.dtype)[None, :, None, None]  # normed q and k need a learned temperature
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           enable_gqa=self.num_kv_heads != self.num_heads)
        return self.proj(y.transpose(1, 2).reshape(bsz, seq_len, dim))


class MLP(nn.Module):
    def __init__(self, dim: int, mlp_mult: int):
        super().__init__()
        self.fc = CastedLinear(dim, mlp_mult * dim)
        self.proj = CastedLinear(mlp_mult * dim, dim, zero_init=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_kv_heads: int, mlp_mult: int, rope_base: float,
                 qk_gain_init: float):
        super().__init__()
        self.attn = CausalSelfAttention(dim, num_heads, num_kv_heads, rope_base, qk_gain_init)
        self.mlp = MLP(dim, mlp_mult)
        self.attn_scale = nn.Parameter(torch.ones(dim))
        self.mlp_scale = nn.Parameter(torch.ones(dim))
        # (weight of the residual stream, weight of x0): starts as the pure residual stream.
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(dim), torch.zeros(dim))))

    def forward(self, x: Tensor, x0: Tensor) -> Tensor:
        mix = self.resid_mix.to(x.dtype)
        x = mix[0] * x + mix[1] * x0
        x = x + self.attn_scale.to(x.dtype) * self.attn(F.rms_norm(x, (x.size(-1),)))
        return x + self.mlp_scale.to(x.dtype) * self.mlp(F.rms_norm(x, (x.size(-1),)))


class GPT(nn.Module):
    def __init__(self, args: Hyperparameters):
        super().__init__()
        if args.logit_softcap <= 0:
            raise StopRun(f"LOGIT_SOFTCAP must be positive, got {args.logit_softcap}")
        self.logit_softcap = args.logit_softcap
        self.tok_emb = nn.Embedding(args.vocab_size, args.model_dim)
        self.num_encoder_layers = args.num_layers // 2
        self.num_decoder_layers = args.num_layers - self.num_encoder_layers
        num_skips = min(self.num_encoder_layers, self.num_decoder_layers)
        self.skip_weights = nn.Parameter(torch.ones(num_skips, args.model_dim))
        self.blocks = nn.ModuleList(
            Block(args.model_dim, args.num_heads, args.num_kv_heads, args.mlp_mult, args.rope_base,
                  args.qk_gain_init)
            for _ in range(args.num_layers)
        )
        self.lm_head = None
        if not args.tie_embeddings:
            self.lm_head = CastedLinear(args.model_dim, args.vocab_size, zero_init=True)
        if args.tie_embeddings:  # the embedding doubles as the output layer, so it starts small
            nn.init.normal_(self.tok_emb.weight, mean=0.0, std=args.tied_embed_init_std)
        for module in self.modules():
            if isinstance(module, CastedLinear) and module.zero_init:
                nn.init.zeros_(module.weight)

    def forward(self, input_ids: Tensor, target_ids: Tensor) -> Tensor:
        """Mean cross-entropy (nats) of predicting `target_ids`."""
        x = self.tok_emb(input_ids)
        x = x0 = F.rms_norm(x, (x.size(-1),))
        skips = []
        for block in self.blocks[:self.num_encoder_layers]:
            x = block(x, x0)
            skips.append(x)
        for i, block in enumerate(self.blocks[self.num_encoder_layers:]):
            if skips:
                x = x + self.skip_weights[i].to(x.dtype) * skips.pop()
            x = block(x, x0)
        x = F.rms_norm(x, (x.size(-1),)).reshape(-1, x.size(-1))
        logits = F.linear(x, self.tok_emb.weight) if self.lm_head is None else self.lm_head(x)
        logits = self.logit_softcap * torch.tanh(logits / self.logit_softcap)
        return F.cross_entropy(logits.float(), target_ids.reshape(-1))


# -----------------------------------------------------------------------------
# Export: per-row quantization of large float tensors (small ones stay float), torch.save, compression.
# The artifact the challenge counts is this compressed file plus this script's bytes.

KEEP_FLOAT_MAX_NUMEL = 65536  # tensors this small cost more in scales than they save
CLIP_QUANTILE = 0.9999984  # clip each row's rare outliers so they do not stretch its scale


def quantize_tensor(t: Tensor, bits: int) -> tuple[Tensor, Tensor]:
    """Symmetric quantization to `bits`: one fp16 scale per row for matrices, one float for the rest."""
    qmax = 2 ** (bits - 1) - 1
    t = t.float()
    if t.ndim == 2:
        clip = torch.quantile(t.abs(), CLIP_QUANTILE, dim=1)
        scale = (clip / qmax).clamp_min(1.0 / qmax)
        q = torch.round(torch.clamp(t, -clip[:, None], clip[:, None]) / scale[:, None])
        return q.clamp(-qmax, qmax).to(torch.int8), scale.to(torch.float16)
    clip = float(torch.quantile(t.abs().flatten(), CLIP_QUANTILE)) if t.numel() else 0.0
    scale = torch.tensor(clip / qmax if clip > 0 else 1.0)
    q = torch.round(torch.clamp(t, -clip, clip) / scale)
    return q.clamp(-qmax, qmax).to(torch.int8), scale


def quantize_state_dict(state: dict[str, Tensor], bits: int) -> tuple[dict, int]:
    """The export object and its payload bytes (quantized weights, scales and kept tensors)."""
    quantized, scales, dtypes, kept, kept_dtypes = {}, {}, {}, {}, {}
    payload = 0
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        if t.is_floating_point() and t.numel() > KEEP_FLOAT_MAX_NUMEL:
            quantized[name], scales[name] = quantize_tensor(t, bits)
            dtypes[name] = str(t.dtype).removeprefix("torch.")
            payload += quantized[name].numel() + scales[name].numel() * scales[name].element_size()
            continue
        if t.is_floating_point() and not is_control_tensor(name):
            kept_dtypes[name] = str(t.dtype).removeprefix("torch.")
            t = t.half()  # small non-control floats lose nothing that matters in fp16
        elif t.is_floating_point():
            t = t.float()
        kept[name] = t
        payload += t.numel() * t.element_size()
    obj = {"format": f"int{bits}_per_row_v1", "quantized": quantized, "scales": scales, "dtypes": dtypes,
           "kept": kept, "kept_dtypes": kept_dtypes}
    return obj, payload


def dequantize_state_dict(obj: dict) -> dict[str, Tensor]:
    """Float tensors back from the export object."""
    state = {}
    for name, q in obj["quantized"].items():
        scale = obj["scales"][name].float()
        if scale.ndim:
            scale = scale.view(q.shape[0], *([1] * (q.ndim - 1)))
        state[name] = (q.float() * scale).to(getattr(torch, obj["dtypes"][name]))
    for name, t in obj["kept"].items():
        dtype = obj["kept_dtypes"].get(name)
        state[name] = t.to(getattr(torch, dtype)) if dtype else t
    return state


def _compression_module(name: str):
    if name == "zstd":
        import zstandard
        return zstandard
    if name == "brotli":
        import brotli
        return brotli
    return None


def check_compressor(name: str) -> None:
    """Fail before training, not after it, when the compressor cannot work."""
    if name not in ("zlib", "lzma", "zstd", "brotli"):
        raise StopRun(f"COMPRESSOR={name!r}: use zlib, lzma, zstd or brotli")
    try:
        _compression_module(name)
    except ImportError:
        package = {"zstd": "zstandard", "brotli": "brotli"}[name]
        raise StopRun(f"COMPRESSOR={name} needs the {package} package (pip install {package})") from None


def compress(data: bytes, name: str) -> bytes:
    """`data` compressed at the compressor's strongest standard level."""
    if name == "zlib":
        return zlib.compress(data, level=9)
    if name == "lzma":
        return lzma.compress(data, preset=9)
    if name == "zstd":
        return _compression_module(name).ZstdCompressor(level=22).compress(data)
    return _compression_module(name).compress(data, quality=11)


def decompress(data: bytes, name: str) -> bytes:
    """The inverse of compress."""
    if name == "zlib":
        return zlib.decompress(data)
    if name == "lzma":
        return lzma.decompress(data)
    if name == "zstd":
        return _compression_module(name).ZstdDecompressor().decompress(data)
    return _compression_module(name).decompress(data)


# -----------------------------------------------------------------------------
# Where the run executes: device, DDP, logging and the result file.


@dataclass
class Runtime:
    device: torch.device
    rank: int
    world_size: int
    distributed: bool
    use_compile: bool

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def grad_accum_steps(self) -> int:
        # 8 micro-batches per step in total, however many processes share them: the global batch and its
        # split into sequences do not depend on the number of GPUs.
        return 8 // self.world_size

    def autocast(self):
        # bf16 compute on CUDA; CPU and MPS run in float32.
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def all_reduce(self, t: Tensor, op=dist.ReduceOp.SUM) -> Tensor:
        if self.distributed:
            dist.all_reduce(t, op=op)
        return t

    def any_rank(self, flag: bool) -> bool:
        """True when `flag` is true on any rank (keeps every rank's decision to stop identical)."""
        return bool(self.all_reduce(torch.tensor(int(flag), device=self.device), dist.ReduceOp.MAX).item())


def setup_runtime(args: Hyperparameters) -> Runtime:
    """Pick the device, join the process group under torchrun, and set the fast-math switches."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if world_size <= 0 or 8 % world_size:
        raise StopRun(f"WORLD_SIZE={world_size} must divide 8 so every rank gets whole micro-batches")
    kind = args.device_kind
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if kind not in ("cuda", "cpu", "mps"):
        raise StopRun(f"DEVICE={args.device_kind!r}: use auto, cuda, cpu or mps")
    if kind == "cuda" and not torch.cuda.is_available():
        raise StopRun("DEVICE=cuda but CUDA is not available")
    if kind == "mps" and (distributed or not torch.backends.mps.is_available()):
        raise StopRun("DEVICE=mps needs an available MPS device and a single process")
    device = torch.device("cuda", local_rank) if kind == "cuda" else torch.device(kind)
    if kind == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        # Flash attention only, as the baseline: a silent fallback to a slower kernel would skew timings.
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cuda.enable_flash_sdp(True)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
        torch.backends.cuda.enable_math_sdp(False)
    if distributed:
        if kind == "cuda":
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
        dist.barrier()
    modes = {"auto": kind == "cuda", "1": True, "0": False}
    if args.compile_mode not in modes:
        raise StopRun(f"COMPILE={args.compile_mode!r}: use auto, 1 or 0")
    return Runtime(device, rank, world_size, distributed, modes[args.compile_mode])


class Logger:
    """Log lines: printed and flushed (a supervisor reads them live), and appended to logs/RUN_ID.txt."""

    def __init__(self, rt: Runtime, path: Path):
        self.master, self.path = rt.master, path
        if self.master:
            path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str, console: bool = True) -> None:
        if not self.master:
            return
        if console:
            print(msg, flush=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            print(msg, file=fh)


RESULT_KEYS = ("status", "reason", "val_loss", "val_bpb", "pre_quant_val_loss", "pre_quant_val_bpb",
               "code_bytes", "model_bytes", "artifact_bytes", "steps", "train_ms", "eval_ms",
               "tokens_per_second", "tokens_per_step", "peak_memory_mb", "params", "seed", "device",
               "world_size", "hyperparameters", "curve")


class ResultFile:
    """result.json at $PGOLF_RESULT_JSON: filled in as the run goes, written once it ends, however it ends.

    val_bpb is the score after the export round trip; pre_quant_* are the last validation before export;
    eval_ms is the round-trip evaluation (the part the challenge's evaluation limit covers); curve holds
    every validation during training as {step, val_bpb}.
    """

    def __init__(self, path: str):
        self.path = Path(path) if path else None
        self.master = int(os.environ.get("RANK", 0)) == 0
        self.fields: dict[str, object] = dict.fromkeys(RESULT_KEYS)
        self.fields.update(reason="", curve=[])

    def update(self, **fields: object) -> None:
        self.fields.update(fields)

    def write(self, status: str, reason: str = "") -> None:
        self.fields.update(status=status, reason=reason)
        if self.path is None or not self.master:
            return
        # NaN is not JSON: a diverged run reports null.
        clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                 for k, v in self.fields.items()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)  # readers never see half a file


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory: allocated CUDA memory on GPU, else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# -----------------------------------------------------------------------------
# Validation: non-overlapping windows of TRAIN_SEQ_LEN over the split, each rank a contiguous share,
# sums in float64 all-reduced across ranks.


def evaluate(args: Hyperparameters, model: nn.Module, rt: Runtime, val_tokens: np.ndarray,
             byte_counter: ByteCounter) -> tuple[float, float]:
    """(val_loss in nats per token, val_bpb) of `model` on the validation tokens."""
    seq_len = args.train_seq_len
    batch_seqs = args.val_batch_size // (rt.world_size * rt.grad_accum_steps) // seq_len
    if batch_seqs < 1:
        raise StopRun(f"VAL_BATCH_SIZE={args.val_batch_size} gives no whole sequence per rank and "
                      f"micro-batch (needs at least {8 * seq_len})")
    total_seqs = (len(val_tokens) - 1) // seq_len
    first, last = total_seqs * rt.rank // rt.world_size, total_seqs * (rt.rank + 1) // rt.world_size
    sums = torch.zeros(3, device=rt.device, dtype=torch.float64)  # nll (nats), tokens, bytes
    model.eval()
    # no_grad rather than inference_mode: tensors cached here (RoPE tables) are reused by training later.
    with torch.no_grad():
        for start in range(first, last, batch_seqs):
            end = min(start + batch_seqs, last)
            window = val_tokens[start * seq_len:end * seq_len + 1].astype(np.int64)
            tokens = torch.from_numpy(window).to(rt.device, non_blocking=True)
            x, y = tokens[:-1].view(-1, seq_len), tokens[1:].view(-1, seq_len)
            with rt.autocast():
                mean_nll = model(x, y).detach()
            sums[0] += mean_nll.double() * y.numel()
            sums[1] += y.numel()
            sums[2] += byte_counter.count(x.reshape(-1), y.reshape(-1))
    model.train()
    nll, tokens, nbytes = rt.all_reduce(sums).tolist()
    return nll / tokens, nll / math.log(2.0) / nbytes


# -----------------------------------------------------------------------------
# Training.


def build_optimizers(args: Hyperparameters, model: GPT, rt: Runtime,
                     orthogonalize) -> list[torch.optim.Optimizer]:
    """Adam for the embedding (and untied head), Muon for block matrices, Adam for vectors and controls.

    Each param group remembers its base_lr; the schedule scales lr from it every step.
    """
    block_params = list(model.blocks.named_parameters())
    matrices = [p for name, p in block_params if p.ndim == 2 and not is_control_tensor(name)]
    scalars = [p for name, p in block_params if p.ndim < 2 or is_control_tensor(name)]
    if model.skip_weights.numel():
        scalars.append(model.skip_weights)

    def adam(params: list[Tensor], lr: float) -> torch.optim.Adam:
        return torch.optim.Adam([{"params": params, "lr": lr, "base_lr": lr}], betas=(args.beta1, args.beta2),
                                eps=args.adam_eps, fused=rt.device.type == "cuda")

    token_lr = args.tied_embed_lr if args.tie_embeddings else args.embed_lr
    # Newton-Schulz runs in bf16 on GPU (fast, and precise enough for a direction); in float32 elsewhere.
    muon = Muon(matrices, lr=args.matrix_lr, momentum=args.muon_momentum,
                backend_steps=args.muon_backend_steps, orthogonalize=orthogonalize,
                update_dtype=torch.bfloat16 if rt.device.type == "cuda" else torch.float32)
    for group in muon.param_groups:
        group["base_lr"] = args.matrix_lr
    optimizers = [adam([model.tok_emb.weight], token_lr), muon, adam(scalars, args.scalar_lr)]
    if model.lm_head is not None:
        optimizers.insert(1, adam([model.lm_head.weight], args.head_lr))
    return optimizers


def lr_scale(args: Hyperparameters, step: int, elapsed_ms: float, max_wallclock_ms: float | None) -> float:
    """LR multiplier: linear warmdown to 0 over the last WARMDOWN_ITERS steps (or their time, under a cap)."""
    if args.warmdown_iters <= 0:
        return 1.0
    if max_wallclock_ms is None:
        steps_left = args.iterations - step
        return max(steps_left / args.warmdown_iters, 0.0) if steps_left <= args.warmdown_iters else 1.0
    warmdown_ms = args.warmdown_iters * elapsed_ms / max(step, 1)
    remaining_ms = max(max_wallclock_ms - elapsed_ms, 0.0)
    return remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0


def muon_momentum_at(args: Hyperparameters, step: int) -> float:
    """Muon's momentum, warmed up linearly from MUON_MOMENTUM_WARMUP_START over the first steps."""
    if args.muon_momentum_warmup_steps <= 0:
        return args.muon_momentum
    frac = min(step / args.muon_momentum_warmup_steps, 1.0)
    return (1 - frac) * args.muon_momentum_warmup_start + frac * args.muon_momentum


def main(result: ResultFile) -> None:
    """One whole run; raises StopRun subclasses for the ways it can end early."""
    if MALFORMED_HYPERPARAMETERS:
        raise StopRun("; ".join(MALFORMED_HYPERPARAMETERS))
    args = Hyperparameters()
    result.update(seed=args.seed, hyperparameters=hyperparameter_values())
    here = Path(__file__).resolve().parent  # outputs go next to the script: the run folder under pgolf
    code = Path(__file__).read_text(encoding="utf-8")
    run_id = args.run_id or str(uuid.uuid4())
    if args.quant_bits not in (6, 8):
        raise StopRun(f"QUANT_BITS={args.quant_bits}: use 8 or 6")
    check_compressor(args.compressor)
    if args.train_batch_tokens <= 0 or args.train_batch_tokens % (8 * args.train_seq_len):
        raise StopRun(f"TRAIN_BATCH_TOKENS={args.train_batch_tokens} must be a positive multiple of "
                      f"8 x TRAIN_SEQ_LEN = {8 * args.train_seq_len}")

    rt = setup_runtime(args)
    result.update(device=rt.device.type, world_size=rt.world_size)
    log0 = Logger(rt, here / "logs" / f"{run_id}.txt")
    if rt.master:
        print(f"logs/{run_id}.txt", flush=True)
    log0(code, console=False)
    log0("=" * 100, console=False)
    log0(f"Running Python {sys.version}", console=False)
    log0(f"Running PyTorch {torch.__version__}", console=False)
    log0("=" * 100, console=False)

    # ---- Seeds, tokenizer, byte tables, validation data
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if not args.tokenizer_path.endswith(".model") or not Path(args.tokenizer_path).is_file():
        raise StopRun(f"TOKENIZER_PATH={args.tokenizer_path}: no SentencePiece .model file there")
    sp = spm.SentencePieceProcessor(model_file=args.tokenizer_path)
    if int(sp.vocab_size()) != args.vocab_size:
        raise StopRun(f"VOCAB_SIZE={args.vocab_size} but the tokenizer has {int(sp.vocab_size())} pieces")
    byte_counter = ByteCounter(build_byte_luts(sp, args.vocab_size), rt.device)
    train_files = shard_files(args.data_path, "train")
    val_tokens = load_validation_tokens(args.data_path, args.train_seq_len, args.vocab_size,
                                        args.val_tokens_limit)
    log0(f"val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path={args.tokenizer_path}")
    log0(f"train_loader:dataset:{Path(args.data_path).resolve().name} train_shards:{len(train_files)}")
    log0(f"val_loader:shards pattern={os.path.join(args.data_path, 'fineweb_val_*.bin')} "
         f"tokens:{len(val_tokens) - 1}")

    # ---- Model and optimizers
    base_model = GPT(args).to(rt.device)
    if rt.device.type == "cuda":
        # As in the baseline: the embedding (and so the residual stream) lives in bf16 on GPU; matrices keep
        # fp32 master weights that CastedLinear casts at matmul time.
        base_model.tok_emb.bfloat16()
    orthogonalize = zeropower_via_newtonschulz5
    model: nn.Module = base_model
    if rt.use_compile:
        orthogonalize = torch.compile(zeropower_via_newtonschulz5)
        model = torch.compile(base_model, dynamic=False, fullgraph=True)
    if rt.distributed:
        model = DDP(model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None,
                    broadcast_buffers=False)
    optimizers = build_optimizers(args, base_model, rt, orthogonalize)
    muon = next(opt for opt in optimizers if isinstance(opt, Muon))

    n_params = sum(p.numel() for p in base_model.parameters())
    result.update(params=n_params)
    log0(f"model_params:{n_params}")
    log0(f"world_size:{rt.world_size} grad_accum_steps:{rt.grad_accum_steps}")
    if rt.device.type == "cuda":
        log0("sdp_backends:cudnn=False flash=True mem_efficient=False math=False")
    log0(f"attention_mode:gqa num_heads:{args.num_heads} num_kv_heads:{args.num_kv_heads}")
    log0(f"tie_embeddings:{bool(args.tie_embeddings)} "
         f"embed_lr:{args.tied_embed_lr if args.tie_embeddings else args.embed_lr} "
         f"head_lr:{0.0 if args.tie_embeddings else args.head_lr} "
         f"matrix_lr:{args.matrix_lr} scalar_lr:{args.scalar_lr}")
    log0(f"train_batch_tokens:{args.train_batch_tokens} train_seq_len:{args.train_seq_len} "
         f"iterations:{args.iterations} warmup_steps:{args.warmup_steps} "
         f"max_wallclock_seconds:{args.max_wallclock_seconds:.3f}")
    log0(f"seed:{args.seed}")
    log0(f"device:{rt.device.type} compile:{rt.use_compile} quant_bits:{args.quant_bits} "
         f"compressor:{args.compressor}")

    def new_loader() -> DistributedTokenLoader:
        return DistributedTokenLoader(train_files, args.vocab_size, rt.rank, rt.world_size, rt.device)

    def zero_grad() -> None:
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)

    def forward_backward() -> Tensor:
        """One step's gradients over all micro-batches; returns the mean train loss."""
        nonlocal local_tokens
        total = torch.zeros((), device=rt.device)
        for micro in range(rt.grad_accum_steps):
            if rt.distributed:  # all-reduce gradients once, after the last micro-batch
                model.require_backward_grad_sync = micro == rt.grad_accum_steps - 1
            x, y = train_loader.next_batch(args.train_batch_tokens, args.train_seq_len, rt.grad_accum_steps)
            local_tokens += y.numel()
            with rt.autocast():
                loss = model(x, y)
            total += loss.detach()
            (loss / rt.grad_accum_steps).backward()
        return total / rt.grad_accum_steps

    local_tokens = 0  # training tokens this rank has consumed, counted so the result reports what happened

    # ---- Warmup: compile and prime every path, then restore the initial weights, optimizer state and data
    # order, so the timed run starts from the true initialization and its clock excludes compilation.
    train_loader = new_loader()
    if args.warmup_steps > 0:
        initial_model = {k: v.detach().cpu().clone() for k, v in base_model.state_dict().items()}
        initial_optimizers = [copy.deepcopy(opt.state_dict()) for opt in optimizers]
        for warmup_step in range(args.warmup_steps):
            zero_grad()
            forward_backward()
            for opt in optimizers:
                opt.step()
            if args.warmup_steps <= 20 or (warmup_step + 1) % 10 == 0 or warmup_step + 1 == args.warmup_steps:
                log0(f"warmup_step:{warmup_step + 1}/{args.warmup_steps}")
        zero_grad()
        base_model.load_state_dict(initial_model, strict=True)
        for opt, state in zip(optimizers, initial_optimizers, strict=True):
            opt.load_state_dict(state)
        train_loader = new_loader()
        local_tokens = 0

    # ---- Main loop. train_time counts only training: validation pauses the clock.
    max_wallclock_ms = 1000.0 * args.max_wallclock_seconds if args.max_wallclock_seconds > 0 else None
    early_abort = args.early_abort_step > 0 and args.early_abort_bpb > 0
    training_time_ms = 0.0
    stop_after_step: int | None = None
    curve: list[dict[str, float]] = []
    step = 0
    rt.sync()
    t0 = time.perf_counter()
    while True:
        last_step = step == args.iterations or (stop_after_step is not None and step >= stop_after_step)
        at_abort_step = early_abort and step == args.early_abort_step
        if last_step or at_abort_step or (args.val_loss_every > 0 and step % args.val_loss_every == 0):
            rt.sync()
            training_time_ms += 1000.0 * (time.perf_counter() - t0)
            val_loss, val_bpb = evaluate(args, model, rt, val_tokens, byte_counter)
            log0(f"step:{step}/{args.iterations} val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} "
                 f"train_time:{training_time_ms:.0f}ms step_avg:{training_time_ms / max(step, 1):.2f}ms")
            curve.append({"step": step, "val_bpb": val_bpb})
            result.update(steps=step, train_ms=training_time_ms, curve=curve,
                          pre_quant_val_loss=val_loss, pre_quant_val_bpb=val_bpb)
            if not math.isfinite(val_loss):
                log0(f"training_diverged: step:{step} val_loss:{val_loss}")
                raise TrainingDiverged(f"non-finite validation loss at step {step}")
            if at_abort_step and val_bpb > args.early_abort_bpb:
                log0(f"early_abort: step:{step} val_bpb:{val_bpb:.4f} threshold:{args.early_abort_bpb:.4f}")
                raise EarlyAbort(f"val_bpb {val_bpb:.4f} > {args.early_abort_bpb:.4f} at step {step}")
            rt.sync()
            t0 = time.perf_counter()

        if last_step:
            if stop_after_step is not None and step < args.iterations:
                log0(f"stopping_early: wallclock_cap train_time:{training_time_ms:.0f}ms "
                     f"step:{step}/{args.iterations}")
            break

        scale = lr_scale(args, step, training_time_ms + 1000.0 * (time.perf_counter() - t0), max_wallclock_ms)
        zero_grad()
        train_loss = forward_backward()
        for group in muon.param_groups:
            group["momentum"] = muon_momentum_at(args, step)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * scale
        if args.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(base_model.parameters(), args.grad_clip_norm)
        for opt in optimizers:
            opt.step()
        zero_grad()
        step += 1

        approx_ms = training_time_ms + 1000.0 * (time.perf_counter() - t0)
        log_now = step <= 10 or step % max(args.train_log_every, 1) == 0 or stop_after_step is not None
        if args.train_log_every > 0 and log_now:
            # Checked only when logged: reading the loss forces a GPU sync, and NaN weights stay NaN.
            loss_value = train_loss.item()
            log0(f"step:{step}/{args.iterations} train_loss:{loss_value:.4f} "
                 f"train_time:{approx_ms:.0f}ms step_avg:{approx_ms / step:.2f}ms")
            if rt.any_rank(not math.isfinite(loss_value)):
                result.update(steps=step, train_ms=approx_ms)
                log0(f"training_diverged: step:{step} train_loss:{loss_value}")
                raise TrainingDiverged(f"non-finite train loss at step {step}")
        reached_cap = max_wallclock_ms is not None and approx_ms >= max_wallclock_ms
        if rt.distributed and max_wallclock_ms is not None:
            reached_cap = rt.any_rank(reached_cap)  # every rank must stop at the same step
        if stop_after_step is None and reached_cap:
            stop_after_step = step

    if rt.device.type == "cuda":
        log0(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB "
             f"reserved: {torch.cuda.max_memory_reserved() // 2**20} MiB")
    tokens_seen = int(rt.all_reduce(torch.tensor(local_tokens, device=rt.device)).item())
    result.update(steps=step, train_ms=training_time_ms, peak_memory_mb=peak_memory_mb(rt.device),
                  tokens_per_step=tokens_seen // max(step, 1),
                  tokens_per_second=tokens_seen / max(training_time_ms / 1000.0, 1e-9))

    # ---- Export: quantize, compress, write next to the script; then score the model read back from disk.
    label = f"int{args.quant_bits}+{args.compressor}"
    model_path = here / f"final_model.int{args.quant_bits}.ptz"
    quant_obj, payload_bytes = quantize_state_dict(base_model.state_dict(), args.quant_bits)
    buffer = io.BytesIO()
    torch.save(quant_obj, buffer)
    raw = buffer.getvalue()
    code_bytes = len(code.encode("utf-8"))
    float_bytes = sum(t.numel() * t.element_size() for t in base_model.state_dict().values())
    if rt.master:
        model_path.write_bytes(compress(raw, args.compressor))
        model_bytes = model_path.stat().st_size
        log0(f"Code size: {code_bytes} bytes")
        log0(f"Serialized model {label}: {model_bytes} bytes (payload:{payload_bytes} raw_torch:{len(raw)} "
             f"payload_ratio:{float_bytes / max(payload_bytes, 1):.2f}x)")
        log0(f"Total submission size {label}: {model_bytes + code_bytes} bytes")
        result.update(code_bytes=code_bytes, model_bytes=model_bytes, artifact_bytes=model_bytes + code_bytes)
    if rt.distributed:
        dist.barrier()  # the file is complete before any rank reads it
    restored_bytes = decompress(model_path.read_bytes(), args.compressor)
    restored = torch.load(io.BytesIO(restored_bytes), map_location="cpu")
    base_model.load_state_dict(dequantize_state_dict(restored), strict=True)
    rt.sync()
    t_eval = time.perf_counter()
    q_val_loss, q_val_bpb = evaluate(args, model, rt, val_tokens, byte_counter)
    rt.sync()
    eval_ms = 1000.0 * (time.perf_counter() - t_eval)
    tag = f"final_int{args.quant_bits}_{args.compressor}_roundtrip"
    log0(f"{tag} val_loss:{q_val_loss:.4f} val_bpb:{q_val_bpb:.4f} eval_time:{eval_ms:.0f}ms")
    log0(f"{tag}_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
    result.update(val_loss=q_val_loss, val_bpb=q_val_bpb, eval_ms=eval_ms)
    if not math.isfinite(q_val_loss):
        raise TrainingDiverged("non-finite loss after the export round trip")


if __name__ == "__main__":
    run_result = ResultFile(os.environ.get("PGOLF_RESULT_JSON", ""))
    exit_code = 0
    try:
        main(run_result)
        run_result.write("ok")
    except StopRun as stop:
        print(f"{type(stop).__name__}: {stop}", file=sys.stderr, flush=True)
        run_result.write(stop.status, str(stop))
        exit_code = stop.exit_code
    except Exception as err:  # anything else is a crash: keep the traceback, record the reason
        traceback.print_exc()
        run_result.write("crashed", f"{type(err).__name__}: {err}")
        exit_code = 1
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    sys.exit(exit_code)
