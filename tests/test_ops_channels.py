"""The channel ops (chunk, channel_shuffle) and adaptive pooling: shape rules, errors at the
spec's position, and what the emitted module (plain and torch.fx) computes, against torch
written out independently."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import archdsl
from archdsl.compiler import compile_spec
from archdsl.emit.fx import emit_fx
from archdsl.errors import ArchShapeError, ArchTypeError


def _run(src: str, x: torch.Tensor):
    """The plain module's and the FX module's outputs on x (no tensors involved)."""
    model = archdsl.build(text=src).eval()
    gm = emit_fx(model).eval()
    with torch.no_grad():
        return model(x), gm(x)


SPLIT = """
model split {
  input [8, 5, 5]
  concat {
    second { chunk(1, 2) }
    first { chunk(0) }
  }
  chunk(1, 4)
}
"""


@pytest.mark.quick
def test_chunk_selects_equal_channel_groups():
    assert compile_spec(text=SPLIT).output_shape == [2, 5, 5]
    x = torch.randn(2, 8, 5, 5)
    halves = torch.chunk(x, 2, dim=1)
    want = torch.chunk(torch.cat([halves[1], halves[0]], 1), 4, dim=1)[1]
    for got in _run(SPLIT, x):
        assert torch.equal(got, want)


def test_chunk_on_tokens_and_vectors_splits_the_last_dim():
    src = """
model t {
  input [6, 2, 2]
  tokens -> chunk(2, 3)
}
"""
    assert compile_spec(text=src).output_shape == [4, 2]
    x = torch.randn(1, 6, 2, 2)
    tokens = x.flatten(2).transpose(1, 2)
    for got in _run(src, x):
        assert torch.equal(got, tokens[..., 4:6])
    vec = "model v {\n  input [6]\n  chunk(1, 2)\n}\n"
    assert compile_spec(text=vec).output_shape == [3]


def _torch_channel_shuffle(x, groups):
    # as torchvision's shufflenetv2.channel_shuffle: view, transpose, contiguous, view
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


@pytest.mark.parametrize("groups", [2, 3])
def test_channel_shuffle_interleaves_the_groups(groups):
    src = f"model s {{\n  input [12, 3, 4]\n  channel_shuffle({groups})\n}}\n"
    assert compile_spec(text=src).output_shape == [12, 3, 4]
    x = torch.randn(2, 12, 3, 4)
    for got in _run(src, x):
        assert torch.equal(got, _torch_channel_shuffle(x, groups))
    # channels-last inputs (the inference passes may choose that layout) shuffle the same
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(archdsl.build(text=src)(cl), _torch_channel_shuffle(x, groups))


@pytest.mark.parametrize("size, res", [(7, 224), (7, 100), (7, 5), ([2, 3], 11)])
def test_adaptive_avgpool_fixes_the_output_size(size, res):
    src = f"""
model a {{
  input [4, {res}, {res}]
  adaptive_avgpool({size}) -> flatten -> linear(3) as fc
}}
"""
    h, w = (size, size) if isinstance(size, int) else size
    compiled = compile_spec(text=src)
    assert compiled.params == 4 * h * w * 3 + 3  # the same at every resolution
    x = torch.randn(2, 4, res, res)
    model = archdsl.build(text=src).eval()
    with torch.no_grad():
        pooled = torch.nn.AdaptiveAvgPool2d((h, w))(x).flatten(1)
        assert torch.allclose(model(x), model.fc(pooled))


def test_adaptive_maxpool_matches_torch():
    src = "model m {\n  input [3, 9, 7]\n  adaptive_maxpool([2, 3])\n}\n"
    assert compile_spec(text=src).output_shape == [3, 2, 3]
    x = torch.randn(2, 3, 9, 7)
    for got in _run(src, x):
        assert torch.equal(got, F.adaptive_max_pool2d(x, (2, 3)))


def test_adaptive_pool_costs_and_receptive_field():
    # 8x8 -> 4x4 is a plain 2x2 window with stride 2: exact
    src = "model r {\n  input [2, 8, 8]\n  conv(2, k=3) -> adaptive_avgpool(4) -> conv(2, k=1)\n}\n"
    compiled = compile_spec(text=src)
    rf = compiled.final_rf
    assert (rf.size, rf.jump) == ((4, 4), (2, 2))
    assert compiled.totals.flops == 2 * (2 * 64 * 2 * 9 + 2 * 16 * 2)  # pooling is not counted
    # a size that does not divide: the largest window at the rounded mean spacing
    uneven = "model u {\n  input [2, 7, 7]\n  adaptive_avgpool(3) -> conv(2, k=1)\n}\n"
    rf = compile_spec(text=uneven).final_rf
    assert (rf.size, rf.jump) == ((3, 3), (2, 2))  # windows [0,3), [2,5), [4,7)


@pytest.mark.parametrize("body, error, message", [
    ("chunk(0, 3)", ArchShapeError, "3 chunks do not divide the 8 input channels"),
    ("chunk(2, 2)", ArchTypeError, "chunk 2 of 2 does not exist"),
    ("channel_shuffle(3)", ArchShapeError, "groups=3 do not divide the 8 input channels"),
    ("flatten -> channel_shuffle(2)", ArchShapeError, "channel_shuffle expects a grid input"),
    ("flatten -> adaptive_avgpool(2)", ArchShapeError, "adaptive_avgpool expects a grid input"),
])
def test_errors_name_the_op_and_its_position(body, error, message):
    src = f"model bad {{\n  input [8, 4, 4]\n  {body}\n}}\n"
    with pytest.raises(error) as e:
        compile_spec(text=src)
    assert message in e.value.message
    assert e.value.span is not None and e.value.span.line == 3
    assert e.value.hint
