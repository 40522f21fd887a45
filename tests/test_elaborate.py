"""The language's semantics, one construct at a time (front end only: no torch)."""
from __future__ import annotations

import pytest

from archdsl.compiler import compile_spec
from archdsl.errors import ArchDSLError, ArchNameError, ArchShapeError, ArchTypeError


def graph_of(src: str):
    return compile_spec(text=src).graph


def scopes(src: str) -> list[str]:
    return [n.scope for n in graph_of(src)]


def test_chain_and_numbering():
    s = scopes("model m { input [3, 8, 8]  conv(4, k=3) -> bn -> relu -> conv(4, k=1) -> relu6 -> relu6 }")
    assert s == ["input", "conv1", "bn1", "relu1", "conv2", "relu6_1", "relu6_2"]


def test_repeat_first_overrides_and_block_scope_collapse():
    src = """
    block b(out, stride = 1) { conv(out, k=3, s=stride) -> bn }
    model m { input [3, 32, 32]  b(8) x 3 first(stride = 2) }
    """
    g = graph_of(src)
    convs = [n for n in g if n.op == "conv"]
    assert [n.scope for n in convs] == ["blocks.0.conv1", "blocks.1.conv1", "blocks.2.conv1"]
    assert [n.attrs.s for n in convs] == [(2, 2), (1, 1), (1, 1)]
    assert g.node(g.output).shape.dims == (8, 16, 16)


def test_repeated_container_names_continue_numbering():
    src = """
    block b(out) { conv(out, k=1) }
    model m { input [3, 8, 8]  for c in [4, 8] { b(c) x 2 } }
    """
    assert [s for s in scopes(src) if s != "input"] == [f"blocks.{i}.conv1" for i in range(4)]


def test_named_loop_sections_and_in():
    src = """
    model m {
      input [3, 16, 16]
      stem { conv(8, k=3, s=2) }
      stages for i, w in [8, 16] {
        conv(in.channels * 2, k=1)
      }
    }
    """
    g = graph_of(src)
    assert [(n.scope, n.shape.c) for n in g if n.op == "conv"] == [
        ("stem.conv1", 8), ("stages.0.conv1", 16), ("stages.1.conv1", 32)]


def test_loop_unpacks_rows_of_a_table():
    src = """
    model m { input [3, 8, 8]
      for t, c in [[1, 4], [2, 6]] { conv(c * t, k=1) } }
    """
    assert [n.shape.c for n in graph_of(src) if n.op == "conv"] == [4, 12]


def test_residual_when_only_drops_the_skip_connection():
    src = """
    block ir(out, stride) { residual when stride == 1 and in.channels == out { conv(out, k=3, s=stride) } }
    model m { input [4, 8, 8]  ir(4, 1) -> ir(8, 1) -> ir(8, 2) }
    """
    ops = [n.op for n in graph_of(src)]
    assert ops.count("add") == 1 and ops.count("conv") == 3


def test_statement_when_drops_the_statement():
    src = "model m { input [3, 8, 8]  conv(4, k=1) -> relu when false  conv(5, k=1) when 1 > 0 }"
    assert [n.op for n in graph_of(src)] == ["input", "conv"]


def test_shortcut_projection_and_concat_gate_merge():
    src = """
    model m {
      input [8, 16, 16]
      residual { conv(16, k=3, s=2) } shortcut { conv(16, k=1, s=2) }
      concat { { identity } { conv(8, k=1) } }
      gate { avgpool -> conv(24, k=1) -> sigmoid }
      merge mean { a { conv(4, k=1) } b { conv(4, k=1) } }
    }
    """
    g = graph_of(src)
    assert g.node(g.output).shape.dims == (4, 8, 8)
    names = {n.scope for n in g}
    assert {"shortcut.conv1", "branch1.identity1", "branch2.conv1", "a.conv1", "b.conv1", "mul1"} <= names


def test_scale_rules_are_declarations():
    src = """
    family f(width, depth) {
      scale ch = width divisible_by 8, rep = depth rounding ceil
      input [3, 8, 8]
      conv(ch(32), k=1) x rep(3)
    }
    model m = f(0.35, 1.2)
    """
    g = graph_of(src)
    convs = [n for n in g if n.op == "conv"]
    assert len(convs) == 4 and convs[0].shape.c == 16  # make_divisible(11.2, 8) = 16 (never 10% down)


def test_family_defaults_may_use_earlier_parameters_and_overrides_rebind():
    src = """
    family f(c, classes = c * 2) { input [3, 4, 4]  avgpool -> flatten -> linear(classes) }
    model m = f(5)
    """
    assert compile_spec(text=src).output_shape == [10]
    assert compile_spec(text=src, overrides={"classes": 3}).output_shape == [3]


def test_same_padding_is_tensorflow_style():
    g = graph_of("model m { input [3, 224, 224]  conv(8, k=3, s=2, p=\"same\") }")
    conv = [n for n in g if n.op == "conv"][0]
    assert conv.attrs.p == (0, 1, 0, 1) and conv.shape.dims == (8, 112, 112)


def test_even_kernels_default_to_no_padding():
    g = graph_of("model m { input [3, 224, 224]  conv(8, k=4, s=4) }")
    assert g.node(g.output).shape.dims == (8, 56, 56)


def test_tokens_attention_and_patches():
    src = """
    model m {
      input [16, 8, 8]
      unfold(2) -> layernorm
      merge sdpa(2) { q { linear(16) } k { linear(16) } v { linear(8) } }
      fold(2)
      tokens -> linear(3 * 2 * 8) -> levit_attention(8, 2, 1) -> grid
    }
    """
    g = graph_of(src)
    assert g.node(g.output).shape.dims == (16, 8, 8)


@pytest.mark.parametrize("src, error, fragment, line, col", [
    ("model m { input [3, 8, 8]\n  conv(4, k=3, g=2) }", ArchShapeError, "groups g=2 do not divide the 3 input channels", 2, 3),
    ("model m { input [3, 8, 8]\n  conv(4, k=11, p=1) }", ArchShapeError, "kernel 11 is larger than its padded input", 2, 3),
    ("model m { input [3, 8, 8]\n  residual { conv(8, k=1) } }", ArchShapeError,
     "residual branch ends with 8 channels but the shortcut carries 3", 2, 14),
    ("model m { input [3, 9, 9]\n  unfold(2) }", ArchShapeError, "patch size 2x2 does not divide the 9x9", 2, 3),
    ("model m { input [3, 8, 8]\n  tokens -> linear(48) -> levit_attention(8, 2, 1, resolution=[4, 4]) }",
     ArchShapeError, "64 tokens (8x8) do not match the attention resolution 4x4", 2, 27),
    ("model m { input [3, 8, 8]\n  conv(4, k=3) -> bottlenek }", ArchNameError, "unknown block or op 'bottlenek'", 2, 19),
    ("model m { input [3, 8, 8]\n  conv(relu, k=3) }", ArchTypeError, "'out' expects an output channel count, got op 'relu'", 2, 3),
    ("model m { input [3, 8, 8]\n  conv(4, k=3, s=0) }", ArchTypeError, "'s' must be > 0", 2, 16),
    ("model m { input [3, 8, 8]\n  conv(64 / 3, k=1) }", ArchTypeError, "must be a whole number", 2, 3),
    ("block b() { b }\nmodel m { input [3, 8, 8]\n  b }", ArchDSLError, "block 'b' uses itself", 1, 13),
])
def test_errors_point_at_the_spec(src, error, fragment, line, col):
    with pytest.raises(error) as info:
        compile_spec(text=src)
    e = info.value
    assert fragment in e.message, e.message
    assert (e.span.line, e.span.col) == (line, col), e.render()


def test_kernel_wider_than_its_input_is_a_warning():
    compiled = compile_spec(text="model m { input [3, 8, 8]\n  conv(4, k=11) }")
    (w,) = compiled.warnings
    assert "larger than its 8x8 input" in w.message and (w.span.line, w.span.col) == (2, 3)
    assert w.render().startswith("<spec>:2:3: warning:")


def test_unknown_names_suggest_close_matches():
    with pytest.raises(ArchNameError) as info:
        compile_spec(text='import "blocks/resnet.arch"\nmodel m { input [3, 8, 8]\n  bottlenek(64) }')
    assert "did you mean 'bottleneck'?" in info.value.hint


def test_block_errors_show_the_use_site_first():
    src = "block b(c) { conv(c, k=3, g=5) }\nmodel m { input [3, 8, 8]\n  b(10) }"
    with pytest.raises(ArchShapeError) as info:
        compile_spec(text=src)
    assert (info.value.span.line, info.value.trace[0].line) == (1, 3)
    assert "in a use from here" in info.value.render()


def test_expect_statements():
    ok = "model m { input [3, 8, 8]  avgpool -> flatten -> linear(10)  expect params == 40  expect output == [10] }"
    assert compile_spec(text=ok).params == 40
    with pytest.raises(ArchDSLError, match="params is 40, not == 41"):
        compile_spec(text=ok.replace("== 40", "== 41"))


# ---------------------------------------------------------------- strings
@pytest.mark.quick
def test_strings_join_with_plus_and_str_spells_values():
    src = """
    model m {
      input [3, 8, 8]
      tag = "stage" + str(1 + 1)
      conv(8, k=3, p="sa" + "me") when tag == "stage2"
      conv(9, k=1) when str(true) + "/" + str(0.5) + "/" + str("x") == "true/0.5/x"
    }
    """
    assert graph_of(src).node(graph_of(src).output).shape.dims == (9, 8, 8)
    with pytest.raises(ArchTypeError, match="joins a string only with another string") as info:
        compile_spec(text='model m { input [3, 8, 8]\n  n = "stage" + 1 }')
    assert (info.value.span.line, info.value.span.col) == (2, 17) and "str(" in info.value.hint


# ---------------------------------------------------------------- configured blocks and ops
CONFIGURED = """
block bott(out, stride = 1, groups = 1, width = 64) {
  conv(out * groups * width // 64, k=3, s=stride, g=groups) -> bn
}
family f(block = bott, norm = bn) {
  input [32, 16, 16]
  stages for i, w in [64, 128] {
    block(w) x 2 first(stride = 2)
    norm
  }
}
model plain = f()
model direct = f(block = bott)
model configured = f(block = bott(groups = 32, width = 4), norm = layernorm(eps = 1e-6))
"""


def _nodes(model):
    return [(n.scope, n.op, n.shape.dims) for n in compile_spec(text=CONFIGURED, model=model).graph]


def test_configured_block_argument_keeps_the_module_tree():
    configured = compile_spec(text=CONFIGURED, model="configured").graph
    convs = [n for n in configured if n.op == "conv"]
    assert [n.attrs.g for n in convs] == [32] * 4 and [n.shape.c for n in convs] == [128, 128, 256, 256]
    assert [n.attrs.s for n in convs] == [(2, 2), (1, 1), (2, 2), (1, 1)]  # first(...) still applies
    assert [n.attrs.eps for n in configured if n.op == "layernorm"] == [1e-6, 1e-6]
    # the same scopes as the block named directly: configuring it changes no name
    assert [s for s, op, _ in _nodes("configured") if op != "layernorm"] == \
        [s for s, op, _ in _nodes("direct") if op != "bn" or ".blocks." in s]
    assert _nodes("plain") == _nodes("direct")


@pytest.mark.quick
def test_configured_block_arguments_bind_like_partial():
    src = """
    block b(out, k = 3) { conv(out, k=k) }
    model m {
      input [3, 8, 8]
      c = b(k = 1)
      d = c(4)
      d -> c(5, k = 3) -> d(k = 3)
    }
    """
    g = graph_of(src)
    assert [(n.scope, n.shape.c, n.attrs.k) for n in g if n.op == "conv"] == [
        ("b1.conv1", 4, (1, 1)), ("b2.conv1", 5, (3, 3)), ("b3.conv1", 4, (3, 3))]
    with pytest.raises(ArchTypeError, match="got 'out' twice") as info:
        compile_spec(text="block b(out) { conv(out, k=1) }\nmodel m { input [3, 8, 8]\n  c = b(out = 3)\n  c(4) }")
    assert (info.value.span.line, info.value.span.col) == (3, 9) and info.value.trace[0].line == 4


# ---------------------------------------------------------------- the repeat index
def test_repeat_index_is_bound_in_each_repeat_and_in_first():
    src = """
    block b(out, stride = 1, dp = 0.0) { conv(out, k=3, s=stride) -> dropout(dp) }
    model m {
      input [3, 16, 16]
      b(8, dp = 0.1 * j) x 3 with j first(stride = 2, dp = 0.5 + j)
      conv(4 + k, k=1) -> relu x 2 with k
    }
    """
    g = graph_of(src)
    assert [n.attrs.p for n in g if n.op == "dropout"] == [0.5, 0.1, 0.2]
    assert [(n.scope, n.shape.c) for n in g if n.op == "conv"][3:] == [("blocks.3.conv1", 4), ("blocks.4.conv1", 5)]
    # numbering and names are those of the same repetition without an index
    plain = graph_of(src.replace("0.1 * j", "0.1").replace("0.5 + j", "0.5").replace("4 + k", "4")
                     .replace(" with j", "").replace(" with k", ""))
    assert [n.scope for n in g] == [n.scope for n in plain]


# ---------------------------------------------------------------- list comprehensions
@pytest.mark.quick
def test_list_comprehensions_bind_like_for_and_filter():
    src = """
    model m {
      input [3, 8, 8]
      widths = [c * 2 for c in [1, 2, 3]]                   # 2, 4, 6
      rows = [a * 10 + b for a, b in [[1, 2], [3, 4]] if a > 1]  # unpacked: 34
      picked = [i for i, c in [5, 6, 7] if c != 6]          # index and item: 0, 2
      nested = [[r * c for c in [1, 2]] for r in range(3)]  # [[0, 0], [1, 2], [2, 4]]
      c = 100                                               # not touched by the loops' names
      conv(sum(widths) + rows[0] + sum(picked) + nested[2][1] + c, k=1)
    }
    """
    g = graph_of(src)
    assert g.node(g.output).shape.c == 12 + 34 + 2 + 4 + 100
    with pytest.raises(ArchNameError, match="unknown name 'q'"):
        graph_of("model m { input [3, 8, 8]\n  a = [q for q in [1]]\n  conv(q, k=1) }")


# ---------------------------------------------------------------- `when` on merge branches
def test_a_branch_dropped_by_when_is_absent():
    src = """
    block incep(pool = true, wide = false) {
      concat {
        a { conv(4, k=1) }
        { conv(6, k=3) } when wide
        pool { maxpool(3, 1, 1) -> conv(2, k=1) } when pool and in.channels > 0
        { conv(1, k=1) } when wide
      }
    }
    model m {
      input [3, 8, 8]
      incep -> incep(wide = true) -> incep(pool = false)
    }
    """
    g = graph_of(src)
    assert [n.scope for n in g if n.op in ("conv", "concat")] == [
        "incep1.a.conv1", "incep1.pool.conv1", "incep1.concat1",
        "incep2.a.conv1", "incep2.branch1.conv1", "incep2.pool.conv1", "incep2.branch2.conv1", "incep2.concat1",
        "incep3.a.conv1"]  # the last keeps one branch: no join node
    assert g.node(g.output).shape.c == 4
    with pytest.raises(ArchTypeError, match="sdpa joins 3 branches, but only 2 remain"):
        graph_of("model m { input [8, 4, 4]  tokens\n  merge sdpa(2) { { linear(8) } { linear(8) } when false "
                 "{ linear(8) } } }")


# ---------------------------------------------------------------- assignments in for bodies
def test_for_bodies_assign_in_the_enclosing_environment():
    src = """
    model m {
      input [3, 8, 8]
      total = 0
      for i, n in [1, 2, 3] {
        total = total + n                       # accumulates: 6
        if n == 2 { last = i }                  # a new name, visible after the loop: 1
        for k in [10] { inner = k + total; n = 100 }  # through both loops; n is the loop's own
        ss for q in [0] { total = 1000 }        # a named loop's body keeps its assignments
      }
      conv(total + last + inner + n0, k=1) when false
      conv(total + last + inner, k=1)
    }
    """
    g = graph_of(src.replace("n0", "0"))
    assert g.node(g.output).shape.c == 6 + 1 + 16
    with pytest.raises(ArchNameError, match="unknown name 'n'"):  # loop variables stay in the loop
        graph_of(src.replace("when false", "").replace("n0", "n"))


# ---------------------------------------------------------------- characters
@pytest.mark.parametrize("ch", [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)])
def test_bidi_controls_are_refused_everywhere(ch):
    for where, src in [("comment", f"model m {{\n  input [3, 8, 8]  # a{ch}b\n}}"),
                       ("string", f'model m {{\n  input [3, 8, 8]\n  conv(4, k=3, p="s{ch}ame")\n}}'),
                       ("code", f"model m {{\n  input [3, 8, 8]\n  {ch}relu\n}}")]:
        with pytest.raises(ArchDSLError, match="bidirectional control character") as info:
            compile_spec(text=src)
        assert info.value.span.line in (2, 3), where


@pytest.mark.quick
def test_names_and_numbers_are_ascii_and_a_lone_cr_breaks_lines():
    for digit in ("\u09ea", "\uff14", "\u0664"):  # Bengali, full-width and Arabic-Indic fours
        with pytest.raises(ArchDSLError) as info:
            compile_spec(text=f"model m {{\n  input [3, 8, 8]\n  conv({digit}, k=1)\n}}")
        assert "unexpected character" in info.value.message and "0-9" in info.value.hint
        assert (info.value.span.line, info.value.span.col) == (3, 8)
    with pytest.raises(ArchDSLError, match="line break to some tools"):
        compile_spec(text="model m {  # a\u2028b\n  input [3, 8, 8]\n}")
    ok = "# note: caf\u00e9 \u2192 fine in comments\rmodel m {\r  input [3, 8, 8]\r  conv(4, k=1, p=\"same\")  # \u00e9\r}\r"
    assert compile_spec(text=ok).output_shape == [4, 8, 8]  # not one long comment
    for newline in ("\r", "\r\n"):
        with pytest.raises(ArchNameError) as info:
            compile_spec(text=ok.replace("\r", newline).replace("conv(4", "bogus -> conv(4"))
        assert (info.value.span.line, info.value.span.col) == (4, 3)


# ---------------------------------------------------------------- threads and the work budget
def test_threads_compiling_at_once_do_not_see_each_others_evaluation():
    import sys
    from concurrent.futures import ThreadPoolExecutor

    chain = "\n".join(f"c{i} = c{i + 1} + 1" for i in range(40)) + "\nc40 = 4\n"
    good = chain + "model m {\n  input [3, 8, 8]\n" + "".join(f"  conv(c{i % 40}, k=1)\n" for i in range(30)) + "}\n"
    cyclic = "a = b + 1\nb = a + 1\nmodel m {\n  input [3, 8, 8]\n  conv(a, k=1)\n}\n"

    def outcome(text):
        try:
            return compile_spec(text=text).output_shape
        except ArchDSLError as e:
            return e.render()

    serial = [outcome(good), outcome(cyclic)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(outcome, [good, cyclic] * 16))
    finally:
        sys.setswitchinterval(interval)
    assert results == serial * 16
    assert "defined in terms of itself (a -> b -> a)" in serial[1]


@pytest.mark.parametrize("src", [
    # a trillion repetitions of an empty block
    "block e() { }\nblock b2() { e x 10000 }\nblock b3() { b2 x 10000 }\nmodel m { input [3, 8, 8]\n  b3 x 10000 }",
    # ten billion loop iterations, named loops too
    "model m { input [3, 8, 8]\n  for i in range(100000) { for j in range(100000) { } } }",
    "model m { input [3, 8, 8]\n  s for i in range(100000) { t for j in range(100000) { } } }",
    # expensive expressions: comprehensions of comprehensions, list arithmetic and builtins in loops
    "model m { input [3, 8, 8]\n  a = [[i * j for j in range(100000)] for i in range(100000)] }",
    "model m { input [3, 8, 8]\n  a = range(50000)\n  for i in range(100000) { b = a + a == a + a } }",
    "model m { input [3, 8, 8]\n  for i in range(10000) { s = sum(range(99999)) } }",
])
def test_runaway_elaboration_is_refused_quickly(src):
    import time

    start = time.perf_counter()
    with pytest.raises(ArchDSLError, match="steps of work beyond the ops it builds") as info:
        compile_spec(text=src)
    assert time.perf_counter() - start < 2.0  # about 0.3 s at most here; slack for a busy CI machine
    assert info.value.span is not None and info.value.span.line >= 2  # at the loop, repeat or expression


@pytest.mark.quick
def test_work_budget_leaves_room_for_large_models_and_is_a_limit():
    from archdsl.limits import Limits

    src = "block r(c) { residual { conv(c, k=1) } }\nmodel m { input [8, 4, 4]\n  r(8) x 500 }"
    small = Limits(max_work=10_000)  # 500 blocks take about 11,000 steps, paid for by their 1,000 ops
    assert len(compile_spec(text=src, limits=small).graph) == 1 + 2 * 500
    with pytest.raises(ArchDSLError, match="more than 10,000 steps"):  # the same work building nothing
        compile_spec(text=src.replace("residual { conv(c, k=1) }", ""), limits=small)
    loop = "model m { input [3, 8, 8]\n  t = 0\n  for i in range(10000) { t = t + i }\n  conv(t % 7 + 1, k=1) }"
    assert compile_spec(text=loop).output_shape == [10000 * 9999 // 2 % 7 + 1, 8, 8]
    with pytest.raises(ArchDSLError, match="more than 50,000 steps"):
        compile_spec(text=loop, limits=Limits(max_work=50_000))
