"""Backbones: a model's feature taps as outputs, and the task options of `archdsl.build`.

A family names its feature maps with `tap("stem")`, `tap("stage1")`, ... (see
`archdsl/ir/ops/tap.py`). `build(spec, features_only=True, out_indices=(1, 2))` (timm) or
`build(spec, out_features=["stage1", "stage2"])` (HF) prunes the graph to the taps'
ancestors and emits it like any model: a generated straight-line forward that returns the
list of the chosen maps, holding only the layers they need. `feature_info` is computed from
the static shapes: channels, reduction (input size / map size) and module (the scope the
tap is written in). `classes=0` (timm's `num_classes=0`) cuts the classifier: the model
returns the pooled features. Nothing here imports torch except `finish`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import networkx as nx

from .analysis.receptive_field import RF, receptive_fields
from .errors import ArchNameError
from .ir.graph import Graph
from .ir.ops import OPS
from .resolution import fixed_resolution, resolution_message

CLASSIFIER = "head.fc"  # the scope every family gives its classifier


@dataclass(frozen=True)
class TapInfo:
    """One feature map: its tap name, index among the model's taps, and static figures."""

    name: str
    index: int
    num_chs: int
    reduction: int
    module: str

    def as_dict(self) -> dict[str, Any]:
        return {"num_chs": self.num_chs, "reduction": self.reduction, "module": self.module,
                "name": self.name, "index": self.index}


class FeatureInfo:
    """timm's `feature_info` for the chosen taps: `channels()`, `reduction()`,
    `module_name()` (each a list, or one value with an index), and list-of-dicts access
    (`info[0]["num_chs"]`, `len(info)`, `get_dicts()`). `out_indices` and `out_features`
    say which of the model's taps they are."""

    def __init__(self, taps: list[TapInfo]):
        self.taps = list(taps)

    @property
    def out_indices(self) -> tuple[int, ...]:
        return tuple(t.index for t in self.taps)

    @property
    def out_features(self) -> list[str]:
        return [t.name for t in self.taps]

    def _get(self, field: str, idx: int | Sequence[int] | None):
        values = [getattr(t, field) for t in self.taps]
        if idx is None:
            return values
        if isinstance(idx, int):
            return values[idx]
        return [values[i] for i in idx]

    def channels(self, idx=None):
        return self._get("num_chs", idx)

    def reduction(self, idx=None):
        return self._get("reduction", idx)

    def module_name(self, idx=None):
        return self._get("module", idx)

    def get_dicts(self) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.taps]

    def __getitem__(self, i):
        return self.get_dicts()[i]

    def __len__(self) -> int:
        return len(self.taps)

    def __iter__(self):
        return iter(self.get_dicts())

    def __repr__(self) -> str:
        return f"FeatureInfo({self.get_dicts()})"


def all_taps(graph: Graph) -> list[TapInfo]:
    """Every tap of the graph, in the spec's order, with its static figures."""
    size = graph.node(graph.input).shape
    fields = receptive_fields(graph) if graph.taps else {}
    out = []
    for i, (name, tap) in enumerate(graph.taps.items()):
        s = graph.node(tap.node).shape
        if s.h is None:
            raise ArchNameError(f"feature tap '{name}' is on a {s.layout} value {s.describe()}, not a feature map",
                                tap.span, "tap a feature map or tokens, before the global pooling")
        out.append(TapInfo(name, i, s.c, _reduction(size.h, s.h, fields.get(tap.node)), tap.module))
    return out


def _reduction(size: int, h: int, field: RF | None = None) -> int:
    """The total stride from an input `size` to a map of height `h`, as timm reports it: the
    product of the strides on the way (the receptive field's jump) where the map's field is
    local; where it is the whole input (attention, squeeze-excite), the power of two nearest
    their ratio (strides round up: 224 -> 4 under stride 64, 513 -> 257 under stride 2). The
    ratio alone misreads unpadded nets, which shrink by more: LeNet-5's 10x10 map of a 32x32
    input is at stride 2, not 4."""
    if field is not None and not field.whole and field.jump[0] >= 1:
        return field.jump[0]
    return 2 ** max(0, round(math.log2(size / h)))


def select_taps(graph: Graph, out_indices: Iterable[int] | None = None,
                out_features: Iterable[str] | None = None) -> list[TapInfo]:
    """The taps chosen by timm's `out_indices` (positions among the taps; negative from the end)
    or HF's `out_features` (names), all taps when neither is given. Unknown, duplicate or
    unordered choices are errors listing the valid taps: never dropped silently."""
    taps = all_taps(graph)
    listing = ", ".join(f"{t.index} {t.name}" for t in taps)

    def bad(message: str) -> ArchNameError:
        return ArchNameError(f"{message} (the feature taps of model '{graph.name}': {listing})", None,
                             "choose taps by index (out_indices) or by name (out_features), each once, "
                             "in the model's order")

    if not taps:
        raise ArchNameError(f"model '{graph.name}' declares no feature taps", None,
                            'declare them in its family: `tap("stage1")` after each stage')
    if out_indices is not None and out_features is not None:  # HF accepts both when they agree
        by_index = select_taps(graph, out_indices, None)
        by_name = select_taps(graph, None, out_features)
        if by_index != by_name:
            raise bad(f"out_indices {list(out_indices)} and out_features {list(out_features)} choose different taps")
        return by_name
    if out_features is not None:
        try:
            names = _as_list(out_features, "out_features", str)
        except ValueError as e:
            raise bad(str(e)) from None
        chosen = []
        for n in names:
            match = [t for t in taps if t.name == n]
            if not match:
                raise bad(f"'{n}' is not a feature tap")
            chosen.append(match[0])
    elif out_indices is not None:
        try:
            idx = _as_list(out_indices, "out_indices", int)
        except ValueError as e:
            raise bad(str(e)) from None
        chosen = []
        for i in idx:
            if not -len(taps) <= i < len(taps):
                raise bad(f"out_indices: {i} is out of range")
            chosen.append(taps[i])
    else:
        return taps
    if not chosen:
        raise bad("no feature taps chosen")
    order = [t.index for t in chosen]
    if len(set(order)) != len(order):
        raise bad(f"a feature tap is chosen twice: {[t.name for t in chosen]}")
    if order != sorted(order):
        raise bad(f"feature taps must be chosen in the model's order, got {[t.name for t in chosen]}")
    return chosen


def _as_list(values, what: str, kind: type) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values] if isinstance(values, kind) else values
    try:
        out = list(values)
    except TypeError:
        raise ValueError(f"{what} must be a list of {kind.__name__}s, got {values!r}") from None
    for v in out:
        if not isinstance(v, kind) or isinstance(v, bool):
            raise ValueError(f"{what} must be a list of {kind.__name__}s, got {v!r}")
    return out


def feature_graph(graph: Graph, chosen: list[TapInfo]) -> Graph:
    """A copy of `graph` whose outputs are the chosen taps' values, pruned to their
    ancestors. Token maps (LeViT) are returned as feature maps [C, H, W], as timm does."""
    g = graph.copy()
    outputs = []
    for t in chosen:
        nid = g.taps[t.name].node
        shape = g.node(nid).shape
        if shape.layout == "tokens":
            tap = g.taps[t.name]
            nid = g.add("grid", OPS["grid"].attrs(), [nid], f"features.{t.name}", tap.span,
                        OPS["grid"].infer(OPS["grid"].attrs(), [shape]))
        outputs.append(nid)
    keep = set(outputs)
    dag = g.nx
    for nid in outputs:
        keep |= nx.ancestors(dag, nid)
    g.taps = {t.name: g.taps[t.name] for t in chosen}
    g.outputs, g.output = outputs, outputs[-1]
    g.keep_only(keep)
    return g


def classifier_nodes(graph: Graph) -> list:
    """The classifier's nodes, in order: the linear `head.fc`, or everything in a scope
    `head.fc` (LeViT's distilled head: two batch-norm + linear heads, averaged)."""
    return [n for n in graph if n.scope == CLASSIFIER or n.scope.startswith(CLASSIFIER + ".")]


def without_classifier(graph: Graph) -> Graph:
    """A copy of `graph` without its classifier (`head.fc`) and what follows it: the output
    is what fed the classifier (the pooled features)."""
    fc = classifier_nodes(graph)
    if not fc:
        raise ArchNameError(f"model '{graph.name}' has no classifier named '{CLASSIFIER}' to remove", None,
                            "classes=0 needs the family's classifier to be `linear(classes) as fc` in `head`")
    g = graph.copy()
    inside = {n.id for n in fc}
    new_out = next(src for n in fc for src in g.inputs(n.id) if src not in inside)
    keep = set(nx.ancestors(g.nx, new_out)) | {new_out}
    g.output = new_out
    g.keep_only(keep)
    return g


@dataclass
class TaskOptions:
    """What `build` was asked beyond the family's parameters."""

    features_only: bool = False
    out_indices: Any = None
    out_features: Any = None
    no_classifier: bool = False

    @classmethod
    def pop_from(cls, overrides: dict[str, Any]) -> "TaskOptions":
        """Take the task options out of `build`'s keyword arguments (the rest are family
        parameters): features_only, out_indices, out_features, and timm's num_classes (an alias
        of classes; 0, for either, means no classifier)."""
        opts = cls(features_only=bool(overrides.pop("features_only", False)),
                   out_indices=overrides.pop("out_indices", None),
                   out_features=overrides.pop("out_features", None))
        if "num_classes" in overrides:
            n = overrides.pop("num_classes")
            if "classes" in overrides and overrides["classes"] != n:
                raise ArchNameError(f"num_classes={n!r} and classes={overrides['classes']!r} disagree", None,
                                    "num_classes is timm's name for classes: pass one of them")
            overrides["classes"] = n
        if overrides.get("classes") == 0 and not isinstance(overrides.get("classes"), bool):
            del overrides["classes"]  # the family's default classifier is built, then cut
            opts.no_classifier = True
        return opts

    @property
    def backbone(self) -> bool:
        return self.features_only or self.out_indices is not None or self.out_features is not None

    def graph(self, graph: Graph) -> tuple[Graph, FeatureInfo | None]:
        """The graph to emit, and the feature_info of a backbone. A graph bound to its input
        size gets `meta["fixed_resolution"]`: its forward checks the size (resolution.py)."""
        info = None
        if self.backbone:
            chosen = select_taps(graph, self.out_indices, self.out_features)
            graph, info = feature_graph(graph, chosen), FeatureInfo(chosen)
        elif self.no_classifier:
            graph = without_classifier(graph)
        if fixed_resolution(graph):
            h, w = fixed_resolution(graph)
            graph.meta["fixed_resolution"] = (h, w, resolution_message(graph))
        return graph, info

    def finish(self, module, feature_info: FeatureInfo | None):
        """Attach what a backbone's users read: `feature_info`, `out_features`, `out_indices`
        and `channels` (HF's names)."""
        if feature_info is not None:
            module.feature_info = feature_info
            module.out_features = feature_info.out_features
            module.out_indices = feature_info.out_indices
            module.channels = feature_info.channels()
            module.archdsl_info["features"] = feature_info.get_dicts()
        return module


def feature_info(spec, **kwargs) -> FeatureInfo:
    """The feature_info of a spec's taps without building anything (no torch):
    `feature_info("resnet50")`, with `out_indices`/`out_features` to choose."""
    from .compiler import compile_spec

    opts = TaskOptions.pop_from(kwargs)
    model, text = kwargs.pop("model", None), kwargs.pop("text", None)
    compiled = compile_spec(spec, model, kwargs, text=text)
    return FeatureInfo(select_taps(compiled.graph, opts.out_indices, opts.out_features))


__all__ = ["FeatureInfo", "TapInfo", "TaskOptions", "all_taps", "select_taps", "feature_graph",
           "classifier_nodes", "without_classifier", "feature_info"]
