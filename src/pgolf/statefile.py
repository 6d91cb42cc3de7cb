"""Loading state files: the one place that reads a JSON or TOML file pgolf (or someone else) wrote.

Every loader of a state file (budget.json, competitors.json, inflight.json, verified.json, pgolf.toml,
`.env`, submission.json, a dataset manifest, decision and promotion files) goes through here, so each
has the same guards, and each ends in one `PgolfError` line naming the file (and the entry) when:

- a folder, a pipe or a device stands where the file belongs (a pipe would block the read forever);
- the file is larger than the kind's size limit (a state file is small; a huge one is damage or hostility);
- it is not UTF-8 (UTF-16 editors, binary garbage);
- it is nested deeper than `MAX_DEPTH` (the parsers recurse; 100,000 brackets exhaust the stack);
- a number is NaN or infinite (Python's json reads `NaN`, `Infinity` and `1e999`; TOML has `inf`);
- a field has the wrong type (`check_fields`).

The error class is the caller's choice (ConfigError for pgolf.toml, BudgetRefused for budget.json, ...), so
exit codes keep their meaning.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pgolf.errors import DataError, PgolfError

MAX_DEPTH = 64  # no state file pgolf writes nests deeper than 6
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
CONFIG_MAX_BYTES = 1024 * 1024  # pgolf.toml, .env

ErrorType = type[PgolfError]


def _fail(error: ErrorType, where: str, problem: str) -> PgolfError:
    return error(f"{where}: {problem}")


def read_text(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, error: ErrorType = DataError,
              missing_ok: bool = False) -> str | None:
    """The file's text, checked to be a regular, UTF-8 file within `max_bytes`; None when missing and
    `missing_ok`."""
    raw = read_bytes(path, max_bytes=max_bytes, error=error, missing_ok=missing_ok)
    return None if raw is None else decode_utf8(raw, str(path), error=error)


def read_bytes(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, error: ErrorType = DataError,
               missing_ok: bool = False) -> bytes | None:
    """The file's bytes, checked to be a regular file within `max_bytes`; None when missing and
    `missing_ok`."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise _fail(error, str(path), "not found") from None
    except OSError as err:
        raise _fail(error, str(path), f"cannot read ({err.strerror or err})") from None
    if stat.S_ISDIR(info.st_mode):
        raise _fail(error, str(path), "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise _fail(error, str(path), "not a regular file (a pipe or a device?)")
    if info.st_size > max_bytes:
        raise _fail(error, str(path), f"too large ({info.st_size:,} bytes; the limit is {max_bytes:,})")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as err:
        raise _fail(error, str(path), f"cannot read ({err.strerror or err})") from None
    if len(raw) > max_bytes:  # grew since the stat
        raise _fail(error, str(path), f"too large (more than {max_bytes:,} bytes)")
    return raw


def decode_utf8(raw: bytes, where: str, *, error: ErrorType = DataError) -> str:
    """`raw` as UTF-8 text (a UTF-8 byte-order mark is dropped), or one line saying where it is not."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        hint = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise _fail(error, where, f"not UTF-8 text: byte 0x{raw[err.start]:02x} at offset {err.start}{hint}") \
            from None


def loads_json(text: str, where: str, *, error: ErrorType = DataError, finite: bool = True) -> Any:
    """Parse JSON text, refusing deep nesting and (when `finite`) NaN, Infinity and overflowing numbers."""
    try:
        data = json.loads(text)  # NaN and Infinity become floats that check_tree names by their path
    except json.JSONDecodeError as err:
        raise _fail(error, where, f"not valid JSON at line {err.lineno} column {err.colno} ({err.msg})") from None
    except RecursionError:
        raise _fail(error, where, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # an integer longer than Python converts (4,300 digits)
        raise _fail(error, where, "not valid JSON (a number with thousands of digits)") from None
    check_tree(data, where, error=error, finite=finite)
    return data


def load_json(path: Path, *, error: ErrorType = DataError, max_bytes: int = DEFAULT_MAX_BYTES,
              missing: Any = ..., finite: bool = True, want: type | None = None) -> Any:
    """A JSON state file, guarded; `missing` is returned when the file does not exist (else an error).
    `want=dict` (or list) also insists on the top-level type."""
    text = read_text(path, max_bytes=max_bytes, error=error, missing_ok=missing is not ...)
    if text is None:
        return missing
    data = loads_json(text, str(path), error=error, finite=finite)
    if want is not None and not isinstance(data, want):
        raise _fail(error, str(path), f"not a JSON {'object' if want is dict else want.__name__}")
    return data


def loads_toml(text: str, where: str, *, error: ErrorType = DataError, finite: bool = False) -> dict[str, Any]:
    """Parse TOML text, refusing deep nesting; `finite` also refuses nan and inf anywhere."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _fail(error, where, f"invalid TOML: {err}") from None
    except RecursionError:
        raise _fail(error, where, f"nested deeper than {MAX_DEPTH} levels") from None
    check_tree(data, where, error=error, finite=finite)
    return data


def load_toml(path: Path, *, error: ErrorType = DataError, max_bytes: int = CONFIG_MAX_BYTES,
              finite: bool = False) -> dict[str, Any]:
    """A TOML file, guarded like `load_json`."""
    text = read_text(path, max_bytes=max_bytes, error=error)
    assert text is not None
    return loads_toml(text, str(path), error=error, finite=finite)


def check_tree(data: Any, where: str, *, error: ErrorType = DataError, finite: bool = True) -> None:
    """Refuse nesting deeper than MAX_DEPTH and (when `finite`) NaN or infinities anywhere in parsed data,
    naming the first offender's path. Iterative: it must not itself run out of stack."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, at, depth = stack.pop()
        if depth >= MAX_DEPTH and isinstance(value, Mapping | list):  # the top-level container is level 1
            raise _fail(error, where, f"nested deeper than {MAX_DEPTH} levels")
        if finite and isinstance(value, float) and not math.isfinite(value):
            raise _fail(error, where, f"{at or '(top level)'}: {value!r} is not a finite number")
        if isinstance(value, Mapping):
            stack.extend((v, f"{at}.{k}" if at else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{at}[{i}]", depth + 1) for i, v in enumerate(value))


# -- field types -----------------------------------------------------------------------------------------

NUMBER = "number"
INTEGER = "integer"
STRING = "string"
BOOLEAN = "boolean"
OBJECT = "object"
LIST = "list"


def _is(kind: str, value: Any) -> bool:
    if kind == NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == STRING:
        return isinstance(value, str)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == OBJECT:
        return isinstance(value, dict)
    if kind == LIST:
        return isinstance(value, list)
    raise ValueError(kind)


def check_fields(data: Any, spec: Mapping[str, tuple[str, bool, bool]], where: str, *,
                 error: ErrorType = DataError, allow_unknown: bool = True) -> dict[str, Any]:
    """Check one record against `spec`: name -> (kind, required, nullable); returns the record.

    `where` names the record in the message, e.g. "budget.json: entry 3 (id 1a2b)".
    """
    if not isinstance(data, dict):
        raise _fail(error, where, "not a JSON object")
    for name, (kind, required, nullable) in spec.items():
        if name not in data:
            if required:
                raise _fail(error, where, f"missing field {name}")
            continue
        value = data[name]
        if value is None and nullable:
            continue
        if not _is(kind, value):
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise _fail(error, where, f"{name} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {shown}")
        if kind == NUMBER and not math.isfinite(value):
            raise _fail(error, where, f"{name} {value!r} is not a finite number")
    if not allow_unknown:
        unknown = sorted(set(data) - set(spec))
        if unknown:
            raise _fail(error, where, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    return data


def list_field(data: dict[str, Any], name: str, where: str, *, error: ErrorType = DataError) -> list[Any]:
    """`data[name]` as a list ([] when absent), or one line saying it is not one."""
    value = data.get(name, [])
    if not isinstance(value, list):
        raise _fail(error, where, f"{name} must be a list, not {type(value).__name__}")
    return value


def records(path: Path, key: str, build: Callable[[Any, str], Any], *, error: ErrorType = DataError,
            label: str = "entry", describe: Callable[[dict[str, Any]], str] | None = None,
            data: dict[str, Any] | None = None) -> list[Any]:
    """The `key` list of a JSON state file `{"version": 1, key: [...]}` (`data` when already loaded),
    each element built by `build(element, where)`, where `where` reads "<path>: entry 3 (<describe>)".
    A missing file has none."""
    if data is None:
        data = load_json(path, error=error, missing={}, want=dict)
    out = []
    name = os.fspath(path)
    for index, element in enumerate(list_field(data, key, name, error=error)):
        ident = describe(element) if describe and isinstance(element, dict) else ""
        out.append(build(element, f"{name}: {label} {index}{f' ({ident})' if ident else ''}"))
    return out


_ANNOTATION_KINDS = {"str": STRING, "int": INTEGER, "float": NUMBER, "bool": BOOLEAN}


def _annotation_kind(annotation: str) -> tuple[str, bool]:
    """(kind, nullable) of a dataclass field annotation such as "float | None" or "dict[str, Any]"."""
    parts = [p.strip() for p in annotation.split("|")]
    nullable = "None" in parts
    base = next((p for p in parts if p != "None"), "Any")
    if base.startswith(("dict", "Mapping")):
        return OBJECT, nullable
    if base.startswith(("list", "tuple", "Sequence")):
        return LIST, nullable
    return _ANNOTATION_KINDS.get(base, ""), nullable


def from_record(cls: type, raw: Any, where: str, *, error: ErrorType = DataError,
                allow_unknown: bool = False) -> Any:
    """An instance of dataclass `cls` from a JSON object, each field's type checked against its
    annotation (fields without a default are required): the loader for dataclass-shaped state files
    (inflight.json, pod records, promotion flights)."""
    spec: dict[str, tuple[str, bool, bool]] = {}
    for f in dataclasses.fields(cls):
        kind, nullable = _annotation_kind(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""))
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if kind:
            spec[f.name] = (kind, required, nullable)
        elif required and isinstance(raw, dict) and f.name not in raw:
            raise _fail(error, where, f"missing field {f.name}")
    known = {f.name for f in dataclasses.fields(cls)}
    data = check_fields(raw, spec, where, error=error, allow_unknown=True)
    unknown = sorted(set(data) - known)
    if unknown and not allow_unknown:
        raise _fail(error, where, f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    return cls(**{k: v for k, v in data.items() if k in known})
