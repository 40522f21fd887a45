"""Property tests: whatever the text, the front end answers with an `ArchDSLError` or a
checked graph, never another exception and never a hang; and random valid architectures
compile, build, and run to the statically inferred shape.

Examples per property: ARCHDSL_FUZZ_EXAMPLES (default 40, for CI). Fuzz longer with e.g.
    ARCHDSL_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py tests/test_fmt.py
"""
from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.compiler import compile_spec
from archdsl.errors import ArchDSLError
from conftest import ROOT

EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=10_000, derandomize="ARCHDSL_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
STDLIB = ROOT / "archdsl" / "stdlib"
SPECS = sorted((ROOT / "specs").glob("*.arch"))


def compiles_or_reports(text: str) -> None:
    """The property: an ArchDSLError (with a position when it is about the text) or success."""
    try:
        compile_spec(text=text)
    except ArchDSLError as e:
        e.render()  # rendering must not fail either


# ---------------------------------------------------------------- text from the grammar
@functools.lru_cache(maxsize=1)
def _grammar_strategy():
    from hypothesis.extra.lark import from_lark
    from lark import Lark

    grammar = resources.files("archdsl.frontend").joinpath("grammar.lark").read_text()
    names = st.sampled_from(["a", "b", "out", "conv", "bn", "relu", "stem", "in_chans", "k", "x", "blocks",
                             "basic", "bottleneck", "linear", "tokens", "avgpool", "flatten", "depths"])
    numbers = st.sampled_from(["0", "1", "2", "3", "8", "16", "64", "1e-6", "0.5", "25_557_032", "4.2G",
                               "999999999999999999", "7"])
    explicit = {"NAME": names, "NUMBER": numbers, "STRING": st.sampled_from(['"a"', '"blocks/resnet.arch"', '""']),
                "COMMENT": st.just("# c"), "WS": st.sampled_from([" ", "\n", "  "])}
    return from_lark(Lark(grammar, parser="lalr", lexer="contextual"), explicit=explicit)


@FUZZ
@given(st.data())
def test_grammar_generated_text(data):
    text = data.draw(_grammar_strategy())
    compiles_or_reports(text + "\n")


# ---------------------------------------------------------------- random text
SPEC_ALPHABET = st.sampled_from(list("abcxk_01289 \n\t{}()[],=-><+*/%.?:;#\"'!") +
                                ["->", "model m {", "input [3, 8, 8]", "conv(", "residual", "x ", "block b(",
                                 "import ", "\x00", "\u00e9", "\ufeff"])


@FUZZ
@given(st.lists(SPEC_ALPHABET, max_size=200).map("".join))
def test_random_spec_like_text(text):
    compiles_or_reports(text)


@FUZZ
@given(st.text(max_size=300))
def test_random_unicode_text(text):
    compiles_or_reports(text)


# ---------------------------------------------------------------- mutations of every shipped spec
def _flatten(spec: Path) -> str:
    """A spec with its imports inlined, so that mutations can hit the blocks and families too."""
    seen: set[Path] = set()

    def inline(path: Path) -> str:
        out = []
        for line in path.read_text().splitlines():
            m = re.match(r'\s*import "(.*)"', line)
            if m:
                target = (path.parent / m.group(1)) if (path.parent / m.group(1)).is_file() else STDLIB / m.group(1)
                if target.resolve() not in seen:
                    seen.add(target.resolve())
                    out.append(inline(target))
            else:
                out.append(line)
        return "\n".join(out)

    # the model's size and output change with the resolution set below
    text = "\n".join(line for line in inline(spec).splitlines()
                     if not line.strip().startswith(("expect params", "expect output")))
    return _small_input(text)


def _small_input(text: str, resolution: int = 128) -> str:
    """Small inputs keep each example fast: every family takes `resolution`, set here as the
    instance's last argument (replacing the spec's own; Inception v3 needs 75 px, MobileViT a multiple of 64)."""
    m = re.search(r"model \w+ = \w+\(", text)
    if m is None:
        return text
    depth, end = 1, m.end()
    while depth:  # the instance's closing parenthesis
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    args = re.sub(r",?\s*resolution\s*=\s*[0-9_]+", "", text[m.end():end - 1]).strip().rstrip(",")
    args = f"{args}, resolution = {resolution}" if args else f"resolution = {resolution}"
    return text[:m.end()] + args + text[end - 1:]


FLAT = {p.stem: _flatten(p) for p in SPECS}
TOKEN = re.compile(r'#[^\n]*|"[^"\n]*"|\d[\d_.eE]*[KMGT]?|[A-Za-z_]\w*|->|//|\*\*|==|!=|<=|>=|\S|\s+')


@st.composite
def mutated_specs(draw):
    name = draw(st.sampled_from(sorted(FLAT)))
    tokens = TOKEN.findall(FLAT[name])
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        kind = draw(st.sampled_from(["delete", "swap", "duplicate", "number", "replace", "truncate"]))
        if kind == "delete":
            del tokens[i]
        elif kind == "swap" and i + 2 < len(tokens):
            tokens[i], tokens[i + 2] = tokens[i + 2], tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "number":
            nums = [j for j, t in enumerate(tokens) if t[0].isdigit()]
            if nums:
                j = draw(st.sampled_from(nums))
                tokens[j] = draw(st.sampled_from(["0", "-1", "1", "3", "1000000", "10 ** 9", "0.5", "1e400", "2.5"]))
        elif kind == "replace":
            tokens[i] = draw(st.sampled_from(["{", "}", "(", ")", "->", "x 3", "as", "in", "relu", "residual",
                                              "=", "==", ",", "when", "shortcut", "[", "]", "bottleneck", '"s"']))
        elif kind == "truncate":
            del tokens[i:]
    return "".join(tokens)


def test_flattened_specs_compile():
    for name, text in FLAT.items():
        compile_spec(text=text + "\n")


@FUZZ
@given(mutated_specs())
def test_mutated_shipped_specs(text):
    compiles_or_reports(text)


# ---------------------------------------------------------------- random valid architectures
IMPORTS = 'import "blocks/resnet.arch"\nimport "blocks/mobilenet.arch"\nimport "blocks/convnext.arch"\n'


@st.composite
def valid_specs(draw):
    """Spec text of a random valid CNN: stem, stages of stdlib blocks and combinators, head."""
    res = draw(st.sampled_from([16, 32]))
    c = draw(st.sampled_from([3, 4]))
    h = res
    lines = ["model rnd {", f"  input [{c}, {res}, {res}]"]

    def stride():
        nonlocal h
        s = draw(st.sampled_from([1, 2])) if h >= 8 else 1
        h = -(-h // s)
        return s

    width = draw(st.sampled_from([8, 12, 16]))
    k = draw(st.sampled_from([1, 3, 5]))
    lines.append(f"  stem {{\n    conv({width}, k={k}, s={stride()}) -> bn -> relu\n  }}")
    c = width
    body = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "basic", "bottleneck", "inverted", "convnext", "residual",
                                     "concat", "se", "pool", "repeat"]))
        out = draw(st.sampled_from([8, 16, 24, 32]))
        if kind == "conv":
            g = draw(st.sampled_from([g for g in (1, 2, 4, 8) if c % g == 0 and out % g == 0]))
            kk = draw(st.sampled_from([1, 3]))
            body.append(f"conv({out}, k={kk}, s={stride()}, g={g}) -> bn -> relu")
            c = out
        elif kind == "basic":
            body.append(f"basic({out}, stride={stride()})")
            c = out
        elif kind == "bottleneck":
            body.append(f"bottleneck({out}, stride={stride()}, groups={draw(st.sampled_from([1, 2]))})")
            c = out
        elif kind == "inverted":
            se = draw(st.sampled_from([0, 0.25]))
            # expand=1 skips the expansion: the depthwise width make_divisible(c, 8) must be c
            expand = draw(st.sampled_from([1, 4, 6] if c % 8 == 0 else [4, 6]))
            body.append(f"inverted_residual({out}, stride={stride()}, expand={expand}, "
                        f"se={se})")
            c = out
        elif kind == "convnext":
            body.append(f"convnext({c})")
        elif kind == "residual":
            body.append(f"residual {{\n      conv({c}, k=3) -> bn -> relu\n      conv({c}, k=1) -> bn\n    }}")
        elif kind == "concat":
            a, b = draw(st.sampled_from([4, 8])), draw(st.sampled_from([4, 8, 12]))
            body.append(f"concat {{\n      {{ conv({a}, k=1) }}\n      {{ conv({b}, k=3) -> relu }}\n    }}")
            c = a + b
        elif kind == "se":
            body.append(f"squeeze_excite({max(1, c // 4)})")
        elif kind == "pool" and h >= 4:
            body.append("maxpool(k=2, s=2)")
            h = -(-h // 2) if h % 2 else h // 2
        elif kind == "repeat":
            body.append(f"basic({c}) x {draw(st.integers(1, 3))}")
    lines.append("  stages {\n" + "".join(f"    {b}\n" for b in body) + "  }" if body else "")
    classes = draw(st.sampled_from([1, 10]))
    lines.append(f"  head {{\n    avgpool -> flatten -> linear({classes}) as fc\n  }}\n}}\n")
    return IMPORTS + "\n".join(line for line in lines if line)


@settings(FUZZ, max_examples=max(8, EXAMPLES // 5))
@given(valid_specs())
def test_random_valid_architectures_build_and_run(text):
    torch = pytest.importorskip("torch")
    import archdsl

    compiled = compile_spec(text=text)
    model = archdsl.build(compiled).eval()
    with torch.no_grad():
        y = model(torch.randn(2, *compiled.input_shape))
    assert list(y.shape) == [2, *compiled.output_shape]
    assert compiled.params == sum(p.numel() for p in model.parameters())
