"""Elaboration: from parsed declarations to the graph IR."""
from .builder import Elaborator, Expectation, Limits

__all__ = ["Elaborator", "Expectation", "Limits"]
