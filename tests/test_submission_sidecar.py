"""A byte sidecar (CaseOps-style) checked against the tokenizer's decode, on real tokenizers trained here.

The case transform is our own: ASCII words are lower-cased behind private-use markers (TITLE, ALLCAPS,
CAPNEXT), which are user-defined pieces of a SentencePiece model trained in tmp_path. The "correct" sidecar is
built the way an exporter builds one (each piece's original text, a multi-byte character's bytes on the last
byte piece of its run), and first proven right: per document it sums to the original UTF-8 length.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pgolf.data.shards import BOS_ID, write_shard
from pgolf.errors import DataError
from pgolf.rules import TRACK_10MIN_16MB
from pgolf.scoring.luts import build_luts, token_bytes
from pgolf.submission.checks import FAIL, PASS, UNKNOWN, WARN, CheckOptions, run_checks
from pgolf.submission.folder import load_path
from pgolf.submission.sidecar import verify_sidecar

TITLE, ALLCAPS, CAPNEXT, ESC = "\ue001", "\ue002", "\ue003", "\ue004"
MARKERS = (TITLE, ALLCAPS, CAPNEXT, ESC)
_WORDS = ("the", "model", "learns", "bytes", "of", "text", "and", "a", "tokenizer", "splits", "words", "into",
          "pieces", "nasa", "launch", "golf", "parameter", "score", "validation", "loss", "is", "low", "we",
          "train", "for", "ten", "minutes", "on", "eight", "gpus", "iphone", "open", "source", "data")
SCRIPT = (Path(__file__).parent / "fixtures" / "lut_scripts" / "canonical.py").read_text()
# A fake loader of our own: the pattern that makes the denominator come from a sidecar.
SIDECAR_SCRIPT = SCRIPT + '''

def load_val_byte_counts(pattern):
    import glob
    files = sorted(glob.glob(pattern.replace("fineweb_val_", "fineweb_val_bytes_")))
    return np.concatenate([np.fromfile(f, dtype="<u2", offset=1024) for f in files])
'''


def case_encode(text: str) -> str:
    """Lower-case every ASCII word, marking what it was: Title, ALLCAPS, or each capital of a mixed word; a
    marker character already in the text is escaped."""
    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        if w.islower():
            return w
        if w[0].isupper() and (len(w) == 1 or w[1:].islower()):
            return TITLE + w.lower()
        if w.isupper():
            return ALLCAPS + w.lower()
        return "".join(CAPNEXT + c.lower() if c.isupper() else c for c in w)
    return re.sub(r"[A-Za-z]+", word, "".join(ESC + c if c in MARKERS else c for c in text))


_CODE = re.compile(f"{ESC}(.)|{TITLE}([a-z])|{ALLCAPS}([a-z]+)|{CAPNEXT}([a-z])", re.DOTALL)


def case_decode(text: str) -> str:
    def undo(m: re.Match[str]) -> str:
        literal, title, caps, capital = m.groups()
        return literal if literal is not None else (title or caps or capital).upper()
    return _CODE.sub(undo, text)


def _sentence(rng: random.Random, foreign: bool) -> str:
    words = []
    for _ in range(rng.randint(4, 12)):
        w = rng.choice(_WORDS)
        form = rng.random()
        w = w.title() if form < 0.25 else w.upper() if form < 0.35 else "iPhone" if w == "iphone" else w
        words.append(w)
    if foreign:  # characters no training text has: byte-fallback pieces
        words.insert(rng.randint(0, len(words)), rng.choice(("日本", "café", "Zürich", "naïve", f"[{TITLE}]",
                                                              f"x{ESC}y")))
    return " ".join(words) + rng.choice((".", "!", ", 42.", "?"))


def _documents(seed: int, count: int, foreign: bool) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(_sentence(rng, foreign and i % 3 == 0) for i in range(rng.randint(2, 6))) for _ in range(count)]


def _train(path: Path, texts: list[str], symbols: tuple[str, ...]) -> Path:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=str(path), model_type="bpe", vocab_size=420,
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, split_digits=True, user_defined_symbols=list(symbols), hard_vocab_limit=False,
        pad_id=0, bos_id=BOS_ID, eos_id=2, unk_id=3, character_coverage=1.0, num_threads=1, minloglevel=2)
    return path.with_suffix(".model")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("tok")
    texts = _documents(1, 300, foreign=False)
    return {"caseops": _train(where / "caseops", [case_encode(t) for t in texts], MARKERS),
            "plain": _train(where / "plain", texts, ())}


def _exporter_bytes(sp, ids: list[int]) -> list[int]:
    """Original bytes per piece as an exporter counts them: the piece's text without markers (a marker after
    the escape is text); a byte-fallback run's bytes all on its last piece."""
    counts = []
    for i, t in enumerate(ids):
        if sp.is_byte(t):
            last = i + 1 == len(ids) or not sp.is_byte(ids[i + 1])
            run = 0
            while last and i - run >= 0 and sp.is_byte(ids[i - run]):
                run += 1
            counts.append(run)
        else:
            piece = sp.id_to_piece(t).replace("\u2581", " ")
            literal = i > 0 and sp.id_to_piece(ids[i - 1]) == ESC
            counts.append(len("".join(c for c in piece if literal or c not in MARKERS).encode()))
    return counts


def _export(sp, docs: list[str], transform) -> tuple[np.ndarray, np.ndarray]:
    """The validation stream (BOS per document) and its sidecar."""
    tokens, side = [], []
    for doc in docs:
        ids = sp.encode(transform(doc))
        tokens += [BOS_ID, *ids]
        side += [0, *_exporter_bytes(sp, ids)]
    return np.array(tokens, dtype=np.uint16), np.array(side, dtype=np.uint16)


def _val_dir(where: Path, tokens: np.ndarray, side: np.ndarray) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    write_shard(where / "fineweb_val_000000.bin", tokens)
    write_shard(where / "fineweb_val_bytes_000000.bin", side)
    return where


@pytest.fixture(scope="module")
def caseops(models: dict[str, Path]):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(models["caseops"]))
    docs = _documents(7, 40, foreign=True)
    tokens, side = _export(sp, docs, case_encode)
    return sp, docs, tokens, side


def test_the_correct_sidecar_sums_to_each_documents_original_bytes(caseops) -> None:
    sp, docs, tokens, side = caseops
    starts = [*np.flatnonzero(tokens == BOS_ID), len(tokens)]
    for doc, lo, hi in zip(docs, starts, starts[1:], strict=False):
        assert case_decode(sp.decode(tokens[lo + 1:hi].tolist())) == doc  # the transform is reversible
        assert int(side[lo:hi].sum()) == len(doc.encode("utf-8"))
    markers = {sp.piece_to_id(m) for m in MARKERS}
    assert markers & set(tokens.tolist()), "the documents use the control symbols"
    assert any(sp.is_byte(int(t)) for t in tokens), "and byte-fallback pieces"
    assert any(TITLE in d for d in docs) and any(ESC in d for d in docs), "and marker characters as text"


def test_a_correct_caseops_sidecar_passes(caseops, models: dict[str, Path], tmp_path: Path) -> None:
    _, docs, tokens, side = caseops
    report = verify_sidecar(_val_dir(tmp_path, tokens, side), models["caseops"])
    assert report.status == PASS, report.summary
    assert report.decoded_bytes == report.sidecar_bytes == sum(len(d.encode()) for d in docs)
    assert report.summary.startswith("sidecar matches the tokenizer's decode: ") and report.mismatches == 0
    # the tables alone (control symbols at their 3 UTF-8 bytes) would count more than the text has
    luts = build_luts(models["caseops"])
    assert int(token_bytes(tokens[:-1], tokens[1:], luts).sum()) > report.decoded_bytes


def test_a_plain_tokenizer_whose_sidecar_is_the_lut_passes(models: dict[str, Path], tmp_path: Path) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(models["plain"]))
    docs = _documents(9, 30, foreign=True)
    tokens, _ = _export(sp, docs, lambda t: t)
    lut = np.concatenate(([0], token_bytes(tokens[:-1], tokens[1:], build_luts(sp)))).astype(np.uint16)
    report = verify_sidecar(_val_dir(tmp_path, tokens, lut), models["plain"])
    assert report.status == PASS, report.summary
    assert report.decoded_bytes == sum(len(d.encode()) for d in docs)


def test_control_symbols_counted_as_bytes_are_an_inflation(caseops, models: dict[str, Path], tmp_path: Path) -> None:
    sp, docs, tokens, side = caseops
    markers = np.isin(tokens, [sp.piece_to_id(m) for m in MARKERS])
    report = verify_sidecar(_val_dir(tmp_path, tokens, side + 3 * markers), models["caseops"])
    assert report.status == FAIL
    true_bytes = sum(len(d.encode()) for d in docs)
    factor = (true_bytes + 3 * int(markers.sum())) / true_bytes
    assert report.inflation == pytest.approx(factor - 1)
    assert "inflation" in report.summary and f"understated by a factor {factor:.6f}" in report.summary
    assert f"{int(markers.sum()):,} tokens differ ({int(markers.sum()):,} at control symbols)" in report.summary
    first = int(np.flatnonzero(markers)[0])
    assert any(e.startswith(f"fineweb_val_bytes_000000.bin[{first:,}]: token ") and "'\\ue00" in e
               and e.endswith("sidecar 3, decode 0") for e in report.evidence), report.evidence


def test_a_sidecar_one_entry_short_fails(caseops, models: dict[str, Path], tmp_path: Path) -> None:
    _, _, tokens, side = caseops
    report = verify_sidecar(_val_dir(tmp_path, tokens, side[:-1]), models["caseops"])
    assert report.status == FAIL
    assert report.summary.startswith(f"sidecar has {len(tokens) - 1:,} entries for {len(tokens):,} tokens")


def test_differences_that_cancel_are_a_warning(caseops, models: dict[str, Path], tmp_path: Path) -> None:
    sp, _, tokens, side = caseops
    plain = [i for i, t in enumerate(tokens.tolist()) if side[i] > 1 and not sp.is_byte(t)]
    moved = side.copy()
    moved[plain[3]] += 1
    moved[plain[10]] -= 1
    report = verify_sidecar(_val_dir(tmp_path, tokens, moved), models["caseops"])
    assert report.status == WARN and report.mismatches == 2
    assert report.summary.startswith("2 tokens differ from the tokenizer's decode")
    assert "not an inflation" in report.summary
    assert f"fineweb_val_bytes_000000.bin[{plain[3]:,}]" in report.evidence[1]


_SEPARATORS = (" ", " ", " ", "  ", "\n\n", " \n", "\t")


def _raw_documents(seed: int, count: int) -> list[tuple[list[str], list[str]]]:
    """ASCII words and the whitespace runs between them: raw text the challenge's tokenizer normalizes."""
    rng = random.Random(seed)
    docs = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 40))]
        docs.append((words, [rng.choice(_SEPARATORS) for _ in words[1:]]))
    return docs


def test_a_raw_bytes_sidecar_under_a_normalizing_tokenizer_is_flagged_not_failed(shared_data: Path,
                                                                                  tmp_path: Path) -> None:
    import sentencepiece as spm

    model = shared_data / "tokenizers" / "fineweb_1024_bpe.model"  # nmt_nfkc, extra whitespace removed
    sp = spm.SentencePieceProcessor(model_file=str(model))
    luts = build_luts(sp)
    tokens, side, raw_total = [], [], 0
    for words, gaps in _raw_documents(3, 60):
        raw = words[0] + "".join(g + w for g, w in zip(gaps, words[1:], strict=True))
        ids = sp.encode(raw)
        assert ids == sp.encode(" ".join(words)), "the tokenizer collapses each whitespace run to one space"
        stream = np.array([BOS_ID, *ids])
        counts = np.concatenate(([0], token_bytes(stream[:-1], stream[1:], luts))).astype(np.int64)
        spaced = np.flatnonzero(luts.has_leading_space[stream] & (np.arange(len(stream)) > 1))
        assert len(spaced) == len(gaps), "one leading-space token per separator"
        counts[spaced] += [len(g.encode()) - 1 for g in gaps]  # what an exporter of piece surfaces counts
        assert int(counts.sum()) == len(raw.encode())  # the raw document's bytes, exactly
        tokens += stream.tolist()
        side += counts.tolist()
        raw_total += len(raw.encode())
    tokens_arr, side_arr = np.array(tokens, dtype=np.uint16), np.array(side, dtype=np.uint16)
    report = verify_sidecar(_val_dir(tmp_path / "raw", tokens_arr, side_arr), model)
    assert report.status == WARN, report.summary
    assert report.sidecar_bytes == raw_total > report.decoded_bytes
    extra = raw_total - report.decoded_bytes
    assert report.summary.startswith(f"the sidecar counts {extra:,} bytes more than the tokens decode to "
                                     f"({(raw_total / report.decoded_bytes - 1) * 100:+.3f}%")
    assert "100% of the excess after whitespace" in report.summary and "not comparable" in report.summary
    # the same extra bytes on the documents' BOS tokens stand for no text at all
    moved = np.concatenate(([0], token_bytes(tokens_arr[:-1], tokens_arr[1:], luts))).astype(np.uint16)
    bos = np.flatnonzero(tokens_arr == BOS_ID)
    moved[bos] += extra // len(bos)
    failed = verify_sidecar(_val_dir(tmp_path / "bos", tokens_arr, moved), model)
    assert failed.status == FAIL and "stand for no text" in failed.summary, failed.summary


@pytest.mark.parametrize("chunk", [1 << 22, 5])
def test_a_byte_fallback_run_may_carry_its_bytes_on_any_piece(chunk: int, caseops, models: dict[str, Path],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pgolf.submission import sidecar

    monkeypatch.setattr(sidecar, "_CHUNK", chunk)  # tiny passes: their ends must never cut a run
    sp, _, tokens, side = caseops
    assert verify_sidecar(_val_dir(tmp_path / "last", tokens, side), models["caseops"]).status == PASS
    spread = side.copy()
    is_byte = np.array([sp.is_byte(int(t)) for t in tokens])
    spread[is_byte] = 1  # the canonical tables' 1 per byte piece instead of the run on its last piece
    assert not np.array_equal(spread, side)
    assert verify_sidecar(_val_dir(tmp_path, tokens, spread), models["caseops"]).status == PASS


@pytest.mark.parametrize("damage", ["missing", "garbage", "directory", "tokenizer", "not_a_folder", "no_shards",
                                    "empty"])
def test_broken_inputs_are_one_line(damage: str, caseops, models: dict[str, Path], tmp_path: Path) -> None:
    _, _, tokens, side = caseops
    val = _val_dir(tmp_path / "val", tokens, side)
    sidecar, model = val / "fineweb_val_bytes_000000.bin", models["caseops"]
    expected = {"missing": "has no byte sidecar fineweb_val_bytes_000000.bin", "garbage": "bad magic",
                "directory": "a directory", "tokenizer": "not a SentencePiece model",
                "not_a_folder": "not a folder", "no_shards": "no validation shards",
                "empty": "hold no tokens"}[damage]
    if damage == "missing":
        sidecar.unlink()
    elif damage == "garbage":
        sidecar.write_bytes(b"\x00garbage" * 300)
    elif damage == "directory":
        sidecar.unlink()
        sidecar.mkdir()
    elif damage == "tokenizer":
        model = tmp_path / "junk.model"
        model.write_bytes(b"this is not a protobuf \xff\xfe" * 10)
    elif damage == "not_a_folder":
        val = sidecar
    elif damage == "empty":
        val = _val_dir(tmp_path / "empty", tokens[:0], side[:0])
    else:
        (val / "fineweb_val_000000.bin").unlink()
    with pytest.raises(DataError) as err:
        verify_sidecar(val, model)
    assert expected in str(err.value) and "\n" not in str(err.value)


# -- through the checker and the CLI ------------------------------------------------------------------

def _folder(root: Path, script: str, data: tuple[np.ndarray, np.ndarray] | None = None,
            model: Path | None = None) -> Path:
    folder = root / "records" / "track_10min_16mb" / "2026-05-01_CaseFixture"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# fixture\n")
    (folder / "train_gpt.py").write_text(script)
    (folder / "train_seed1.log").write_text("val_bpb:byte_sidecar:enabled\nworld_size:8 seed:1\n")
    (folder / "submission.json").write_text(json.dumps({"author": "a", "github_id": "a", "name": "n",
                                                        "date": "2026-05-01", "val_bpb": 1.1}))
    if data is not None:
        _val_dir(folder / "data", *data)
    if model is not None:
        (folder / "tokenizer.model").write_bytes(model.read_bytes())
    return folder


def _lut(folder: Path, **options: object):
    results = run_checks(load_path(folder), TRACK_10MIN_16MB, CheckOptions(**options))  # type: ignore[arg-type]
    return next(r for r in results if r.name == "lut_audit")


def test_the_check_verifies_the_sidecar_when_given_the_data(caseops, models: dict[str, Path], tmp_path: Path) -> None:
    sp, _, tokens, side = caseops
    folder = _folder(tmp_path, SIDECAR_SCRIPT)
    good = _val_dir(tmp_path / "good", tokens, side)
    result = _lut(folder, val_data=good, tokenizer=models["caseops"])
    assert result.status == PASS and result.summary.startswith("sidecar matches the tokenizer's decode")
    assert any(e.startswith("train_gpt.py:") and "sidecar file" in e for e in result.evidence)
    markers = np.isin(tokens, [sp.piece_to_id(m) for m in MARKERS])
    bad = _val_dir(tmp_path / "bad", tokens, side + 3 * markers)
    failed = _lut(folder, val_data=bad, tokenizer=models["caseops"])
    assert failed.status == FAIL and "README rule 2" in failed.rule and "inflation" in failed.summary
    assert any(e.startswith("train_gpt.py:") for e in failed.evidence)
    broken = _lut(folder, val_data=tmp_path / "nowhere", tokenizer=models["caseops"])
    assert broken.status == UNKNOWN and "no such folder" in broken.summary
    unverified = _lut(folder)
    assert unverified.status == WARN and "--val-data DIR --tokenizer MODEL" in unverified.summary
    # a sidecar that is right does not excuse the tables the script falls back to without one
    buggy = (Path(__file__).parent / "fixtures" / "lut_scripts" / "plus_one_leading_space.py").read_text()
    fallback = _lut(_folder(tmp_path / "buggy", SIDECAR_SCRIPT.replace(SCRIPT, buggy)), val_data=good,
                    tokenizer=models["caseops"])
    assert fallback.status == WARN and fallback.summary.endswith("(used without a sidecar) are BUGGY")
    # without a sidecar in the script, the data changes nothing
    plain = _folder(tmp_path / "plain", SCRIPT)
    assert _lut(plain, val_data=bad, tokenizer=models["caseops"]).status == PASS


def _pgolf(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgolf", "check", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_the_cli_verifies_a_given_or_shipped_sidecar(caseops, models: dict[str, Path], tmp_path: Path) -> None:
    sp, _, tokens, side = caseops
    markers = np.isin(tokens, [sp.piece_to_id(m) for m in MARKERS])
    bad = _val_dir(tmp_path / "bad", tokens, side + 3 * markers)
    folder = _folder(tmp_path / "given", SIDECAR_SCRIPT)
    done = _pgolf(folder, "--val-data", bad, "--tokenizer", models["caseops"], "--markdown", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "| lut_audit | ❌ FAIL | the sidecar gives " in done.stdout
    assert "**lut_audit** (FAIL) applies: README rule 2" in done.stdout
    # the shards, sidecars and tokenizer shipped inside the records folder are found there
    shipped = _folder(tmp_path / "shipped", SIDECAR_SCRIPT, (tokens, side), models["caseops"])
    done = _pgolf(shipped, "--json", cwd=tmp_path)
    lut = next(c for c in json.loads(done.stdout)["checks"] if c["name"] == "lut_audit")
    assert lut["status"] == PASS and lut["summary"].startswith("sidecar matches"), lut
    for args, says in ((("--val-data", tmp_path / "nowhere"), "no such folder"),
                       (("--val-data", bad / "fineweb_val_000000.bin"), "not a folder"),
                       (("--tokenizer", tmp_path), "a folder, not a file")):
        done = _pgolf(folder, *args, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
