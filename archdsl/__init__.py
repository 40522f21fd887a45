"""archdsl: a declarative architecture compiler for vision models.

    import archdsl
    model = archdsl.build("specs/resnet50.arch", classes=10)   # a torch.nn.Module
    archdsl.import_weights(model, hf_model.state_dict(), source="hf")

The front end (`compile_spec`, `archdsl check`) needs no torch; `build` and
`import_weights` import it when called. `optimize(module)` returns an inference module
(passes over the graph IR, weights folded); `emit_fx(...)` a torch.fx GraphModule;
`tune_allocator()` keeps freed activation memory in the process (glibc; see allocator.py).
"""
from importlib import import_module as _import_module

# The front end is imported with the package (a missing dependency fails here, at import,
# not later as an internal error); the rest of the API on first use, so `archdsl check`
# pays only for the front end.
from .compiler import CompiledSpec, compile_spec
from .errors import ArchDSLError

_EXPORTS = {
    "build": "api", "optimize": "api", "emit_fx": "api",
    "feature_info": "features",
    "freeze": "finetune", "unfreeze": "finetune", "param_groups": "finetune", "reset_classifier": "finetune",
    "import_weights": "weights",
    "list_models": "zoo",
    "tune_allocator": "allocator",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'archdsl' has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def viz(spec=None, depth=2, expand=(), rankdir="TB", **options):
    """The architecture diagram of a spec as a `graphviz.Digraph` (shows inline in Jupyter);
    no torch. See `archdsl.diagram.viz` for the arguments (`depth=None` draws every op)."""
    from .diagram import viz as _viz

    return _viz(spec, depth, expand, rankdir, **options)


__version__ = "0.1.0"
__all__ = ["build", "optimize", "emit_fx", "compile_spec", "CompiledSpec", "import_weights", "tune_allocator",
           "ArchDSLError", "list_models", "viz", "feature_info", "freeze", "unfreeze", "param_groups",
           "reset_classifier", "__version__"]
