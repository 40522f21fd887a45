"""torch.compile(fullgraph=True) takes the emitted modules whole: no graph breaks, on one
small variant per block type (dynamo with the eager backend, so the test stays fast;
`fullgraph=True` makes any graph break an error)."""
from __future__ import annotations

import pytest
import torch

import archdsl

import torch._dynamo  # noqa: E402

SMALL = {
    "resnet_basic": ("specs/resnet18.arch", dict(resolution=32, depths=[1, 1, 1, 1], widths=[8, 16, 16, 16],
                                                  stem_width=8, classes=10)),
    "resnet_bottleneck": ("specs/resnet50.arch", dict(resolution=32, depths=[1, 1, 1, 1], widths=[16, 16, 32, 32],
                                                       stem_width=8, classes=10)),
    "convnext": ("specs/convnext_tiny.arch", dict(resolution=32, depths=[1, 1, 1, 1], dims=[8, 16, 16, 16],
                                                   classes=10)),
    "mobilenet_v2": ("specs/mobilenet_v2.arch", dict(resolution=32, width=0.25, classes=10)),
    "levit": ("specs/levit_128s.arch", dict(resolution=64, depths=[1, 1, 1], dims=[32, 48, 64], heads=[2, 3, 4],
                                             classes=10)),
    "mobilevit": ("specs/mobilevit_s.arch", dict(resolution=64, depths=[1, 1, 1], dims=[16, 16, 16],
                                                  widths=[8, 8, 16, 16, 16, 16, 32], classes=10)),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_emitted_modules_compile_without_graph_breaks(name):
    spec, overrides = SMALL[name]
    model = archdsl.build(spec, **overrides).eval()
    x = torch.randn(2, *model.archdsl_info["input_shape"])
    opt = archdsl.optimize(model)
    with torch.no_grad():
        want = model(x)
        # the plain nn.Module, the optimized one and its FX form (the runtime classes: fused
        # conv+activation and conv+residual, oneDNN kernel selection, gathered LeViT bias);
        # fullgraph=True raises on any break
        for module in (model, opt, archdsl.emit_fx(opt)):
            torch._dynamo.reset()
            got = torch.compile(module, fullgraph=True, backend="eager")(x)
            assert (got - want).abs().max().item() < 1e-4


@pytest.mark.slow
def test_inductor_compiles_the_fx_module():
    model = archdsl.build(*SMALL["resnet_basic"][:1], **SMALL["resnet_basic"][1]).eval()
    gm = archdsl.emit_fx(archdsl.optimize(model))
    x = torch.randn(2, *model.archdsl_info["input_shape"])
    torch._dynamo.reset()
    with torch.no_grad():
        got = torch.compile(gm, fullgraph=True)(x)
        assert (got - model(x)).abs().max().item() < 1e-4
