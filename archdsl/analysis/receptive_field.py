"""Receptive fields, statically, per node and per spatial axis.

Following Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks" (Distill, 2019): a feature map's receptive field is its `size` in input
pixels, its `jump` (effective stride: input pixels between neighbouring outputs) and
`start`, the input coordinate of the centre of output pixel 0's field (input pixel i
has centre i). A layer of kernel k, stride s, dilation d and leading padding p maps

    size' = size + ((k - 1) * d) * jump
    jump' = jump * s
    start' = start + ((k - 1) * d / 2 - p) * jump

Branches that merge (add, concat, multiply) cover the union of their fields; they must
step alike (equal jumps), and centres that differ are a warning: the branches look at
different pixels. Attention, MobileViT's patch transformer, global pooling and global
response norm see everything: the field becomes the whole input (`whole`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ArchShapeError, Diagnostic
from ..ir.graph import Graph
from ..ir.ops.channels import adaptive_window

Pair = tuple[float, float]


@dataclass(frozen=True)
class RF:
    size: tuple[int, int]
    jump: tuple[int, int]
    start: Pair
    whole: bool = False  # depends on every input pixel

    def as_dict(self) -> dict:
        square = self.size[0] == self.size[1] and self.jump[0] == self.jump[1] and self.start[0] == self.start[1]
        pick = (lambda v: v[0]) if square else list
        return {"size": pick(self.size), "stride": pick(self.jump), "offset": pick(self.start), "whole": self.whole}


# ops through which each output pixel sees exactly its own input pixel
_POINTWISE = {"chunk", "channel_shuffle", "bn", "layernorm", "linear", "linear_act", "layer_scale", "dropout", "dropout2d", "drop_path", "identity", "tokens", "grid",
              "relu", "relu6", "gelu", "gelu_tanh", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh"}
_GLOBAL = {"levit_attention", "levit_attention_gathered", "sdpa", "grn"}
_MERGES = {"add", "mean", "mul", "concat"}


def _whole(inp: tuple[int, int]) -> RF:
    return RF(inp, (0, 0), ((inp[0] - 1) / 2, (inp[1] - 1) / 2), whole=True)


def _window(rf: RF, k: tuple[int, int], s: tuple[int, int], d: tuple[int, int], pad: tuple[int, int]) -> RF:
    if rf.whole:
        return rf
    size = tuple(rf.size[i] + (k[i] - 1) * d[i] * rf.jump[i] for i in range(2))
    jump = tuple(rf.jump[i] * s[i] for i in range(2))
    start = tuple(rf.start[i] + ((k[i] - 1) * d[i] / 2 - pad[i]) * rf.jump[i] for i in range(2))
    return RF(size, jump, start)


def _all_positions(rf: RF, shape) -> RF:
    """The union of the fields of every position of a map: what a global pool sees."""
    if rf.whole or shape.n == 1:
        return rf
    out = _window(rf, (shape.h, shape.w), (1, 1), (1, 1), (0, 0))
    return RF(out.size, out.jump, out.start, whole=True)


def _adaptive(rf: RF, shape, size: tuple[int, int]) -> RF:
    """Adaptive pooling from `shape` to `size`: a plain window of `in // out` with that stride
    when the output size divides the input's (exact); otherwise windows vary in size and
    spacing, and the field is that of the largest window at the rounded mean spacing (an
    approximation, as close as one size and stride can be)."""
    k, s = zip(*(adaptive_window(n, out) for n, out in ((shape.h, size[0]), (shape.w, size[1]))))
    return _window(rf, k, s, (1, 1), (0, 0))


def _upsample(rf: RF, src, out, mode: str) -> RF:
    """Resizing by a whole factor f divides the jump by f (an output pixel steps 1/f input
    pixels of the map); bilinear reads two neighbours, a window of 2. From a 1x1 map (a pooled
    branch) every output sees what that pixel saw. Other ratios keep the jump (approximate)."""
    if rf.whole or (src.h, src.w) == (1, 1):
        return rf
    k = (2, 2) if mode == "bilinear" else (1, 1)
    grown = _window(rf, k, (1, 1), (1, 1), (0, 0))
    f = (out.h // src.h, out.w // src.w)
    jump = tuple(grown.jump[i] // f[i] if f[i] and grown.jump[i] % f[i] == 0 else grown.jump[i] for i in range(2))
    return RF(grown.size, jump, rf.start)


def _extent(rf: RF, i: int) -> tuple[float, float]:
    half = (rf.size[i] - 1) / 2
    return rf.start[i] - half, rf.start[i] + half


def receptive_fields(graph: Graph, warnings: list[Diagnostic] | None = None) -> dict[int, RF]:
    """The receptive field of every node. Misaligned merges append warnings; merges of
    branches that step differently raise `ArchShapeError` at the merge."""
    inp = graph.node(graph.input).shape
    image = (inp.h or 1, inp.w or 1)
    rfs: dict[int, RF] = {}
    for node in graph:
        ins = [rfs[i] for i in graph.inputs(node.id)]
        op, a = node.op, node.attrs
        if op == "input":
            rf = RF((1, 1), (1, 1), (0.0, 0.0))
        elif op in ("conv", "conv_act"):
            rf = _window(ins[0], a.k, a.s, a.d, (a.pads[0], a.pads[2]))
        elif op == "conv_add":  # the conv's window, merged with the residual
            conv_rf = _window(ins[0], a.k, a.s, a.d, (a.pads[0], a.pads[2]))
            rf = _merge(graph, node, [conv_rf, ins[1]], image, warnings, [node.shape, node.shape])
        elif op in ("maxpool", "avgpool"):
            src = graph.in_shapes(node.id)[0]
            if a.k is None or src.layout == "tokens":  # global: one output sees every position
                rf = _all_positions(ins[0], src)
            else:
                rf = _window(ins[0], a.k, a.s or a.k, (1, 1), a.p)
        elif op in ("adaptive_avgpool", "adaptive_maxpool"):
            rf = _adaptive(ins[0], graph.in_shapes(node.id)[0], a.size)
        elif op == "subsample":
            r = ins[0]
            rf = r if r.whole else RF(r.size, (r.jump[0] * a.stride, r.jump[1] * a.stride), r.start)
        elif op == "unfold":
            r = ins[0]  # a patch token at (py, px) stands for its top-left pixel; fold undoes it
            rf = r if r.whole else RF(r.size, (r.jump[0] * a.patch[0], r.jump[1] * a.patch[1]), r.start)
        elif op == "fold":
            r = ins[0]
            rf = r if r.whole else RF(r.size, (r.jump[0] // a.patch[0], r.jump[1] // a.patch[1]), r.start)
        elif op == "upsample":
            rf = _upsample(ins[0], graph.in_shapes(node.id)[0], node.shape, a.mode)
        elif op in _GLOBAL:
            rf = _whole(image)
        elif op in _MERGES:
            rf = _merge(graph, node, ins, image, warnings)
        elif op == "flatten":
            rf = _all_positions(ins[0], graph.in_shapes(node.id)[0])
        elif op in _POINTWISE:
            rf = ins[0]
        else:
            raise NotImplementedError(f"no receptive-field rule for op {op!r}")
        rfs[node.id] = rf
    return rfs


def _merge(graph: Graph, node, ins: list[RF], image, warnings, shapes=None) -> RF:
    shapes = shapes or graph.in_shapes(node.id)
    local = [(r, s) for r, s in zip(ins, shapes) if not r.whole and s.layout != "vector" and (s.h, s.w) != (1, 1)]
    if len(local) < len(ins):  # a global branch (an SE gate, attention) makes the merge global
        return _whole(image)
    first = local[0][0]
    for r, _ in local[1:]:
        if r.jump != first.jump:
            raise ArchShapeError(f"branches merged by {node.op} step differently: effective strides "
                                 f"{_pair(first.jump)} and {_pair(r.jump)} input pixels",
                                 node.span, "their outputs sit on different input grids; check the strides")
        if r.start != first.start and warnings is not None:
            diff = max(abs(r.start[i] - first.start[i]) for i in range(2))
            warnings.append(Diagnostic(
                f"branches merged by {node.op} are misaligned: their centres differ by {diff:g} input pixels "
                f"({_pair(first.start)} vs {_pair(r.start)})", node.span,
                "a strided 1x1 or 2x2 shortcut against a padded 3x3 conv samples other pixels; "
                "match kernel and padding, or accept the shift"))
    lo = [min(_extent(r, i)[0] for r, _ in local) for i in range(2)]
    hi = [max(_extent(r, i)[1] for r, _ in local) for i in range(2)]
    size = tuple(int(round(hi[i] - lo[i])) + 1 for i in range(2))
    return RF(size, first.jump, tuple((lo[i] + hi[i]) / 2 for i in range(2)))


def _pair(v) -> str:
    return f"{v[0]:g}" if v[0] == v[1] else f"{v[0]:g}x{v[1]:g}"


def final_feature_node(graph: Graph) -> int:
    """The last spatial feature map before global pooling: walk back from the output to
    the first node whose output still has more than one position."""
    nid = graph.output
    while True:
        shape = graph.node(nid).shape
        if shape.layout in ("grid", "tokens", "patches") and shape.n > 1:
            return nid
        ins = graph.inputs(nid)
        if not ins:
            return nid
        nid = ins[0]
