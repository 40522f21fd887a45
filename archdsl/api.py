"""The Python API: build a spec into an nn.Module (torch is imported only here and below)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .compiler import CompiledSpec, compile_spec


def build(spec: str | Path | CompiledSpec | None = None, *, text: str | None = None, model: str | None = None,
          device: Any = None, **overrides: Any):
    """Compile a spec into a `torch.nn.Module`.

    Args:
        spec: a zoo model name (`"resnet50"`, see `archdsl.list_models()`), the path of an
            .arch file, or an already compiled spec.
        text: spec source text instead of `spec`.
        model: which model of the file, when it declares several.
        device: where to create parameters ("meta" builds big models without memory).
        **overrides: family parameters to rebind, e.g. `classes=10`, `in_chans=1`, `width=0.5`.

    Returns:
        The module (train mode, torch's default initialisation); `module.archdsl_info` names
        the spec, model and family.
    """
    import torch

    from .emit.torch_module import emit_module
    from .features import TaskOptions

    task = TaskOptions.pop_from(overrides)  # features_only, out_indices, out_features, num_classes, classes=0
    compiled = spec if isinstance(spec, CompiledSpec) else compile_spec(spec, model, overrides, text=text)
    graph, feature_info = task.graph(compiled.graph)  # a backbone's or a headless graph, else the model's
    info = {"spec": compiled.program.root,
            "input_shape": compiled.input_shape, "output_shape": list(graph.node(graph.output).shape.dims),
            "family_file": _family_file(compiled)}
    with torch.device(device) if device is not None else _nullcontext():
        return task.finish(emit_module(graph, info), feature_info)


def _family_file(compiled: CompiledSpec) -> str | None:
    family = compiled.graph.family
    path = compiled.program.family_files.get(family) if family else None
    return str(path) if path else None


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def optimize(module, passes=None):
    """An inference module (eval mode) equivalent to `module` (built by `build`): the graph it
    was built from, with its current tensors, through the pass pipeline (`archdsl.passes.PIPELINE`:
    batch norms and layer scales folded, no-ops removed, conv+activation fused, channels-last
    where it pays) and emitted again. `module` is left unchanged."""
    from .passes import optimize as _optimize

    return _optimize(module, passes)


def emit_fx(spec=None, *, text: str | None = None, model: str | None = None, **overrides: Any):
    """A `torch.fx.GraphModule` built straight from the graph IR: flat generated code whose
    node names are the IR scopes (`stages_1_blocks_0_conv2`), submodules at the scope paths.

    `spec` is a module from `build`/`optimize` (its graph and current tensors: same outputs),
    a `CompiledSpec`, a zoo name, a spec path, or source as `text=` (torch's default initialisation)."""
    from .compiler import compile_spec
    from .emit.fx import emit_fx as _emit_fx

    if text is not None:
        spec = compile_spec(None, model, overrides, text=text)
    return _emit_fx(spec, model=model, **overrides)
