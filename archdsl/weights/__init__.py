"""Loading reference checkpoints into emitted modules, by mapping rules kept beside each family."""
from .importer import ImportReport, adapt_input_conv, import_weights, load_mapping, map_keys

__all__ = ["import_weights", "ImportReport", "adapt_input_conv", "load_mapping", "map_keys"]
