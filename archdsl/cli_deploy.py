"""`archdsl export` (ONNX checked with onnxruntime, or a torch.export .pt2) and `archdsl eject`
(a standalone PyTorch .py file). Outputs are written all or nothing.

Exit status: 0 written (and, for ONNX, onnxruntime matches PyTorch), 1 a spec error, a
missing optional package, or an ONNX file that does not match.
"""
from __future__ import annotations

import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL = 0, 1


def add_deploy_parsers(subparsers, common) -> None:
    e = subparsers.add_parser("export", parents=[common],
                              help="export to ONNX (checked with onnxruntime) or a torch.export .pt2")
    e.add_argument("spec", help="an .arch file or a zoo model name")
    e.add_argument("-o", "--output", required=True, help="model.onnx, or model.pt2 for a torch.export program")
    e.add_argument("--optimize", action="store_true", help="export the inference form (archdsl.optimize)")
    e.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    e.add_argument("--weights", help="a state_dict file (torch.save) to load first; default: random init")
    e.set_defaults(run=cmd_export)

    j = subparsers.add_parser("eject", parents=[common],
                              help="write the model as one standalone PyTorch .py file (needs only torch)")
    j.add_argument("spec", help="an .arch file or a zoo model name")
    j.add_argument("-o", "--output", required=True, help="the .py file to write")
    j.add_argument("--optimize", action="store_true", help="eject the inference form (archdsl.optimize)")
    j.set_defaults(run=cmd_eject)


def _need_torch(command: str) -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"archdsl: error: `{command}` needs torch (pip install 'archdsl[torch]')", file=sys.stderr)
        return False
    return True


def _module(args, device=None):
    from .api import build, optimize

    module = build(args.spec, model=args.model, device=device)
    if getattr(args, "weights", None):
        import torch

        state = torch.load(args.weights, map_location="cpu", weights_only=True)
        module.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    module.eval()
    return optimize(module) if args.optimize else module


def cmd_export(args) -> int:
    if not _need_torch("export"):
        return EXIT_FAIL
    from .export import MissingDependency, require_onnx, save_onnx, save_program

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".onnx", ".pt2"):
        print(f"archdsl: error: {args.output}: the output must end in .onnx or .pt2", file=sys.stderr)
        return 2
    if suffix == ".onnx":
        try:
            require_onnx()  # before the build: say what is missing at once
        except MissingDependency as e:
            print(f"archdsl: error: {e}", file=sys.stderr)
            return EXIT_FAIL
    module = _module(args)
    if suffix == ".pt2":
        save_program(module, args.output)
        print(f"{args.output}: torch.export program of {module.archdsl_info['model']} (dynamic batch)")
        return EXIT_OK
    check = save_onnx(module, args.output, opset=args.opset)
    print(f"{args.output}: ONNX of {module.archdsl_info['model']} (dynamic batch); {check}")
    return EXIT_OK if check.ok else EXIT_FAIL


def cmd_eject(args) -> int:
    if not _need_torch("eject"):
        return EXIT_FAIL
    from .emit.eject import eject_source
    from .fileio import write_atomic

    module = _module(args, device="meta")  # the source needs no weights
    write_atomic(args.output, eject_source(module))
    print(f"{args.output}: {module.archdsl_info['model']} as standalone PyTorch")
    return EXIT_OK
