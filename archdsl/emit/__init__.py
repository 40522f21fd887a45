"""Emitters: the graph IR to PyTorch (modules; later fx, .py, ONNX, diagrams)."""
