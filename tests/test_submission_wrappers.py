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


def _wrappers(marker: Path | None = None) -> dict[str, str]:
    raw = INNER.encode()
    # with a marker, every wrapper also writes it if anything ran it (and is then no pure wrapper)
    touch = f"open({str(marker)!r}, 'w').write('ran')\n" if marker else ""
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
def test_each_wrapper_decodes_to_the_inner_code(kind: str) -> None:
    result = unwrap(_wrappers()[kind])
    assert (result.source, result.obfuscated, len(result.layers)) == (INNER, False, 1)
    assert not result.dynamic and not result.embedded


@pytest.mark.parametrize("kind", ["lzma+b85", "zlib+b64 via compile", "bz2+a85 in a variable",
                                  "__import__ + from-import"])
def test_a_wrapper_that_also_runs_other_code_is_checked_whole(kind: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    source = _wrappers(marker)[kind]
    result = unwrap(source)
    # the outer code stays what the checks read, and the decoded payload is read beside it
    assert (result.source, result.wrapped, result.obfuscated) == (source, False, False)
    assert [code for _, code in result.embedded] == [INNER] and not result.dynamic
    assert not marker.exists()


def test_lzma_format_raw_with_keyword_filters_decodes() -> None:
    filters = [{"id": lzma.FILTER_LZMA2}]
    payload = base64.b85encode(lzma.compress(INNER.encode(), format=lzma.FORMAT_RAW, filters=filters)).decode()
    source = (f"import lzma as L,base64 as B\n__wrapper_size__=123\nexec(L.decompress(B.b85decode({payload!r}),"
              "format=L.FORMAT_RAW,filters=[{'id':L.FILTER_LZMA2}]))\n")
    result = unwrap(source)
    assert (result.source, result.obfuscated, len(result.layers)) == (INNER, False, 1)


def test_a_raw_lzma_filter_with_a_huge_dictionary_is_refused() -> None:
    source = ("import lzma as L,base64 as B\nexec(L.decompress(B.b85decode('abcd'),format=L.FORMAT_RAW,"
              "filters=[{'id':L.FILTER_LZMA2,'dict_size':1<<40}]))\n")
    result = unwrap(source)
    assert result.obfuscated  # `1<<40` is not a constant the decoder evaluates, and no dictionary is allocated
    huge = source.replace("1<<40", str(1 << 40))
    assert "more than" in unwrap(huge).reason


def test_a_stub_that_execs_a_sibling_is_read_from_the_folder() -> None:
    stub = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    files = {"train_gpt_decode.py": INNER}
    result = unwrap(stub, read_sibling=files.get)
    assert (result.source, result.siblings) == (INNER, ["train_gpt_decode.py"])
    assert "reads train_gpt_decode.py" in result.layers[0]
    missing = unwrap(stub, read_sibling={}.get)
    assert missing.obfuscated and "does not hold" in missing.reason
    escape = unwrap('exec(open("../../etc/passwd").read())\n', read_sibling=files.get)
    assert escape.obfuscated and "not a file of the submission" in escape.reason


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


def test_plain_scripts_keep_their_source_and_exec_of_constants_is_read() -> None:
    plain = "import torch\n" + "x = 1\n" * 20 + "exec('y = 2')\n"
    result = unwrap(plain)
    assert result.source == plain and not result.wrapped and result.embedded == [("line 22", "y = 2")]


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
