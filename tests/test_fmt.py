"""`archdsl fmt`: canonical, idempotent, comment-keeping, and meaning-preserving."""
from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from hypothesis import given

from archdsl.cli import main
from archdsl.compiler import compile_spec
from archdsl.errors import ArchDSLError
from archdsl.frontend.formatter import format_text
from archdsl.frontend.parser import parse, parse_with_comments
from archdsl.ir.printer import dump
from conftest import ROOT
from test_fuzz import FUZZ, mutated_specs, valid_specs

STDLIB = ROOT / "archdsl" / "stdlib"
FILES = sorted((ROOT / "specs").glob("*.arch")) + sorted(STDLIB.rglob("*.arch")) + sorted(
    (ROOT / "examples").glob("*.arch"))
_SPANS = {"span", "name_span", "op_span", "subject_span", "family_span"}


def shape_of(node):
    """An AST without positions, for comparing meaning."""
    if dataclasses.is_dataclass(node):
        return (type(node).__name__,) + tuple(shape_of(getattr(node, f.name)) for f in dataclasses.fields(node)
                                              if f.name not in _SPANS and f.name != "file")
    if isinstance(node, (list, tuple)):
        return tuple(shape_of(n) for n in node)
    return node


def check_formatting(text: str) -> str:
    once = format_text(text)
    assert format_text(once) == once, "formatting is not idempotent"
    assert shape_of(parse(once)) == shape_of(parse(text)), "formatting changed the meaning"
    before = [c.text for c in parse_with_comments(text)[1]]
    after = [c.text for c in parse_with_comments(once)[1]]
    assert " ".join(before).split() == " ".join(after).split(), "comments were lost or reordered"
    return once


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file(path):
    check_formatting(path.read_text())


def _ir(path) -> list[str]:
    return [re.sub(r"  @ .*$", "", line) for line in dump(compile_spec(path).graph).splitlines()]


def test_formatted_specs_and_stdlib_compile_to_the_same_ir(tmp_path):
    """Every spec and every stdlib file formatted (imports find the formatted copies first)."""
    for src in STDLIB.rglob("*.arch"):
        dst = tmp_path / src.relative_to(STDLIB)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(format_text(src.read_text()))
    for spec in sorted((ROOT / "specs").glob("*.arch")):
        (tmp_path / spec.name).write_text(format_text(spec.read_text()))
        assert _ir(tmp_path / spec.name) == _ir(spec), spec.name


def test_canonical_form():
    text = ('# head\nblock b( out,s=1 ){residual{conv(out,k = 3,s = s)->bn->relu # why\n}shortcut when s!=1{'
            'conv(out,k=1,s=s)}\n->relu}\n\n\n\nx_1 = (1+2)*3-(4-5)-  -1\nmodel m{input [3,8,8];b(8) x 2 first(s=2) '
            'when true}\n')
    assert format_text(text) == (
        "# head\n"
        "block b(out, s = 1) {\n"
        "  residual {\n"
        "    conv(out, k=3, s=s) -> bn -> relu  # why\n"
        "  } shortcut when s != 1 {\n"
        "    conv(out, k=1, s=s)\n"
        "  }\n"
        "  -> relu\n"
        "}\n"
        "\n"
        "x_1 = (1 + 2) * 3 - (4 - 5) - -1\n"
        "model m {\n"
        "  input [3, 8, 8]\n"
        "  b(8) x 2 first(s = 2) when true\n"
        "}\n")


def test_precedence_round_trips():
    text = ("a = -(2 ** 2) + (-2) ** 2 + 2 ** -1 + (1 < 2) == true ? [1][0] : not (true and false) or false\n"
            "b = (true ? 1 : 2) + (a ? b : c ? d : e) - (x[1:] - -y.c)[0] // (2 % 3)\n")
    check_formatting(text)


def test_comments_everywhere():
    text = ("# file\n\nimport \"blocks/resnet.arch\"  # basic\n# before b\nblock b(out) {  # header\n"
            "  # lead\n  conv(out, k=1)  # trail\n\n  # spaced\n  relu\n  # closing\n}  # after\n# end\n")
    once = check_formatting(text)
    assert "  # lead\n  conv(out, k=1)  # trail\n\n  # spaced\n  relu\n  # closing\n}  # after\n# end\n" in once


def test_fmt_check_cli(tmp_path, capsys):
    ugly = tmp_path / "ugly.arch"
    ugly.write_text("model m{input [3,8,8]\nconv(8,k=3)->relu}\n")
    assert main(["fmt", "--check", str(ugly)]) == 1
    out = capsys.readouterr()
    assert "+  conv(8, k=3) -> relu" in out.out and "would reformat" in out.err
    assert main(["fmt", str(ugly)]) == 0
    assert ugly.read_text() == "model m {\n  input [3, 8, 8]\n  conv(8, k=3) -> relu\n}\n"
    assert main(["fmt", "--check", str(ugly)]) == 0
    broken = tmp_path / "broken.arch"
    broken.write_text("model m {\n")
    assert main(["fmt", str(broken)]) == 1
    assert "broken.arch:1:" in capsys.readouterr().err


def test_shipped_specs_are_canonical(tmp_path):
    for spec in sorted((ROOT / "specs").glob("*.arch")):
        shutil.copy(spec, tmp_path / spec.name)
        main(["fmt", str(tmp_path / spec.name)])
        assert compile_spec(tmp_path / spec.name).params == compile_spec(spec).params


@FUZZ
@given(valid_specs())
def test_generated_specs(text):
    once = check_formatting(text)
    assert _dump_text(once) == _dump_text(text)


def _dump_text(text):
    return [re.sub(r"  @ .*$", "", line) for line in dump(compile_spec(text=text).graph).splitlines()]


@FUZZ
@given(mutated_specs())
def test_mutated_specs_that_parse(text):
    try:
        parse(text)
    except ArchDSLError:
        return
    check_formatting(text)


def test_shipped_files_are_in_canonical_form(capsys):
    files = sorted((ROOT / "specs").glob("*.arch")) + sorted((ROOT / "archdsl" / "stdlib").rglob("*.arch"))
    assert main(["fmt", "--check", *map(str, files)]) == 0, capsys.readouterr().out


# The language's newer forms, each in canonical form already (fmt leaves it as it is).
NEW_SYNTAX = {
    "repeat index": ("model m {\n  input [3, 8, 8]\n  b(8, dp=0.1 * j) x 3 with j first(s = 2, dp = j)\n"
                     "  conv(4 + j, k=1) -> relu x 2 with j when true\n}\n"),
    "comprehension": ("a = [c * 2 for c in widths]\nb = [[i, c] for i, c in zip(xs, ys) if c > 0 and i != 2]\n"
                      "c = [x1 ? 1 : 2 for x1 in [true, false]]\nd = [[r * c for c in q] for r in range(3)][0]\n"),
    "branch when": ("block b(pool = true) {\n  concat {\n    a { conv(4, k=1) }\n    { conv(6, k=3) } when not pool\n"
                    "    pool {\n      maxpool(3, 1, 1)\n      conv(2, k=1)\n    } when pool  # kept\n  }\n}\n"),
}


@pytest.mark.quick
@pytest.mark.parametrize("name", sorted(NEW_SYNTAX))
def test_new_syntax_is_canonical_and_round_trips(name):
    text = NEW_SYNTAX[name]
    assert check_formatting(text) == text


@pytest.mark.quick
def test_long_tables_are_written_one_row_per_line():
    rows = ", ".join(f"[6, {16 * i}, {i}, 2]" for i in range(1, 9))
    text = (f"family f(blocks = [{rows}], classes = 10) {{\n  input [3, 8, 8]\n"
            "  table = [[1, 16, 1, 1],  # first\n    [6, 24, 2, 2], [6, 32, 3, 2],  # two on a line\n"
            f"    # own line\n    [6, 64, 4, 2]]\n  small = [[1, 2], [3, 4]]\n  for t, c in [{rows}] {{ conv(c, k=1) }}\n"
            f"  stages for t, c in [{rows}] {{ conv(c, k=1) }}\n}}\n")
    once = check_formatting(text)
    assert "  table = [\n    [1, 16, 1, 1],  # first\n    [6, 24, 2, 2],\n    [6, 32, 3, 2],  # two on a line\n" \
           "    # own line\n    [6, 64, 4, 2],\n  ]\n" in once
    assert "  small = [[1, 2], [3, 4]]\n" in once  # what fits stays on one line
    assert "  for t, c in [\n    [6, 16, 1, 2],\n" in once and "    [6, 128, 8, 2],\n  ] {\n    conv(c, k=1)\n" in once
    assert "  stages for t, c in [\n    [6, 16, 1, 2],\n" in once
    assert once.startswith("family f(\n  blocks = [\n    [6, 16, 1, 2],\n") and "  ],\n  classes = 10,\n) {\n" in once


def test_commented_table_parameters_are_written_one_per_line():
    text = ("family net(\n  classes = 10,\n  # expansion t, channels c, repeats n, stride s\n  stages = [\n"
            "    [1, 16, 1, 1],  # no expansion\n    [6, 24, 2, 2],\n  ],\n) {\n  input [3, 32, 32]\n}\n\n"
            "model m = net(\n  stages = [\n    [1, 16, 1, 1],\n    [6, 24, 2, 2],  # last\n  ],\n)\n"
            "model k = net(stages = [[1, 16, 1, 1], [6, 24, 2, 2]])  # fits: one line\n")
    assert check_formatting(text) == text


def test_cr_and_crlf_files_format_with_their_lines():
    text = "# a\rmodel m {\r  input [3, 8, 8]  # b\r\r  relu\r}\r"
    want = "# a\nmodel m {\n  input [3, 8, 8]  # b\n\n  relu\n}\n"
    assert format_text(text) == want and format_text(text.replace("\r", "\r\n")) == want
