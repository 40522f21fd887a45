"""archdsl: a declarative architecture compiler for vision models.

    import archdsl
    model = archdsl.build("specs/resnet50.arch", classes=10)   # a torch.nn.Module
    archdsl.import_weights(model, hf_model.state_dict(), source="hf")

The front end (`compile_spec`, `archdsl check`) needs no torch; `build` and
`import_weights` import it when called. `optimize(module)` returns an inference module
(passes over the graph IR, weights folded); `emit_fx(...)` a torch.fx GraphModule;
`tune_allocator()` keeps freed activation memory in the process (glibc; see allocator.py).
"""
from .allocator import tune_allocator
from .api import build, emit_fx, optimize
from .compiler import CompiledSpec, compile_spec
from .errors import ArchDSLError
from .features import feature_info
from .finetune import freeze, param_groups, reset_classifier, unfreeze
from .weights import import_weights
from .zoo import list_models


def viz(spec=None, depth=2, expand=(), rankdir="TB", **options):
    """The architecture diagram of a spec as a `graphviz.Digraph` (shows inline in Jupyter);
    no torch. See `archdsl.diagram.viz` for the arguments (`depth=None` draws every op)."""
    from .diagram import viz as _viz

    return _viz(spec, depth, expand, rankdir, **options)


__version__ = "0.1.0"
__all__ = ["build", "optimize", "emit_fx", "compile_spec", "CompiledSpec", "import_weights", "tune_allocator",
           "ArchDSLError", "list_models", "viz", "feature_info", "freeze", "unfreeze", "param_groups",
           "reset_classifier", "__version__"]
