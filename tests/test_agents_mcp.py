"""`pgolf mcp` through the official SDK's stdio client: a real server process, real git, real runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from loop_fixtures import make_workspace
from pgolf import git
from pgolf.loop.refs import BEST_BRANCH, TAG_PREFIX
from pgolf.loop.supervisor import run_loop, workspace_lock
from pgolf.workspace import Workspace

HERE = Path(__file__).resolve().parent
READ_TOOLS = {"status", "ledger", "show_run", "noise_floor", "budget", "research_search", "competitors",
              "brief", "check", "measure"}
ACT_TOOLS = {"run_experiment", "promote"}


def _server(ws: Workspace) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"}
    return StdioServerParameters(command=sys.executable, args=["-m", "pgolf", "--workspace", str(ws.root), "mcp"],
                                 env=env)


def _set_lr(text: str, value: float) -> str:
    """The script with its MATRIX_LR default set to `value` (the agent's edit)."""
    new, count = re.subn(r'("MATRIX_LR",\s*)[0-9.eE+-]+', lambda m: f"{m.group(1)}{value}", text)
    assert count == 1
    return new


def _data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def test_a_client_session_lists_and_calls_every_tool(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")

    async def session() -> dict:
        seen: list[str] = []

        async def heard(done: float, total: float | None, message: str | None) -> None:
            seen.append(message or "")

        out: dict = {}
        async with Client(_server(ws)) as client:
            out["tools"] = {t.name: t for t in (await client.list_tools()).tools}
            out["brief0"] = _data(await client.call_tool("brief", {}))
            ws.train_script.write_text(_set_lr(ws.train_script.read_text(), 0.03))
            out["run"] = _data(await client.call_tool("run_experiment", {"description": "MATRIX_LR 0.03"},
                                                      progress_callback=heard))
            run_id = out["run"]["run_id"]
            for name, args in [("status", {}), ("ledger", {"last": 10}), ("ledger", {"status": "baseline"}),
                               ("show_run", {"run_id": run_id}), ("noise_floor", {}), ("budget", {}),
                               ("research_search", {"query": "quantization"}), ("competitors", {}),
                               ("brief", {}), ("check", {"path": "train_gpt.py"}), ("measure", {}),
                               ("promote", {"run_id": run_id})]:
                out[name if name not in out else f"{name}2"] = _data(await client.call_tool(name, args))
            out["bad_run"] = await client.call_tool("show_run", {"run_id": "../../etc"})
            out["bad_last"] = await client.call_tool("ledger", {"last": 0})
            out["program"] = (await client.read_resource("pgolf://program.md")).contents[0].text
            out["best"] = (await client.read_resource("pgolf://best/train_gpt.py")).contents[0].text
            out["log"] = (await client.read_resource(f"pgolf://runs/{run_id}/train.log")).contents[0].text
        out["progress"] = seen
        return out

    out = asyncio.run(session())
    assert set(out["tools"]) == READ_TOOLS | ACT_TOOLS
    for name in READ_TOOLS:
        assert out["tools"][name].annotations.read_only_hint is True, name
    assert "description" in out["tools"]["run_experiment"].input_schema["properties"]
    assert out["brief0"]["best"] is None and out["brief0"]["noise_floor"] is None

    run = out["run"]
    assert run["status"] in ("keep", "discard") and run["kept"] == (run["status"] == "keep")
    rows = ws.ledger().rows()
    assert [r.run_id for r in rows[:2]] == ["r0001", "r0002"]  # the first call measured the floor first
    assert [r.status for r in rows[:2]] == ["baseline", "baseline"]
    first = next(r for r in rows if r.run_id == run["run_id"])
    assert first.status == run["status"] and first.description.startswith("MATRIX_LR 0.03")
    assert run["decision"]["status"] == run["status"]
    verdict = run["verdict"]
    assert {"n", "candidate_mean", "incumbent_mean", "sigma", "test", "p_value"} <= set(verdict)
    assert 2 <= verdict["n"] <= len([r for r in run["runs"] if r["status"] != "baseline"])
    assert {r["run_id"] for r in run["runs"]} >= {run["run_id"]}
    assert any("started" in m for m in out["progress"]) and any("finished" in m for m in out["progress"])

    assert out["status"]["runs"] == len(rows) and out["status"]["in_flight"] == []
    assert out["ledger"]["total"] == len(rows)
    assert len(out["ledger2"]["rows"]) == sum(r.status == "baseline" for r in rows)
    assert out["show_run"]["row"]["run_id"] == run["run_id"] and "MATRIX_LR" in out["show_run"]["diff"]
    floor = out["noise_floor"]
    assert floor["measured"] and floor["commit"] == git.git(ws.root, "rev-parse", BEST_BRANCH)
    assert floor["runs"] == sum(r.commit == floor["commit"] and r.val_bpb is not None for r in rows) >= 2
    assert out["budget"]["budget"]["available_usd"] == 0.0
    assert out["research_search"]["items"] == []
    assert out["competitors"]["entries"] == []
    assert out["brief"]["best"]["run_id"] in {r.run_id for r in rows}
    assert out["brief"]["bar_to_beat"]["beat_below"] < out["brief"]["bar_to_beat"]["incumbent_mean"]
    assert out["check"]["target"].endswith("train_gpt.py") and sum(out["check"]["counts"].values()) >= 5
    assert out["measure"]["code_bytes"] == ws.train_script.stat().st_size
    assert out["promote"]["dry_run"] is True and any(not g["passed"] for g in out["promote"]["gates"])
    assert out["bad_run"].is_error and "not a run id" in out["bad_run"].content[0].text
    assert out["bad_last"].is_error
    assert "<!-- BEST_START -->" in out["program"]
    assert out["best"] == git.git(ws.root, "show", f"{BEST_BRANCH}:train_gpt.py") + "\n"
    assert "step:" in out["log"]


class _SameEdit:
    """What the agent does, as a `pgolf run` proposer: write the same text into the proposal's script."""

    kind = "scripted"

    def __init__(self, texts: list[tuple[str, str]]) -> None:
        self.texts = texts

    def propose(self, ctx):
        from pgolf.loop.proposers.base import Proposal

        text, description = self.texts.pop(0)
        ctx.script.write_text(text)
        return Proposal(description=description)

    def observe(self, state, status, val_bpb):
        return None


def _shape(ws: Workspace) -> dict:
    rows = ws.ledger().rows()
    keep = ("tier", "val_bpb", "artifact_bytes", "status", "promoted", "cost_usd", "description", "run_id",
            "parent_run", "seed", "steps")
    return {
        "rows": [{k: getattr(r, k) for k in keep} for r in rows],
        "scripts": [git.git(ws.root, "show", f"{r.commit}:train_gpt.py") for r in rows],
        "tags": git.git(ws.root, "tag", "-l", f"{TAG_PREFIX}*").split(),
        "best": git.git(ws.root, "show", f"{BEST_BRANCH}:train_gpt.py"),
        "working_copy": ws.train_script.read_text(),
        "head": git.git(ws.root, "rev-parse", "--abbrev-ref", "HEAD"),
        "best_is_a_run": git.git(ws.root, "rev-parse", BEST_BRANCH) in {r.commit for r in rows},
    }


def test_run_experiment_writes_what_pgolf_run_writes(tmp_path: Path):
    """The same two edits through the MCP server and through `pgolf run`'s loop give the same records."""
    via_mcp, via_run = make_workspace(tmp_path / "a"), make_workspace(tmp_path / "b")
    base = via_mcp.train_script.read_text()
    edits = [(_set_lr(base, 0.03), "MATRIX_LR 0.03"), (_set_lr(base, 0.09), "MATRIX_LR 0.09")]

    async def agent() -> list[dict]:
        out = []
        async with Client(_server(via_mcp)) as client:
            for text, description in edits:
                via_mcp.train_script.write_text(text)
                out.append(_data(await client.call_tool("run_experiment", {"description": description})))
        return out

    decisions = asyncio.run(agent())
    run_loop(via_run, experiments=2, proposer=_SameEdit(list(edits)))
    assert [d["status"] for d in decisions] == ["keep", "discard"]
    assert _shape(via_mcp) == _shape(via_run)
    assert decisions[1]["working_copy"].endswith(f"{TAG_PREFIX}{decisions[1]['run_id']}")


def test_a_diff_instead_of_an_edit_and_a_busy_workspace(tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    ws.train_script.write_text(_set_lr(ws.train_script.read_text(), 0.03))
    diff = git.git(ws.root, "diff", "--", "train_gpt.py")
    git.git(ws.root, "checkout", "--", "train_gpt.py")

    async def session() -> tuple:
        async with Client(_server(ws)) as client:
            with workspace_lock(ws):  # as if `pgolf run` were running
                busy = await client.call_tool("run_experiment", {"description": "x", "diff": diff})
                reading = await client.call_tool("status", {})
            bad = await client.call_tool("run_experiment", {"description": "x", "diff": "not a diff"})
            done = await client.call_tool("run_experiment", {"description": "from a diff", "diff": diff})
        return busy, reading, bad, done

    busy, reading, bad, done = asyncio.run(session())
    assert busy.is_error and "drives this workspace" in busy.content[0].text
    assert not reading.is_error
    assert bad.is_error and "diff" in bad.content[0].text
    decided = _data(done)
    assert decided["status"] == "keep"
    assert next(r for r in ws.ledger().rows() if r.run_id == decided["run_id"]).description.startswith("from a diff")
    # the refused call gave the edit back untouched: nothing was lost, nothing recorded
    assert [r.description for r in ws.ledger().rows()].count("x") == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]:
            return False  # a zombie has finished; only its parent has not read its status yet
    return True


@pytest.mark.slow
def test_a_scripted_agent_runs_five_experiments_then_survives_kill_9(tmp_path: Path):
    hold = tmp_path / "hold"
    ws = make_workspace(tmp_path / "ws", local_env=f'FAKE_HOLD_FILE = "{hold}"')
    report = tmp_path / "report.json"
    values = ["0.03", "0.05", "0.025", "0.02", "0.07"]
    proc = subprocess.run([sys.executable, str(HERE / "mcp_scripted_agent.py"), str(ws.root), str(report), *values],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(report.read_text())
    decisions = out["decisions"]
    assert len(decisions) == 5 and all(d["status"] in ("keep", "discard") for d in decisions)
    assert any(d["kept"] for d in decisions) and out["progress_messages"] > 0
    rows = ws.ledger().rows()
    proposals = [r for r in rows if r.parent_run and not r.description.startswith("replicate of")
                 and r.status != "baseline"]
    assert [r.description.split(" [")[0] for r in proposals] == [f"MATRIX_LR {v}" for v in values]
    assert [r.run_id for r in proposals] == [d["run_id"] for d in decisions]
    assert all(d["verdict"].get("n") for d in decisions if d["status"] == "keep")
    assert out["first_brief"]["best"] is None
    last = out["last_brief"]
    kept = [r for r in rows if r.status == "keep"]
    assert last["best"]["run_id"] == kept[-1].run_id  # each keep beat the one before
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == kept[-1].commit
    assert {d["run_id"] for d in last["dead_ends"]} == {d["run_id"] for d in decisions if d["status"] == "discard"}

    # A sixth experiment is killed mid-run with the server: kill -9, then a restart recovers it.
    hold.write_text("hold")
    best_before = git.git(ws.root, "rev-parse", BEST_BRANCH)

    async def killed() -> tuple[int, str, int]:
        async with Client(_server(ws)) as client:
            server_pid = _data(await client.call_tool("status", {}))["server_pid"]
            ws.train_script.write_text(_set_lr(ws.train_script.read_text(), 0.021))
            task = asyncio.create_task(client.call_tool("run_experiment", {"description": "killed mid-run"}))
            run_id, child = "", 0
            for _ in range(600):
                await asyncio.sleep(0.1)
                running = list(ws.running_dir.glob("*.json")) if ws.running_dir.is_dir() else []
                if running:
                    run_id = running[0].stem
                    log = ws.run(run_id).log
                    text = log.read_text() if log.exists() else ""
                    if "started pid" in text:
                        child = int(text.split("started pid")[1].split()[0])
                        break
            assert child, "the run never started"
            os.kill(server_pid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 30)
            return server_pid, run_id, child

    with contextlib.suppress(BaseExceptionGroup):
        server_pid, run_id, child = asyncio.run(killed())
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the training process outlived the killed server"

    async def restarted() -> dict:
        async with Client(_server(ws)) as client:
            return _data(await client.call_tool("status", {}))

    status = asyncio.run(restarted())
    rows = ws.ledger().rows()
    crashed = next(r for r in rows if r.run_id == run_id)
    assert crashed.status == "crash" and "killed" in crashed.description
    assert f"{TAG_PREFIX}{run_id}" in git.git(ws.root, "tag", "-l", f"{TAG_PREFIX}*").split()
    assert git.git(ws.root, "rev-parse", BEST_BRANCH) == best_before
    assert status["in_flight"] == [] and not list(ws.running_dir.glob("*.json"))
    assert ws.ledger().load().damaged == []
    assert git.git(ws.root, "status", "--porcelain", "--", "train_gpt.py") == ""

    # and the agent goes on: the next experiment runs normally
    hold.unlink()
    ws.train_script.write_text(_set_lr(ws.train_script.read_text(), 0.022))

    async def again() -> dict:
        async with Client(_server(ws)) as client:
            return _data(await client.call_tool("run_experiment", {"description": "after the restart"}))

    assert asyncio.run(again())["status"] in ("keep", "discard")


TINY = {"NUM_LAYERS": 1, "MODEL_DIM": 32, "NUM_HEADS": 2, "NUM_KV_HEADS": 1, "MLP_MULT": 2,
        "TRAIN_SEQ_LEN": 64, "TRAIN_BATCH_TOKENS": 1024, "ITERATIONS": 3, "WARMUP_STEPS": 0,
        "WARMDOWN_ITERS": 1, "VAL_LOSS_EVERY": 0, "TRAIN_LOG_EVERY": 1, "VAL_TOKENS_LIMIT": 2048,
        "VAL_BATCH_SIZE": 2048}


@pytest.mark.slow
def test_run_experiment_trains_the_real_script_and_returns_the_judges_numbers(tmp_path: Path, demo_dataset):
    """The real train_gpt.py (tiny, on CPU, the demo corpus): noise floor, the agent's edit, the decision."""
    from importlib import resources

    from pgolf.loop.hyperparams import set_defaults
    from pgolf.workspace import init_workspace

    script = tmp_path / "train_gpt.py"
    source = resources.files("pgolf.templates").joinpath("train_gpt.py").read_text(encoding="utf-8")
    script.write_text(set_defaults(source, TINY))
    ws = init_workspace(tmp_path / "ws", train_script=script, dataset_dir=str(demo_dataset.dataset_dir),
                        tokenizer_path=str(demo_dataset.tokenizer_path), vocab_size=1024,
                        wallclock_seconds=120, timeout_seconds=300, local_env='OMP_NUM_THREADS = "1"',
                        replicates=2, loop_extra="max_replicates = 2\n")  # the fewest paired seeds that decide
    ws.train_script.write_text(set_defaults(ws.train_script.read_text(), {"MATRIX_LR": 0.12}))

    async def session() -> dict:
        async with Client(_server(ws)) as client:
            return _data(await client.call_tool("run_experiment", {"description": "MATRIX_LR 0.12"}))

    decision = asyncio.run(session())
    assert decision["status"] in ("keep", "discard")
    rows = ws.ledger().rows()
    assert [r.status for r in rows[:2]] == ["baseline", "baseline"] and all(r.steps == 3 for r in rows)
    result = json.loads(ws.run(decision["run_id"]).result.read_text())
    assert result["status"] == "ok" and result["val_bpb"] == pytest.approx(decision["runs"][0]["val_bpb"], abs=1e-6)
    verdict = decision["verdict"]
    for key in ("n", "candidate_mean", "incumbent_mean", "sigma", "test", "p_value"):
        assert key in verdict, f"the decision lacks the judge's {key}: {decision['decision']}"
    assert verdict["n"] >= 2


def test_pgolf_mcp_outside_a_workspace_or_with_a_broken_config_is_one_line(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PGOLF_WORKSPACE"}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pgolf.toml").write_text("ruleset = 5\n")
    for where in (tmp_path / "nothing", tmp_path / "bad"):
        proc = subprocess.run([sys.executable, "-m", "pgolf", "--workspace", str(where), "mcp"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_research_search_reads_the_whole_store(tmp_path: Path):
    from pgolf.agents import tools
    from pgolf.research.items import ResearchItem
    from pgolf.research.store import ResearchStore

    ws = make_workspace(tmp_path / "ws")
    store = ResearchStore(ws.research_db)
    items = [ResearchItem(id=f"arxiv:2601.{i:05d}", source="arxiv", kind="paper",
                          title=f"Paper {i} on {'int6 quantization' if i == 137 else 'optimizers'}",
                          abstract="", url=f"https://arxiv.org/abs/2601.{i:05d}", published="2026-01-01",
                          fetched_at="2026-01-02T00:00:00Z") for i in range(300)]
    store.upsert(items)
    found = tools.research_search(ws, query="int6 quantization")
    assert [i["id"] for i in found["items"]] == ["arxiv:2601.00137"] and found["matching"] == 1
    assert tools.research_search(ws, query="optimizers", limit=5)["matching"] == 299
    with pytest.raises(Exception, match="limit"):
        tools.research_search(ws, limit=0)
