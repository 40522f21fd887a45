"""The oneDNN kernels behind the fused inference ops: each equals the aten ops it stands for,
is used exactly where it is valid, and follows weight updates."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import archdsl
from archdsl.emit import onednn
from archdsl.emit.runtime import ConvAct2d, ConvAdd2d, LinearAct
from reference import randomize

pytestmark = pytest.mark.skipif(not onednn.available(), reason="torch built without oneDNN")

ACTS = sorted(onednn.POST_OPS)


def _ops_called(fn) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


def _both(module, *xs):
    """(oneDNN result, aten result) of one module."""
    with torch.no_grad():
        fast = module(*xs)
        with onednn.disabled():
            plain = module(*xs)
    return fast, plain


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_with_each_post_op_equals_aten(act, channels_last):
    torch.manual_seed(0)
    # asymmetric (TF 'same') padding, stride 2, groups: the awkward corners
    conv = ConvAct2d(8, 12, 3, stride=2, groups=2, bias=True, act=act, pads=(0, 1, 0, 1)).eval()
    x = torch.randn(2, 8, 9, 9)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fast, plain = _both(conv, x)
    assert fast.shape == plain.shape == (2, 12, 4, 4)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)
    with torch.no_grad():
        assert "mkldnn::_convolution_pointwise" in _ops_called(lambda: conv(x))


@pytest.mark.parametrize("act", [None, "relu", "silu"])
def test_conv_plus_residual_equals_aten(act):
    torch.manual_seed(1)
    conv = ConvAdd2d(6, 6, 3, bias=True, act=act, pads=(1, 1, 1, 1)).eval()
    x, r = torch.randn(3, 6, 7, 7), torch.randn(3, 6, 7, 7)
    r_before = r.clone()
    fast, plain = _both(conv, x, r)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)
    assert torch.equal(r, r_before)  # the residual is read, not written


@pytest.mark.parametrize("grid", [False, True])
def test_linear_gelu_equals_aten(grid):
    torch.manual_seed(2)
    lin = LinearAct(16, 24, act="gelu", grid=grid).eval()
    x = torch.randn(2, 16, 5, 5) if grid else torch.randn(2, 7, 16)
    fast, plain = _both(lin, x)
    torch.testing.assert_close(fast, plain, atol=2e-5, rtol=1e-5)
    with torch.no_grad():
        assert "mkldnn::_linear_pointwise" in _ops_called(lambda: lin(x))


def test_packed_weight_follows_weight_updates_and_input_shapes():
    torch.manual_seed(3)
    conv = ConvAct2d(4, 4, 3, bias=False, act="relu", pads=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        conv(x)
        conv.load_state_dict({"weight": torch.randn(4, 4, 3, 3)})  # an in-place copy: a new version
        fast, plain = _both(conv, x)
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
        y = torch.randn(3, 4, 10, 8)  # another batch and resolution than the weight was packed for
        fast, plain = _both(conv, y)
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_a_module_with_packed_weights_deep_copies():
    conv = ConvAct2d(4, 4, 3, bias=False, act="relu", pads=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        want = conv(x)
        assert torch.equal(copy.deepcopy(conv)(x), want)


def test_aten_ops_where_onednn_does_not_apply():
    conv = ConvAct2d(4, 4, 3, act="relu", pads=(1, 1, 1, 1))
    x = torch.randn(1, 4, 6, 6, requires_grad=True)
    # autograd: the oneDNN ops have no backward, so the module runs aten and trains
    assert "mkldnn::_convolution_pointwise" not in _ops_called(lambda: conv(x).sum().backward())
    assert x.grad is not None and conv.weight.grad is not None
    with torch.no_grad():  # float64: aten
        assert "mkldnn::_convolution_pointwise" not in _ops_called(lambda: conv.double()(x.double()))


def test_optimized_resnet_runs_on_fused_kernels_and_trains_without_them():
    model = archdsl.build("specs/resnet18.arch")
    randomize(model, 0)
    model.eval()
    opt = archdsl.optimize(model)
    ops = {n.op for n in opt.archdsl_graph}
    assert {"conv_act", "conv_add"} <= ops
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        called = _ops_called(lambda: opt(x))
        want = model(x)
    assert "mkldnn::_convolution_pointwise" in called
    assert "mkldnn::_convolution_pointwise" in _ops_called(lambda: opt(x))  # no torch.no_grad() needed
    torch.testing.assert_close(opt(x.requires_grad_()), want, atol=1e-4, rtol=1e-4)
    F.mse_loss(opt(x), want).backward()  # the optimized module still differentiates (aten path)
    assert x.grad is not None
