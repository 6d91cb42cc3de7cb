"""FineWeb download through the real huggingface_hub client against a fake Hub on 127.0.0.1."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from pgolf.data.fineweb import dataset_name, download_fineweb, plan_files
from pgolf.data.shards import write_shard
from pgolf.data.verify import verify_dataset
from pgolf.errors import DataError

REPO = "willdepueoai/parameter-golf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TRAIN_SHARDS = 3


class FakeHub:
    """Serves files of one dataset repo the way the Hub's resolve endpoint does (HEAD, GET, Range)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gets: Counter[str] = Counter()
        self.failing: set[str] = set()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                prefix = f"/datasets/{REPO}/resolve/main/"
                name = self.path.split("?")[0].removeprefix(prefix)
                path = hub.root / name
                if not self.path.startswith(prefix) or not path.is_file():
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                if body and name in hub.failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                data = path.read_bytes()
                start = 0
                if body and (rng := self.headers.get("Range")):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if body:
                    hub.gets[name] += 1
                    self.wfile.write(data[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub(shared_data: Path, tmp_path: Path) -> Iterator[FakeHub]:
    """A repo laid out as the real one, with the real manifest (trimmed to 3 train shards) and tokenizer."""
    root = tmp_path / "repo"
    manifest = copy.deepcopy(json.loads((shared_data / "fineweb" / "manifest.json").read_text()))
    entry = next(d for d in manifest["datasets"] if d["name"] == "fineweb10B_sp1024")
    entry["stats"]["files_train"] = TRAIN_SHARDS
    (root / "datasets").mkdir(parents=True)
    (root / "datasets" / "manifest.json").write_text(json.dumps(manifest))
    shards = root / "datasets" / "datasets" / "fineweb10B_sp1024"
    shards.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for kind, count in (("val", entry["stats"]["files_val"]), ("train", TRAIN_SHARDS)):
        for i in range(count):
            tokens = rng.integers(2, 1024, size=20_000)
            tokens[::1000] = 1
            write_shard(shards / f"fineweb_{kind}_{i:06d}.bin", tokens)
    tokenizers = root / "datasets" / "tokenizers"
    tokenizers.mkdir()
    model = (shared_data / "tokenizers" / "fineweb_1024_bpe.model").read_bytes()
    (tokenizers / "fineweb_1024_bpe.model").write_bytes(model)
    (tokenizers / "fineweb_1024_bpe.vocab").write_text("<pad>\t0\n")
    with FakeHub(root) as server:
        yield server


def test_download_lands_in_the_training_layout(hub: FakeHub, tmp_path: Path) -> None:
    out = tmp_path / "data"
    ticks = []
    ds = download_fineweb(out, "sp1024", 2, endpoint=hub.endpoint, progress=lambda i, n, f, got: ticks.append((i, n, got)))
    assert ds.dataset_dir == out / "datasets" / "fineweb10B_sp1024"
    assert ds.tokenizer_path == out / "tokenizers" / "fineweb_1024_bpe.model"
    assert [p.name for p in ds.train_files] == ["fineweb_train_000000.bin", "fineweb_train_000001.bin"]
    assert (ds.vocab_size, ds.downloaded, ds.already_present) == (1024, 5, 0)
    assert ticks == [(1, 5, True), (2, 5, True), (3, 5, True), (4, 5, True), (5, 5, True)]
    source = hub.root / "datasets" / "datasets" / "fineweb10B_sp1024" / "fineweb_val_000000.bin"
    assert (ds.dataset_dir / "fineweb_val_000000.bin").read_bytes() == source.read_bytes()
    assert (out / "manifest.json").is_file()
    report = verify_dataset(ds.dataset_dir, tokenizer=ds.tokenizer_path)
    assert report.ok, report.problems


def test_resume_fetches_only_what_is_missing(hub: FakeHub, tmp_path: Path) -> None:
    out = tmp_path / "data"
    hub.failing.add("datasets/datasets/fineweb10B_sp1024/fineweb_train_000001.bin")
    with pytest.raises(DataError) as err:
        download_fineweb(out, "sp1024", 2, endpoint=hub.endpoint)
    assert "fineweb_train_000001.bin" in str(err.value) and "run the command again to resume" in str(err.value)
    assert "\n" not in str(err.value)
    hub.failing.clear()
    before = Counter(hub.gets)
    ds = download_fineweb(out, "sp1024", 2, endpoint=hub.endpoint)
    fetched = hub.gets - before
    assert set(fetched) == {"datasets/manifest.json", "datasets/datasets/fineweb10B_sp1024/fineweb_train_000001.bin",
                            "datasets/tokenizers/fineweb_1024_bpe.model", "datasets/tokenizers/fineweb_1024_bpe.vocab"}
    assert (ds.downloaded, ds.already_present) == (3, 2)
    # More shards later: only the new one comes; a damaged shard is fetched again.
    with open(ds.train_files[0], "r+b") as fh:
        fh.truncate(2000)
    before = Counter(hub.gets)
    ds = download_fineweb(out, "sp1024", 3, endpoint=hub.endpoint)
    assert set(hub.gets - before) == {"datasets/manifest.json",
                                     "datasets/datasets/fineweb10B_sp1024/fineweb_train_000000.bin",
                                     "datasets/datasets/fineweb10B_sp1024/fineweb_train_000002.bin"}
    assert verify_dataset(ds.dataset_dir).ok
    # With the Hub unreachable, a complete local copy is still reported ready.
    hub.failing.add("datasets/manifest.json")
    ds = download_fineweb(out, "sp1024", 3, endpoint=hub.endpoint)
    assert (ds.downloaded, ds.already_present) == (0, 6)


def test_bad_requests(hub: FakeHub, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has 3 training shards; asked for 4"):
        download_fineweb(tmp_path, "sp1024", 4, endpoint=hub.endpoint)
    with pytest.raises(DataError, match="no usable entry for fineweb10B_sp4096"):
        download_fineweb(tmp_path, "sp4096", 1, endpoint=hub.endpoint)
    with pytest.raises(DataError, match="cannot fetch datasets/manifest.json"):
        download_fineweb(tmp_path / "fresh", "sp1024", 1, endpoint=hub.endpoint, repo_id="someone/else")


def test_variant_names_and_plan(shared_data: Path, tmp_path: Path) -> None:
    assert dataset_name("sp8192") == "fineweb10B_sp8192"
    assert dataset_name("byte260") == "fineweb10B_byte260"
    with pytest.raises(DataError, match="unknown FineWeb variant"):
        dataset_name("gpt2")
    manifest = json.loads((shared_data / "fineweb" / "manifest.json").read_text())
    plan = plan_files(manifest, "sp1024", 195, tmp_path)
    assert [f.kind for f in plan].count("train") == 195
    assert plan[0].remote == "datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin"
    assert plan[-2].local == tmp_path / "tokenizers" / "fineweb_1024_bpe.model"
