"""What the Parameter Golf leaderboard proved: techniques with their typical effect and costs.

Every number comes from the public records (their READMEs and the challenge README's leaderboard):
`bpb_gain` is the typical reduction in val_bpb a record attributed to the technique on the stack it was
added to (the gain shrinks as the stack improves). The heuristic grader matches research items against
these entries by keyword; the verifier quotes `hint` and `risk` in its briefs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

SizeCost = Literal["saves", "none", "small", "large"]
TimeCost = Literal["none", "small", "moderate", "large"]


@dataclass(frozen=True)
class Technique:
    """One technique the leaderboard used, how much it helped and what it cost."""

    key: str
    name: str
    keywords: tuple[str, ...]  # regular expressions, matched case-insensitively on word boundaries
    bpb_gain: float
    size_cost: SizeCost
    time_cost: TimeCost
    evidence: tuple[str, ...]
    hint: str
    risk: str = ""
    category: str = "training"

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """One compiled pattern matching any of the keywords."""
        return re.compile(r"(?<![a-z0-9])(?:" + "|".join(self.keywords) + r")(?![a-z0-9])", re.I)

    def matches(self, text: str) -> bool:
        """True when `text` mentions this technique."""
        return bool(self.pattern.search(text))


CATALOG: tuple[Technique, ...] = (
    Technique(
        "int6_quant", "int6 / mixed int8-int6 quantization",
        (r"int6", r"6[- ]bit", r"mixed[- ]precision quant\w*", r"mixed int8", r"low[- ]bit quantization",
         r"post[- ]training quantization", r"weight quantization"),
        0.0097, "saves", "none",
        ("2026-03-19_10L_MixedPrecision (1.2244 -> 1.2147)", "2026-03-19_MixedQuant_Int6Int8_SlidingWindow"),
        "Quantize block weights to int6 per row (int8 container) and keep embeddings at int8; spend the "
        "freed bytes on depth or MLP width.", category="quantization"),
    Technique(
        "int5_quant", "int5 MLP weights",
        (r"int5", r"5[- ]bit"), 0.004, "saves", "none",
        ("2026-03-20_10L_Int5MLP_MuonWD04_SWA50 (1.1428)",),
        "Quantize MLP weights to int5 and attention to int6, keeping the bytes for a larger BigramHash.",
        category="quantization"),
    Technique(
        "ternary_binary", "ternary / 1-bit weights",
        (r"ternary", r"binary[- ]weight\w*", r"1[- ]bit", r"1\.58[- ]bit", r"bitnet", r"xnor"),
        0.0, "saves", "moderate",
        ("Ternary Quantization 1.1570 (73.7M params)", "1 Bit Quantization 1.1239 (non-record, 2 h)"),
        "Train with ternary/binary weights from the start to fit 70M+ parameters in 16 MB.",
        "Far more parameters need far more steps than 600 s allow; strong only on the unlimited track.",
        category="quantization"),
    Technique(
        "gptq", "GPTQ (full Hessian, self-generated calibration)",
        (r"gptq", r"hessian[- ]aware quant\w*", r"optimal brain quant\w*", r"obq", r"error compensation"),
        0.0046, "none", "small",
        ("2026-03-25_ValCalib_GPTQ_XSA_BigramHash3072 (1.1194 -> 1.1147)",
         "2026-03-29_Loader_FullGPTQ_XSA11_BigramHash2816"),
        "Quantize each matrix with GPTQ's Cholesky error compensation, calibrating on text the model "
        "generates itself after training.",
        "Calibration must not read validation or training data at evaluation time.", category="quantization"),
    Technique(
        "gptq_lite", "GPTQ-lite clip search / SD-clip",
        (r"gptq[- ]lite", r"clip percentile\w*", r"sd[- ]?clip", r"optimal clip\w*", r"clipping search"),
        0.0006, "none", "none",
        ("2026-03-22_11L_EMA_GPTQ-lite_warmdown3500_QAT015 (-0.0006)",
         "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2"),
        "Per row, try a few clip percentiles (or a multiple of the row's std) and keep the one with the "
        "lowest reconstruction error.", category="quantization"),
    Technique(
        "qat", "quantization-aware training (STE, late QAT)",
        (r"qat", r"quantization[- ]aware", r"straight[- ]through estimator", r"ste", r"fake quant\w*"),
        0.003, "none", "small",
        ("2026-03-19_Seq2048_FP16Emb_TunedLR (quant gap 0.0000)", "Late QAT@0.15 (-0.0001)"),
        "Fake-quantize weights with a straight-through estimator during the last part of training so "
        "the export loses nothing.",
        "torch.compile can constant-fold a late-enabled QAT flag (one record shipped it inactive).",
        category="quantization"),
    Technique(
        "lqer", "LQER low-rank quantization error repair",
        (r"lqer", r"low[- ]rank (?:quantization )?error", r"low[- ]rank correction"),
        0.002, "small", "none",
        ("2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611",),
        "Store a small low-rank correction of the largest quantization errors next to the int6 weights.",
        category="quantization"),
    Technique(
        "compression", "better entropy coding of the artifact (zstd-22, lzma, brotli, row sorting)",
        (r"zstd", r"lzma", r"brotli", r"entropy cod\w*", r"lossless compression"),
        0.002, "saves", "none",
        ("int6 + zstd-22 records from 2026-03-19 on", "per-group lrzip, 1.0611"),
        "Compress the quantized weights with zstd level 22 or lzma, ordering rows so neighbours are close.",
        category="quantization"),
    Technique(
        "ema_swa", "EMA / SWA weight averaging",
        (r"ema", r"exponential moving average", r"swa", r"stochastic weight averag\w*",
         r"weight averag\w*", r"checkpoint averag\w*"),
        0.002, "none", "none",
        ("2026-03-20_11L_XSA4_EMA (EMA replacing SWA)", "2026-03-22 EMA decay 0.997 (-0.0006)"),
        "Keep an EMA of the weights (decay about 0.997) and export it instead of the last step.",
        category="training"),
    Technique(
        "sliding_window_eval", "sliding-window evaluation",
        (r"sliding[- ]window eval\w*", r"strided eval\w*", r"sliding window", r"stride[- ]?64"),
        0.032, "none", "small",
        ("2026-03-19_SlidingWindowEval (1.2244 -> 1.1925)",),
        "Score overlapping windows with stride 64 so every token sees close to a full context.",
        "Eval time grows with 1/stride; keep the full evaluation under its 600 s.", category="evaluation"),
    Technique(
        "legal_ttt", "score-first (legal) test-time training",
        (r"test[- ]time training", r"ttt", r"score[- ]first", r"test[- ]time adaptation",
         r"dynamic evaluation", r"online adaptation"),
        0.0025, "none", "moderate",
        ("2026-03-23_LeakyReLU_LegalTTT_ParallelMuon (TTT gain -0.0025)",
         "2026-04-06_SP8192_QK5_LegalTTT_1.0828"),
        "At evaluation, score each chunk first and only then take SGD steps on it, never on unscored tokens.",
        "Training on tokens before they are scored is invalid; TTT costs 300-500 s of the eval budget.",
        category="evaluation"),
    Technique(
        "lora_ttt", "LoRA / phased test-time training",
        (r"lora ttt", r"lora[- ]based test[- ]time", r"phased ttt", r"per[- ]document lora",
         r"global sgd ttt", r"low[- ]rank adapt\w* at (?:test|eval)\w*"),
        0.004, "none", "moderate",
        ("2026-03-17_LoRA_TTT (1.1929)", "2026-04-13_VarLenAttn_PhasingTTT2000 (1.0728)",
         "2026-04-14_MultiPhaseGlobalSGD_PhasedTTT (1.0719)"),
        "Adapt rank-8 LoRA adapters per document after scoring each chunk, resetting between documents.",
        "Must stay score-first and reset per document; eval time is the binding constraint.",
        category="evaluation"),
    Technique(
        "depth_recurrence", "depth recurrence / looped layers",
        (r"depth recurren\w*", r"recurrent depth", r"looped (?:layers|transformer\w*)", r"layer loop\w*",
         r"weight[- ]shar\w* across layers", r"universal transformer\w*", r"loop45", r"layer reuse"),
        0.006, "saves", "moderate",
        ("2026-03-31_ParallelResiduals_MiniDepthRecurrence (-0.0059)",
         "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2"),
        "Repeat a couple of middle layers (e.g. 4 and 5) twice, so depth grows without stored bytes.",
        "Full recurrence lost to a flat model (non-record study, +0.025); only a mini loop paid off.",
        category="architecture"),
    Technique(
        "parallel_residuals", "parallel residual lanes",
        (r"parallel residual\w*", r"parallel attention and mlp", r"parallel (?:attn|attention)[/ ]mlp"),
        0.003, "none", "none",
        ("2026-03-31_ParallelResiduals_MiniDepthRecurrence", "2026-04-08_SP8192_ParallelResid_ScoreFirstTTT"),
        "From a late layer on, run attention and MLP on the same input and add both to the residual.",
        category="architecture"),
    Technique(
        "xsa", "exclusive self-attention (XSA)",
        (r"xsa", r"exclusive self[- ]attention"),
        0.004, "none", "small",
        ("2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271", "XSA on all layers, 1.1147"),
        "Subtract each token's own value projection from the attention output in the deepest layers.",
        category="architecture"),
    Technique(
        "smeargate", "SmearGate",
        (r"smear[- ]?gate", r"token smearing"),
        0.003, "small", "none",
        ("SmearGate + OrthoInit + Muon WD 1.1556", "BOS-fixed SmearGate, 1.0611"),
        "Blend each token's embedding with the previous token's through a learned gate (zero at BOS).",
        "The gate must not mix across document boundaries (the BOS fix).", category="architecture"),
    Technique(
        "bigramhash", "BigramHash embeddings",
        (r"bigram[- ]?hash", r"hashed bigram\w*", r"bigram embedding\w*", r"n[- ]gram embedding\w*",
         r"hash embedding\w*"),
        0.004, "small", "none",
        ("2026-03-20_10L_Int5MLP BigramHash(10240)", "BigramHash 3072x112, 1.1147"),
        "Add a hashed table of previous-token/current-token pairs to the input embedding.",
        category="architecture"),
    Technique(
        "gated_attention", "gated attention / attention output gate",
        (r"gated attention", r"attention (?:output )?gate\w*", r"sparse ?attn ?gate", r"quant[- ]?gate",
         r"head gat\w*"),
        0.002, "small", "small",
        ("2026-04-19_SP8192_CaseOps_GatedAttn_QuantGate (1.0655)", "SparseAttnGate, 1.0634"),
        "Multiply each head's attention output by a learned sigmoid gate of the input.",
        category="architecture"),
    Technique(
        "partial_rope", "partial RoPE / QK gain / LN scale",
        (r"partial rope", r"partial rotary", r"qk[- ]gain", r"ln scale", r"layer[- ]?norm scal\w*",
         r"qk[- ]norm\w*"),
        0.0025, "none", "none",
        ("2026-03-21_11L_XSA4_EMA_PartialRoPE (-0.0023)", "QK-Gain 5.0, 1.0828"),
        "Rotate only 16 of 64 head dimensions and initialise the query-key gain at 5.",
        category="architecture"),
    Technique(
        "activation", "activation changes (LeakyReLU squared)",
        (r"leaky ?relu", r"relu\^?2", r"relu squared", r"squared relu", r"swiglu"),
        0.003, "none", "none",
        ("2026-03-23_LeakyReLU_LegalTTT_ParallelMuon (-0.003)",),
        "Use leaky_relu(x, 0.5) squared in the MLP instead of relu squared.", category="architecture"),
    Technique(
        "mlp_width", "wider MLP paid for by quantization",
        (r"mlp ?3x", r"mlp ?4x", r"mlp[_ ]mult", r"wider mlp"),
        0.004, "large", "small",
        ("2026-03-19_MixedQuant_Int6Int8 (MLP 3x)", "SP4096 + 4x MLP, 1.0979"),
        "Widen the MLP to 3-4x once int6 frees the bytes.", category="architecture"),
    Technique(
        "tokenizer_vocab", "larger tokenizer vocabulary (sp4096, sp8192)",
        (r"sp4096", r"sp8192", r"vocab(?:ulary)? size", r"larger vocabular\w*", r"4096[- ]vocab",
         r"8192[- ]vocab", r"tokeni[sz]er"),
        0.012, "large", "small",
        ("4096-Vocab + Larger Model 1.0979", "2026-04-05_SP8192_GPTQ-Embeddings (1.0856)"),
        "Retrain on the sp8192 export and quantize the larger embedding with GPTQ.",
        "A new tokenizer must keep byte-exact BPB accounting; embeddings cost bytes.", category="tokenizer"),
    Technique(
        "caseops", "CaseOps lossless case transform",
        (r"caseops", r"case[- ]operator\w*", r"case transform\w*", r"lossless case"),
        0.004, "none", "none",
        ("2026-04-18_PR1626_CaseOps_Taper (1.0678)",),
        "Lower-case the text with reversible case-operator tokens, scoring bytes through byte sidecars.",
        "Needs per-token byte sidecars, or the BPB is wrong.", category="tokenizer"),
    Technique(
        "muon", "Muon optimizer variants (MuonEq-R, Parallel Muon, PolarNS, momentum)",
        (r"muon\w*", r"newton[- ]schulz", r"polar express", r"orthogonali[sz]ed (?:update|gradient)\w*",
         r"shampoo", r"soap optimi[sz]er"),
        0.0015, "none", "small",
        ("2026-04-03_MuonEqR_DepthRecurrence", "Muon momentum 0.97 (-0.0012)", "PolarNS, 1.0634"),
        "Row-normalise Muon's update (MuonEq-R) and tune momentum around 0.97.", category="optimizer"),
    Technique(
        "weight_decay", "weight decay tuned for compression",
        (r"weight decay", r"wd[= ]0\.\d+", r"decoupled decay"),
        0.002, "saves", "none",
        ("MuonEq-R + WD=0.090 all-int6 (1.0912)", "CaseOps + tapered WD (1.0678)"),
        "Raise weight decay (about 0.09 with Muon) so the weights compress well enough for all-int6.",
        category="optimizer"),
    Technique(
        "warmdown", "warmdown / learning-rate schedule tuning",
        (r"warmdown", r"learning[- ]rate schedul\w*", r"lr schedul\w*", r"cooldown", r"wsd schedul\w*",
         r"warmup[- ]stable[- ]decay", r"learning[- ]rate tun\w*", r"lower lr"),
        0.009, "none", "none",
        ("2026-03-19_WarmdownQuantization (quant penalty 0.014 -> 0.005)", "warmdown3500 (-0.0002)"),
        "Decay the learning rate over a long final phase so the weights settle before quantization.",
        category="optimizer"),
    Technique(
        "long_context", "longer training context",
        (r"long(?:er)? context", r"seq(?:uence)?[- ]?len\w* (?:2048|4096)", r"seq2048", r"seq4096",
         r"context length"),
        0.019, "none", "small",
        ("2026-03-18_LongContextSeq2048 (1.2244 -> 1.2058)", "2026-03-19_TrainingOptSeq4096 (1.2014)"),
        "Train at sequence length 2048 with learning rates retuned for it.", category="training"),
    Technique(
        "varlen_attention", "variable-length attention and fused kernels",
        (r"varlen", r"variable[- ]length attention", r"flash[- ]?attention", r"fa3", r"fused (?:mlp|kernel\w*)",
         r"triton kernel\w*", r"document[- ]masked attention"),
        0.002, "none", "none",
        ("2026-04-10_VarLenAttn (1.0734)",),
        "Attend within documents only (FA3 varlen) and fuse the MLP to buy training steps.",
        category="systems"),
    Technique(
        "data_loading", "data ordering / loader changes",
        (r"coprime[- ]stride", r"data loader", r"curriculum", r"data ordering"),
        0.001, "none", "none",
        ("2026-03-29_Loader_FullGPTQ_XSA11 (coprime-stride loader)",),
        "Draw training sequences with a coprime stride across shards for better mixing.", category="training"),
    Technique(
        "fp16_embedding", "fp16 tied embedding",
        (r"fp16 (?:tied )?embed\w*", r"tied embedding\w*", r"embedding precision"),
        0.005, "small", "none",
        ("fp16 Embed 1.2197",),
        "Keep the tied embedding in fp16 (or int8) since it is both input and output.",
        category="quantization"),
)

_BY_KEY = {t.key: t for t in CATALOG}


def technique(key: str) -> Technique:
    """The catalog entry with this key."""
    return _BY_KEY[key]


def match_techniques(text: str) -> list[Technique]:
    """Every catalog technique `text` mentions, in catalog order."""
    return [t for t in CATALOG if t.matches(text)]
