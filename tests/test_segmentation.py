"""Dense-prediction primitives (upsample, dropout2d) and the segmentation specs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import archdsl
from archdsl.compiler import compile_spec

SEG = """
model seg {
  input [3, 33, 33]
  conv(8, k=3, s=2) -> bn -> relu
  merge concat {
    { identity }
    pool { avgpool -> conv(4, k=1) -> relu -> upsample(size=[in.h, in.w], mode="bilinear") }
  }
  dropout2d(0.1)
  conv(5, k=1, bias=true)
  upsample(scale=2, mode="bilinear", align_corners=true)
  upsample(size=[40, 41])
}
"""


@pytest.mark.quick
def test_upsample_and_dropout2d_match_torch_in_every_emitter():
    torch.manual_seed(0)
    model = archdsl.build(text=SEG).eval()
    x = torch.randn(2, 3, 33, 33)
    y = model(x)
    assert y.shape == (2, 5, 40, 41)
    # by hand, with the model's own layers
    t = F.relu(model.bn1(model.conv1(x)))
    pool = F.relu(model.pool.conv1(F.adaptive_avg_pool2d(t, 1)))
    t = torch.cat([t, F.interpolate(pool, size=(17, 17), mode="bilinear", align_corners=False)], 1)
    t = F.interpolate(model.conv2(t), size=(34, 34), mode="bilinear", align_corners=True)
    torch.testing.assert_close(y, F.interpolate(t, size=(40, 41), mode="nearest"))
    torch.testing.assert_close(archdsl.emit_fx(model)(x), y)
    torch.testing.assert_close(archdsl.optimize(model)(x), y, atol=1e-5, rtol=1e-5)
    model.train()  # dropout2d drops whole channels in training
    torch.manual_seed(1)
    assert not torch.equal(model(x), y)


def test_upsample_shapes_costs_and_receptive_fields():
    c = compile_spec(text=SEG)
    assert c.output_shape == [5, 40, 41]
    ups = [n for n in c.graph if n.op == "upsample"]
    assert [(n.shape.h, n.shape.w) for n in ups] == [(17, 17), (34, 34), (40, 41)]
    assert c.rf[ups[0].id].whole  # from a pooled 1x1 map: sees the whole image
    plain = compile_spec(text="model m {\n  input [3, 16, 16]\n  conv(4, k=3, s=2)\n  upsample(scale=2)\n}\n")
    last = [n for n in plain.graph][-1]
    assert plain.rf[last.id].jump == (1, 1) and plain.rf[last.id].size == (3, 3)


@pytest.mark.parametrize("call, message", [
    ("upsample()", "exactly one of size"),
    ("upsample(scale=2, size=3)", "exactly one of size"),
    ("upsample(scale=2, align_corners=true)", "align_corners applies"),
    ("upsample(scale=0.01)", "makes [4, 8, 8] empty"),
    ('upsample(scale=2, mode="cubic")', "mode"),
    ("dropout2d(1.5)", "dropout2d"),
])
def test_bad_upsample_and_dropout2d_calls(call, message):
    with pytest.raises(archdsl.ArchDSLError, match=message.replace("[", r"\[")):
        compile_spec(text=f"model m {{\n  input [3, 16, 16]\n  conv(4, k=3, s=2)\n  {call}\n}}\n")
