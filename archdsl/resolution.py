"""Which models accept only the input size they were built for, and the error that says so.

Most convolutional models run at any input size (their global pooling adapts); a model
whose graph bakes in a spatial size cannot: token grids (`grid`, `subsample`), MobileViT's
patches (`unfold`, `fold`), LeViT's attention biases (sized for one token grid), or an
`upsample` to a fixed size. Such a model's root forward first checks the input size
(`check_resolution`, in generated code), so another size is an error in the spec's terms,
naming `resolution=`, not a torch shape error deep inside. No torch here.
"""
from __future__ import annotations

from .ir.graph import Graph

# what each size-bound op is, for the message
FIXED_SIZE_OPS = {
    "grid": "token grids", "subsample": "token grids", "unfold": "patch grids", "fold": "patch grids",
    "levit_attention": "attention biases", "levit_attention_gathered": "attention biases",
}


def _reasons(graph: Graph) -> list[str]:
    out: dict[str, None] = {}
    for node in graph:
        if node.op in FIXED_SIZE_OPS:
            out[FIXED_SIZE_OPS[node.op]] = None
        elif node.op == "upsample" and node.attrs.size is not None:
            out["upsampling sizes"] = None
    return list(out)


def fixed_resolution(graph: Graph) -> tuple[int, int] | None:
    """The input (height, width) a graph is bound to, or None when it runs at any size."""
    inp = graph.node(graph.input).shape
    if inp.layout != "grid" or not _reasons(graph):
        return None
    return inp.h, inp.w


def resolution_message(graph: Graph) -> str:
    """The start of the error for another input size (the runtime appends what it got)."""
    h, w = fixed_resolution(graph)
    size = str(h) if h == w else f"[{h}, {w}]"
    return (f"{graph.name} was built for {h}x{w} inputs (its {', '.join(_reasons(graph))} are sized for them) "
            f"and runs on no other size; build it for another with archdsl.build(..., resolution=...) "
            f"(this one has resolution={size}). Got ")
