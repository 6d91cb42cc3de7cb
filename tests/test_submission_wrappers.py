"""Self-extracting wrappers are decoded over the AST, never executed."""

from __future__ import annotations

import base64
import bz2
import lzma
import zlib
from pathlib import Path

import pytest

from pgolf.submission.wrappers import unwrap

INNER = "import os\nprint('inner code')\n"


def _wrappers(marker: Path) -> dict[str, str]:
    raw = INNER.encode()
    # every wrapper also writes a marker if anything ran it
    touch = f"open({str(marker)!r}, 'w').write('ran')\n"
    return {
        "lzma+b85": f"import lzma,base64\n{touch}exec(lzma.decompress(base64.b85decode("
                    f"{base64.b85encode(lzma.compress(raw)).decode()!r})))\n",
        "zlib+b64 via compile": f"import zlib as z, base64 as b\n{touch}exec(compile(z.decompress("
                                f"b.b64decode({base64.b64encode(zlib.compress(raw)).decode()!r})), "
                                "'<s>', 'exec'))\n",
        "bz2+a85 in a variable": f"import bz2,base64\n{touch}P = {base64.a85encode(bz2.compress(raw))!r}\n"
                                 "exec(bz2.decompress(base64.a85decode(P)).decode())\n",
        "__import__ + from-import": f"from base64 import b85decode\n{touch}exec(__import__('lzma')"
                                    f".decompress(b85decode({base64.b85encode(lzma.compress(raw))!r})))\n",
    }


@pytest.mark.parametrize("kind", ["lzma+b85", "zlib+b64 via compile", "bz2+a85 in a variable",
                                  "__import__ + from-import"])
def test_each_wrapper_decodes_to_the_inner_code(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = unwrap(_wrappers(marker)[kind])
    assert (result.source, result.obfuscated, len(result.layers)) == (INNER, False, 1)
    assert not marker.exists()


def test_nested_wrappers_are_peeled() -> None:
    once = f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({base64.b85encode(lzma.compress(INNER.encode())).decode()!r})))\n"  # noqa: E501
    twice = f"import zlib,base64\nexec(zlib.decompress(base64.b64decode({base64.b64encode(zlib.compress(once.encode())).decode()!r})))\n"  # noqa: E501
    result = unwrap(twice)
    assert result.source == INNER and len(result.layers) == 2


def test_undecodable_payload_is_obfuscated_with_the_line() -> None:
    result = unwrap("import lzma\nk = [1, 2]\nexec(lzma.decompress(bytes(x ^ 7 for x in k)))\n")
    assert result.obfuscated and result.reason.startswith("line 3:")
    corrupt = unwrap("import lzma,base64\nexec(lzma.decompress(base64.b85decode('abcd')))\n")
    assert corrupt.obfuscated and "lzma.decompress failed" in corrupt.reason


def test_plain_scripts_and_exec_of_files_are_not_wrappers() -> None:
    plain = "import torch\n" + "x = 1\n" * 20 + "exec('y = 2')\n"
    assert unwrap(plain).source == plain and not unwrap(plain).wrapped
    helper = "exec(open('helper.py').read())\n"
    result = unwrap(helper)
    assert not result.obfuscated and not result.wrapped


def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import pgolf.submission.wrappers as wrappers

    monkeypatch.setattr(wrappers, "MAX_DECODED_BYTES", 1000)
    bomb = base64.b85encode(lzma.compress(b"#" * 100_000)).decode()
    result = unwrap(f"import lzma,base64\nexec(lzma.decompress(base64.b85decode({bomb!r})))\n")
    assert result.obfuscated and "more than 1000 bytes" in result.reason


@pytest.mark.timeout(30)
def test_a_doubling_chain_of_constants_is_refused_not_built() -> None:
    # nine 16-fold concatenations would be 137 GB, and without decoding each name once, 16**9 evaluations
    lines = ['A0 = "xx"'] + [f"A{i} = " + " + ".join([f"A{i - 1}"] * 16) for i in range(1, 10)]
    result = unwrap("\n".join(lines) + "\nexec(A9)\n")
    assert result.obfuscated and "concatenation of more than" in result.reason


@pytest.mark.parametrize("source", ["x = " + "1+" * 100_000 + "1\n", "a\x00b = 1\n", "def f(:\n"])
def test_what_does_not_parse_is_a_syntax_error_not_a_crash(source: str) -> None:
    result = unwrap(source)
    assert result.syntax_error and not result.obfuscated
