"""Static analyses over the graph IR (no torch)."""
