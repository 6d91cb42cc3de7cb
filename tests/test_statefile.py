"""The state-file guards and the untrusted-text output helper, one behaviour per test."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from pgolf import statefile
from pgolf.cli._common import finite_or_null, line, plain
from pgolf.errors import BudgetRefused, ConfigError, DataError


def test_a_folder_where_a_file_belongs(tmp_path: Path):
    (tmp_path / "budget.json").mkdir()
    with pytest.raises(DataError, match=r"budget\.json: is a directory, not a file"):
        statefile.load_json(tmp_path / "budget.json")


def test_a_pipe_is_refused_without_blocking(tmp_path: Path):
    os.mkfifo(tmp_path / "inflight.json")
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            statefile.load_json(tmp_path / "inflight.json")
        except DataError as err:
            outcome.append(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a pipe blocked"
    assert "not a regular file" in str(outcome[0])


def test_size_limit(tmp_path: Path):
    (tmp_path / "x.json").write_text("[" + "1," * 100 + "1]")
    with pytest.raises(DataError, match=r"too large \(203 bytes; the limit is 100\)"):
        statefile.load_json(tmp_path / "x.json", max_bytes=100)


def test_missing_is_the_callers_default_or_an_error(tmp_path: Path):
    assert statefile.load_json(tmp_path / "nope.json", missing={}) == {}
    with pytest.raises(DataError, match="nope.json: not found"):
        statefile.load_json(tmp_path / "nope.json")


def test_not_utf8_names_the_offset_and_spots_utf16(tmp_path: Path):
    (tmp_path / "a.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xff at offset 7$"):
        statefile.load_json(tmp_path / "a.json")
    (tmp_path / "b.toml").write_bytes("x = 1\n".encode("utf-16"))
    with pytest.raises(ConfigError, match="looks like UTF-16"):
        statefile.load_toml(tmp_path / "b.toml", error=ConfigError)


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path):
    (tmp_path / "a.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert statefile.load_json(tmp_path / "a.json") == {"a": 1}


@pytest.mark.parametrize("depth", [65, 200, 100_000])
def test_deep_nesting_is_one_line(depth: int):
    with pytest.raises(DataError, match="nested deeper than 64 levels"):
        statefile.loads_json("[" * depth + "]" * depth, "x.json")
    with pytest.raises(DataError, match="nested deeper than 64 levels"):
        statefile.loads_toml("x = " + "[" * depth + "1" + "]" * depth, "x.toml")


def test_nesting_up_to_the_limit_is_fine():
    assert statefile.loads_json("[" * 64 + "]" * 64, "x.json") is not None


@pytest.mark.parametrize("text, where", [('{"e": [{"usd": NaN}]}', "e[0].usd"), ('{"a": Infinity}', "a"),
                                         ('{"a": -Infinity}', "a"), ('{"a": 1e999}', "a"), ("NaN", "(top level)")])
def test_non_finite_numbers_are_named_by_their_path(text: str, where: str):
    with pytest.raises(DataError, match=rf"x\.json: {re.escape(where)}: .* is not a finite number"):
        statefile.loads_json(text, "x.json")
    assert statefile.loads_json(text, "x.json", finite=False) is not None  # when the caller judges each value


def test_toml_inf_is_refused_only_when_asked():
    assert statefile.loads_toml("a = inf", "x.toml")["a"] == float("inf")
    with pytest.raises(DataError, match="a: inf is not a finite number"):
        statefile.loads_toml("a = inf", "x.toml", finite=True)


def test_a_number_with_thousands_of_digits():
    with pytest.raises(DataError, match="thousands of digits"):
        statefile.loads_json("1" * 5000, "x.json")


SPEC = {"id": (statefile.STRING, True, False), "usd": (statefile.NUMBER, True, True),
        "gpus": (statefile.INTEGER, False, False)}


@pytest.mark.parametrize("record, problem", [
    ({"usd": 1}, "missing field id"), ({"id": 5, "usd": 1}, "id must be a string, not 5"),
    ({"id": "a", "usd": "1"}, "usd must be a number, not '1'"), ({"id": "a", "usd": True}, "usd must be a number"),
    ({"id": "a", "usd": 1, "gpus": 1.5}, "gpus must be an integer, not 1.5"),
    ({"id": "a", "usd": float("nan")}, "usd nan is not a finite number"),
    ({"id": "a", "usd": 1, "x": 2}, "unknown field x"), ([1], "not a JSON object"),
])
def test_field_types(record, problem: str):
    with pytest.raises(BudgetRefused, match=f"^f: entry 0: {problem}"):
        statefile.check_fields(record, SPEC, "f: entry 0", error=BudgetRefused, allow_unknown=False)
    assert statefile.check_fields({"id": "a", "usd": None}, SPEC, "w") == {"id": "a", "usd": None}


@dataclass
class _Flight:
    run_id: str
    seed: int
    stopped_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)


def test_from_record_checks_a_dataclass_by_its_annotations():
    assert statefile.from_record(_Flight, {"run_id": "r", "seed": 1}, "w") == _Flight("r", 1)
    for raw, problem in (({"seed": 1}, "missing field run_id"), ({"run_id": "r", "seed": "1"}, "seed must be"),
                         ({"run_id": "r", "seed": 1, "tags": []}, "tags must be an object"),
                         ({"run_id": "r", "seed": 1, "zzz": 0}, "unknown field zzz")):
        with pytest.raises(DataError, match=problem):
            statefile.from_record(_Flight, raw, "inflight.json")


def test_records_name_the_entry(tmp_path: Path):
    path = tmp_path / "c.json"
    path.write_text('{"entries": [{"id": "a", "usd": 1}, {"id": "b", "usd": "x"}]}')
    with pytest.raises(DataError, match=r"c\.json: entry 1 \(b\): usd must be a number"):
        statefile.records(path, "entries", lambda raw, where: statefile.check_fields(raw, SPEC, where),
                          describe=lambda e: e["id"])
    path.write_text('{"entries": 3}')
    with pytest.raises(DataError, match="entries must be a list, not int"):
        statefile.records(path, "entries", lambda raw, where: raw)


# -- untrusted text ------------------------------------------------------------------------------------------

HOSTILE = "[/data/shards] [bold]x[/] [link=http://evil]y[/link] :smile: \x1b]0;pwned\x07"


def _render(renderable, styles: bool = False) -> str:
    console = Console(width=400, record=True, color_system="truecolor" if styles else None, emoji=False)
    console.print(renderable)
    return console.export_text(styles=styles)


def test_untrusted_text_is_printed_as_text_and_control_characters_are_replaced():
    text = _render(line("[bold red]error:[/] {} and {}", HOSTILE, "a[/x]"))
    assert text.startswith("error: [/data/shards] [bold]x[/] [link=http://evil]y[/link] :smile: \ufffd]0;pwned\ufffd")
    assert text.rstrip().endswith("and a[/x]")
    assert "\x1b" not in _render(plain(HOSTILE))


def test_a_slot_takes_the_style_of_where_it_stands():
    rendered = line("[bold]{}[/] plain", "[red]v")
    bold = [s for s in rendered.spans if "bold" in str(s.style)]
    assert rendered.plain == "[red]v plain" and bold and (bold[0].start, bold[0].end) == (0, 6)


def test_the_slots_must_match_the_values():
    with pytest.raises(ValueError):
        line("{} {}", "one")


def test_json_output_has_null_for_non_finite_numbers():
    assert finite_or_null({"a": [1.0, float("nan")], "b": (float("-inf"),), "c": "NaN"}) == \
        {"a": [1.0, None], "b": [None], "c": "NaN"}
