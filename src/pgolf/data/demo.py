"""The offline demo corpus: real English from the interpreter's own documentation, in the challenge layout.

Documents are the `pydoc_data` topics and, per standard-library module, its docstrings (read with `ast`,
never imported). About one document in ten is held out for validation by a hash of its name. A
SentencePiece BPE tokenizer (vocab 1024, byte fallback) is trained on the training documents with
settings under which decoding returns the original text byte for byte, so the canonical byte count of the
validation split equals the UTF-8 length of its documents. Shards mirror `datasets/fineweb10B_sp1024`:
BOS=1 before every document, `fineweb_val_000000.bin` and `fineweb_train_00000N.bin`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import os
import sys
import sysconfig
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgolf import statefile
from pgolf.atomic import atomic_write_text
from pgolf.data.shards import BOS_ID, read_header, write_shard
from pgolf.errors import DataError

DATASET_NAME = "pydocs_sp1024"
TOKENIZER_NAME = "pydocs_1024_bpe"
VOCAB_SIZE = 1024
MANIFEST_NAME = "demo.json"
# Bump when the corpus, tokenizer settings or layout change: a cached build of another format is rebuilt.
FORMAT_VERSION = 1
VAL_EVERY = 10  # one document in VAL_EVERY (by name hash) is held out
TRAIN_SHARD_TOKENS = 400_000
_SENTENCE_MAX_BYTES = 4000  # SentencePiece skips training "sentences" longer than 4192 bytes
_SKIP_DIRS = {"site-packages", "test", "tests", "idle_test", "idlelib", "lib2to3"}
_META_SPACE = "\u2581"  # SentencePiece's space symbol; text holding it cannot round-trip


@dataclass(frozen=True)
class Document:
    """One demo document: a stable name and its text."""

    name: str
    text: str


@dataclass(frozen=True)
class DemoDataset:
    """A built demo dataset: where its shards and tokenizer are, and how big it is."""

    root: Path
    dataset_dir: Path
    tokenizer_path: Path
    docs_train: int
    docs_val: int
    tokens_train: int
    tokens_val: int
    val_text_bytes: int
    reused: bool

    @property
    def val_glob(self) -> str:
        return str(self.dataset_dir / "fineweb_val_*.bin")

    @property
    def train_glob(self) -> str:
        return str(self.dataset_dir / "fineweb_train_*.bin")

    @property
    def vocab_size(self) -> int:
        return VOCAB_SIZE


@functools.cache
def collect_documents() -> tuple[Document, ...]:
    """Every demo document, in a fixed order: pydoc topics, then stdlib modules by path (cached)."""
    import pydoc_data.topics

    docs = [Document(f"pydoc:{key}", pydoc_data.topics.topics[key]) for key in sorted(pydoc_data.topics.topics)]
    docs.extend(_stdlib_docstring_documents())
    # Stripped: the byte rule gives no byte to a leading space right after BOS.
    return tuple(d for d in (Document(d.name, d.text.strip()) for d in docs) if _usable(d.text))


def is_val_document(name: str) -> bool:
    """Whether the document named `name` belongs to the validation split (stable across runs)."""
    return zlib.crc32(name.encode("utf-8")) % VAL_EVERY == 0


def build_demo_dataset(
    out: Path, *, force: bool = False, progress: Callable[[str], None] | None = None
) -> DemoDataset:
    """Build (or reuse, when an identical build exists) the demo dataset and tokenizer under `out`."""
    out = Path(out)
    say = progress or (lambda _msg: None)
    dataset_dir = out / "datasets" / DATASET_NAME
    tokenizer_path = out / "tokenizers" / f"{TOKENIZER_NAME}.model"
    if not force:
        cached = _load_cached(out, dataset_dir, tokenizer_path)
        if cached is not None:
            say("reusing the existing build")
            return cached
    try:
        dataset_dir.mkdir(parents=True, exist_ok=True)
        tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{out}: cannot create the dataset folders ({err.strerror})") from None

    say("collecting documents from pydoc topics and stdlib docstrings")
    docs = collect_documents()
    val_docs = [d for d in docs if is_val_document(d.name)]
    train_docs = [d for d in docs if not is_val_document(d.name)]
    say(f"training the tokenizer on {len(train_docs)} documents")
    sp = _train_tokenizer(train_docs, tokenizer_path)

    say("writing shards")
    for stale in dataset_dir.glob("fineweb_*.bin"):
        stale.unlink()
    val_tokens = _encode_stream(sp, val_docs)
    write_shard(dataset_dir / "fineweb_val_000000.bin", val_tokens)
    train_tokens = _encode_stream(sp, train_docs)
    for index, shard in enumerate(_split_at_documents(train_tokens, TRAIN_SHARD_TOKENS)):
        write_shard(dataset_dir / f"fineweb_train_{index:06d}.bin", shard)

    result = DemoDataset(
        root=out, dataset_dir=dataset_dir, tokenizer_path=tokenizer_path,
        docs_train=len(train_docs), docs_val=len(val_docs),
        tokens_train=int(train_tokens.size), tokens_val=int(val_tokens.size),
        val_text_bytes=sum(len(d.text.encode("utf-8")) for d in val_docs), reused=False,
    )
    _write_manifest(dataset_dir, tokenizer_path, result)
    return result


def _stdlib_docstring_documents() -> Iterator[Document]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if _SKIP_DIRS.intersection(rel.parts[:-1]):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        parts = [
            doc for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and (doc := ast.get_docstring(node))
        ]
        if parts:
            yield Document(f"stdlib:{rel.as_posix()}", "\n\n".join(parts))


def _usable(text: str) -> bool:
    if not text or _META_SPACE in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates in a docstring
        return False
    return True


def _training_sentences(docs: list[Document]) -> Iterator[str]:
    # Paragraphs keep their newlines, so "\n" becomes a piece instead of a byte-fallback token.
    for doc in docs:
        for para in doc.text.split("\n\n"):
            if len(para.encode("utf-8")) < _SENTENCE_MAX_BYTES:
                yield para + "\n\n"


def _train_tokenizer(docs: list[Document], model_path: Path):  # -> SentencePieceProcessor
    import sentencepiece as spm

    model = io.BytesIO()  # through a writer, so the output path is not recorded in the model
    # identity normalization, kept whitespace and no dummy prefix: decode(encode(text)) == text.
    # No whitespace-only pieces: a piece like "▁▁" would break the canonical byte tables.
    spm.SentencePieceTrainer.train(
        sentence_iterator=_training_sentences(docs), model_writer=model, model_type="bpe",
        vocab_size=VOCAB_SIZE, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=False, split_digits=True,
        allow_whitespace_only_pieces=False, character_coverage=0.9999,
        pad_id=0, bos_id=BOS_ID, eos_id=2, unk_id=3,
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=1, minloglevel=2,
    )
    model_path.write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n" for i in range(sp.vocab_size()))
    model_path.with_suffix(".vocab").write_text(vocab, encoding="utf-8")
    return sp


def _encode_stream(sp, docs: list[Document]) -> np.ndarray:
    ids = sp.encode([d.text for d in docs])
    stream = np.empty(sum(len(x) + 1 for x in ids), dtype=np.uint16)
    pos = 0
    for piece_ids in ids:
        stream[pos] = BOS_ID
        stream[pos + 1 : pos + 1 + len(piece_ids)] = piece_ids
        pos += 1 + len(piece_ids)
    return stream


def _split_at_documents(tokens: np.ndarray, target: int) -> list[np.ndarray]:
    """Cut a BOS-separated stream into shards of about `target` tokens, each starting at a document."""
    starts = np.flatnonzero(tokens == BOS_ID)
    cuts = [0]
    for start in starts:
        if start - cuts[-1] >= target:
            cuts.append(int(start))
    cuts.append(tokens.size)
    return [tokens[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=False) if b > a]


def _fingerprint() -> dict[str, object]:
    return {"format": FORMAT_VERSION, "python": sys.version}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_manifest(dataset_dir: Path, tokenizer_path: Path, ds: DemoDataset) -> None:
    files = sorted(dataset_dir.glob("fineweb_*.bin")) + [tokenizer_path]
    manifest = {
        **_fingerprint(),
        "docs_train": ds.docs_train, "docs_val": ds.docs_val,
        "tokens_train": ds.tokens_train, "tokens_val": ds.tokens_val,
        "val_text_bytes": ds.val_text_bytes,
        "sha256": {os.path.relpath(p, ds.root): _sha256(p) for p in files},
    }
    atomic_write_text(dataset_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")


def _load_cached(out: Path, dataset_dir: Path, tokenizer_path: Path) -> DemoDataset | None:
    """The existing build when its manifest matches this Python and format and every file is intact."""
    try:
        manifest = statefile.load_json(dataset_dir / MANIFEST_NAME, want=dict)
        if any(manifest.get(k) != v for k, v in _fingerprint().items()):
            return None
        recorded = manifest["sha256"]
        on_disk = sorted(dataset_dir.glob("fineweb_*.bin")) + [tokenizer_path]
        if {os.path.relpath(p, out) for p in on_disk} != set(recorded):
            return None
        for rel, digest in recorded.items():
            path = out / rel
            if path.suffix == ".bin":
                read_header(path)
            if _sha256(path) != digest:
                return None
        return DemoDataset(
            root=out, dataset_dir=dataset_dir, tokenizer_path=tokenizer_path,
            docs_train=int(manifest["docs_train"]), docs_val=int(manifest["docs_val"]),
            tokens_train=int(manifest["tokens_train"]), tokens_val=int(manifest["tokens_val"]),
            val_text_bytes=int(manifest["val_text_bytes"]), reused=True,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, DataError):
        return None
