"""The fresh processes of test_deploy_zoo.py's save and eject checks. Run as a script by a
worker (deploy_checks): reads a JSON list of requests per line on stdin, answers a JSON list
per line on stdout, and ends with its input.

- `deploy_load.py`: loads pickled archdsl modules and runs them. It never builds one, so
  every generated class it uses was made from what a file holds. Only torch is imported
  here; unpickling imports what it needs.
- `deploy_load.py --ejected`: imports files written by `archdsl eject` with archdsl
  blocked (importing it raises), builds each file's root class, loads the archdsl module's
  state_dict into it and runs it.
"""
from __future__ import annotations

import importlib.util
import json
import sys

import torch

TOLERANCE = 1e-4  # of the saved output's scale (at least 1)


def _compare(got, want) -> tuple[bool, str]:
    """Outputs on the meta device compare by shape."""
    if want.is_meta:
        return got.shape == want.shape, f"output shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    scale = max(1.0, want.abs().max().item())
    diff = (got - want).abs().max().item()
    return diff <= TOLERANCE * scale, f"max |diff| {diff:.2e} (scale {scale:.2f})"


def load_and_run(path: str) -> str:
    """A `torch.save`d module, with its input and output at path + ".io": its class name, or
    the reason it fails."""
    saved = torch.load(path + ".io", weights_only=True)
    module = torch.load(path, weights_only=False)
    with torch.no_grad():
        ok, why = _compare(module(saved["x"]), saved["y"])
    return type(module).__name__ if ok else f"FAIL {path}: {why}"


def run_ejected(request: dict) -> str:
    """An ejected file (request["file"]), its root class (request["root"]) and the archdsl
    module's state_dict, input and output (request["io"]; on the meta device, the shapes):
    "ok", or the reason it fails."""
    path = request["file"]
    spec = importlib.util.spec_from_file_location(f"ejected_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = torch.load(request["io"], weights_only=True)
    root = getattr(module, request["root"])
    with torch.device("meta"):
        net = root()
    state = saved["state"]
    got_shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    want_shapes = {k: tuple(v.shape) for k, v in state.items()}
    if got_shapes != want_shapes:
        missing, extra = sorted(set(want_shapes) - set(got_shapes)), sorted(set(got_shapes) - set(want_shapes))
        wrong = sorted(k for k in set(got_shapes) & set(want_shapes) if got_shapes[k] != want_shapes[k])
        return f"FAIL {path}: state_dict differs: missing {missing[:5]}, unexpected {extra[:5]}, shapes {wrong[:5]}"
    x = saved["x"]
    if not x.is_meta:
        # buffers outside the state_dict (LeViT's attention bias indices) are made by the constructor
        net = root() if {n for n, _ in net.named_buffers()} - set(state) else net.to_empty(device="cpu")
        net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        ok, why = _compare(net(x), saved["y"])
    return "ok" if ok else f"FAIL {path}: {why}"


def serve(handle) -> None:
    torch.set_num_threads(1)
    for line in sys.stdin:
        out = []
        for request in json.loads(line):
            try:
                out.append(handle(request))
            except Exception as e:  # noqa: BLE001 - reported to the test as text
                out.append(f"FAIL {request}: {type(e).__name__}: {e}")
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--ejected"]:
        sys.modules["archdsl"] = None  # blocked, not merely unused: `import archdsl` raises
        serve(run_ejected)
    else:
        serve(load_and_run)
