"""Words and colours of a drawing: `conv 3x3 s2 g32` for an op, a colour per kind of op (the
same in every model), shapes as `[256, 56, 56]`, and the figures of a closed scope.

Ops this module does not know get their name and their first few attributes, so new ops
draw sensibly before anyone teaches this file about them.
"""
from __future__ import annotations

from ..analysis.cost import human
from ..ir.graph import Graph
from ..ir.shape import Shape

# kind of op -> (fill colour, ops); one palette for every model
_CATEGORIES = {
    "conv": ("#cfe2f3", {"conv", "conv_act", "conv_add"}),
    "norm": ("#fff2cc", {"bn", "layernorm", "grn", "layer_scale"}),
    "act": ("#d9ead3", {"relu", "relu6", "gelu", "gelu_tanh", "silu", "hardswish", "hardsigmoid", "sigmoid",
                        "tanh", "softmax"}),
    "pool": ("#fce5cd", {"maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"}),
    "linear": ("#d9d2e9", {"linear", "linear_act"}),
    "attention": ("#f4cccc", {"levit_attention", "levit_attention_gathered", "sdpa"}),
    "merge": ("#eeeeee", {"add", "mul", "mean", "concat"}),
    "layout": ("#d0e0e3", {"tokens", "grid", "flatten", "subsample", "unfold", "fold", "chunk",
                           "channel_shuffle", "upsample"}),
    "regularise": ("#f3f3f3", {"dropout", "dropout2d", "drop_path", "identity"}),
    "io": ("#ffffff", {"input"}),
}
_COLOUR = {op: colour for colour, ops in _CATEGORIES.values() for op in ops}
UNKNOWN_COLOUR = "#ffffff"
SCOPE_COLOUR = "#f7f7f7"
WARNING_COLOUR = "#cc0000"

# merges drawn as what they are: (graphviz shape, label)
MERGE_SHAPES = {"add": ("circle", "+"), "mul": ("circle", "×"), "mean": ("circle", "mean"),
                "concat": ("invtrapezium", "concat")}

# the role of each argument of ops whose arguments are not interchangeable
_ROLES = {"sdpa": ("q", "k", "v"), "levit_attention": ("q", "kv"), "levit_attention_gathered": ("q", "kv"),
          "mul": ("", "gate"), "conv_add": ("", "residual")}
LAYOUT_COLOUR = {"grid": "#333333", "tokens": "#1155cc", "patches": "#741b47", "vector": "#777777"}


def colour(op: str) -> str:
    return _COLOUR.get(op, UNKNOWN_COLOUR)


def category(op: str) -> str:
    for name, (_, ops) in _CATEGORIES.items():
        if op in ops:
            return name
    return "other"


def role(op: str, slot: int, n_inputs: int) -> str:
    roles = _ROLES.get(op, ())
    if op.startswith("levit_attention") and n_inputs == 1:
        return ""
    return roles[slot] if slot < len(roles) else ""


def _pair(v, sep: str = "x") -> str:
    if isinstance(v, (tuple, list)):
        return str(v[0]) if len(set(v)) == 1 else sep.join(str(i) for i in v)
    return str(v)


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (tuple, list)):
        return _pair(v)
    return str(v)


def op_label(graph: Graph, nid: int) -> str:
    """`conv 3x3 s2 g32`: the op and its key attributes, spec words."""
    node = graph.node(nid)
    op, a = node.op, node.attrs
    try:
        return _known_label(graph, nid, op, a) or _generic_label(op, a)
    except (AttributeError, TypeError, IndexError, KeyError):  # an op that changed shape: stay readable
        return _generic_label(op, a)


def _known_label(graph: Graph, nid: int, op: str, a) -> str | None:
    if op in ("conv", "conv_act", "conv_add"):
        k = f"{a.k[0]}x{a.k[1]}"
        words = [f"conv {k}"]
        if a.s != (1, 1):
            words.append(f"s{_pair(a.s)}")
        if a.d != (1, 1):
            words.append(f"d{_pair(a.d)}")
        in_c = graph.in_shapes(nid)[0].c
        if a.g > 1:
            words.append("dw" if a.g == in_c == a.out else f"g{a.g}")
        if op == "conv_add":
            words.append("+ residual")
        act = getattr(a, "act", None)
        if act:
            words.append(f"+ {act}")
        return " ".join(words)
    if op in ("maxpool", "avgpool"):
        if a.k is None:
            return f"global {op}"
        s = a.s or a.k
        return f"{op} {a.k[0]}x{a.k[1]}" + (f" s{_pair(s)}" if s != (1, 1) else "")
    if op in ("linear", "linear_act"):
        return f"linear {a.out}" + (f" + {a.act}" if getattr(a, "act", None) else "")
    if op in ("dropout", "drop_path"):
        return f"{op} {a.p:g}" if a.p else op
    if op in ("bn", "layernorm", "grn", "input", "flatten"):
        return op
    if op == "layer_scale":
        return "layer scale"
    if op == "tokens":
        return "map to tokens"
    if op == "grid":
        return "tokens to map"
    if op == "subsample":
        return f"subsample s{a.stride}"
    if op in ("unfold", "fold"):
        return f"{op} {a.patch[0]}x{a.patch[1]}"
    if op.startswith("levit_attention"):
        return f"attention {a.heads}h kd{a.key_dim}" + (f" s{a.stride}" if a.stride > 1 else "")
    if op == "sdpa":
        return f"attention {a.heads}h"
    if op in MERGE_SHAPES:
        return MERGE_SHAPES[op][1]
    if op == "chunk":
        return f"chunk {a.i}/{a.n}"
    if op == "channel_shuffle":
        return f"shuffle g{a.groups}"
    if op.startswith("adaptive_"):
        return f"{op.removeprefix('adaptive_')} to {_pair(a.size)}"
    return None


def _generic_label(op: str, a) -> str:
    """Name and up to three attributes: `upsample 2 nearest`."""
    try:
        values = [v for v in a.model_dump().values() if v is not None and not isinstance(v, (dict, bool))]
    except AttributeError:
        values = []
    return " ".join([op] + [_value(v) for v in values[:3]])


def shape_text(shape: Shape) -> str:
    """`[256, 56, 56]`, `[196, 128] tokens`, `[4, 256, 96] patches`, `[1000]`."""
    if shape.layout in ("tokens", "patches"):
        return f"{shape} {shape.layout}"
    return str(shape)


def count(n: int) -> str:
    return f"{n:,}"


def figures(params: int, flops: int) -> str:
    """`215,808 params · 680M FLOPs` (exact parameters: they are the model's to the unit)."""
    return f"{count(params)} params · {human(flops)} FLOPs"


def rf_text(rf) -> str:
    """`RF 99 stride 8`, `RF all` for a field that sees the whole input."""
    if rf.whole:
        return "RF whole input"
    return f"RF {max(rf.size)} stride {max(rf.jump)}"
