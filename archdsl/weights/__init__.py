"""Loading reference checkpoints into emitted modules, by mapping rules kept beside each family."""
from .importer import import_weights, load_mapping, map_keys

__all__ = ["import_weights", "load_mapping", "map_keys"]
