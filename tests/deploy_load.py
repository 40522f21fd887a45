"""The fresh process of test_deploy_zoo.py's save check: it loads pickled archdsl modules
and runs them, and never builds one, so every generated class it uses was made from what a
file holds. Only torch is imported here; unpickling imports what it needs.

Run as a script by a worker (deploy_checks): reads a JSON list of paths per line on stdin,
answers a JSON list per line on stdout, and ends with its input."""
from __future__ import annotations

import json
import sys

import torch

TOLERANCE = 1e-4  # of the saved output's scale (at least 1)


def load_and_run(paths: list[str]) -> list[str]:
    """For each path (a `torch.save`d module, with its input and output at path + ".io"):
    its class name, or the reason it fails. Outputs on the meta device compare by shape."""
    out = []
    for path in paths:
        try:
            saved = torch.load(path + ".io", weights_only=True)
            module = torch.load(path, weights_only=False)
            with torch.no_grad():
                got = module(saved["x"])
            want = saved["y"]
            if want.is_meta:
                ok, why = got.shape == want.shape, f"output shape {tuple(got.shape)}, saved {tuple(want.shape)}"
            else:
                scale = max(1.0, want.abs().max().item())
                diff = (got - want).abs().max().item()
                ok, why = diff <= TOLERANCE * scale, f"max |diff| {diff:.2e} (scale {scale:.2f})"
            out.append(type(module).__name__ if ok else f"FAIL {path}: {why}")
            del module
        except Exception as e:  # noqa: BLE001 - reported to the test as text
            out.append(f"FAIL {path}: {type(e).__name__}: {e}")
    return out


def serve() -> None:
    torch.set_num_threads(1)
    for line in sys.stdin:
        print(json.dumps(load_and_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    serve()
