"""The `archdsl` command line: build, check, dump.

Exit status follows compilers: 0 fine, 1 a spec has errors, 2 a wrong command line.
Errors print as `file:line:col: error: ...` with the source line and a hint; an internal
bug prints one line asking for a report (`--debug` shows the traceback).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any, Callable

from .cli_deploy import add_deploy_parsers
from .cli_fmt import add_fmt_parser
from .errors import ArchDSLError, ArchSyntaxError, Span

EXIT_OK, EXIT_SPEC_ERROR, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


def _parse_set(items: list[str]) -> dict[str, Any]:
    """`--set width=0.5 --set depths=[2,2,2,2]`: values are spec expressions, evaluated later."""
    from .frontend import ast
    from .frontend.parser import parse

    out = {}
    for i, item in enumerate(items):
        name, sep, text = item.partition("=")
        if not sep or not name.strip().isidentifier():
            raise SystemExit(_usage_error(f"--set expects NAME=VALUE, got {item!r}"))
        file = f"<--set {name.strip()}>"
        module = parse(f"__value__ = {text}", file)
        decl = module.decls[0] if len(module.decls) == 1 else None
        if not isinstance(decl, ast.Assign):
            raise ArchSyntaxError(f"--set {name}: not a single value", Span(file, 1, 1))
        out[name.strip()] = decl.value
    return out


def limits_of(args):
    """The `Limits` of a command: the defaults, raised (or lowered) by its `--limit` options."""
    from .limits import Limits, with_overrides

    try:
        return with_overrides(Limits(), getattr(args, "limit", None) or [])
    except ValueError as e:
        raise SystemExit(_usage_error(str(e))) from None


def _usage_error(message: str) -> int:
    print(f"archdsl: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_check(args) -> int:
    from .compiler import compile_spec

    failed = 0
    for spec in args.specs:
        try:
            compiled = compile_spec(spec, args.model, allow_outside_imports=args.allow_outside_imports,
                                    limits=limits_of(args))
        except ArchDSLError as e:
            failed += 1
            print(e.render(), file=sys.stderr)
            continue
        for w in compiled.warnings:
            print(w.render(), file=sys.stderr)
        if args.strict and compiled.warnings:
            failed += 1
        if not args.quiet:
            print(f"{spec}: ok ({compiled.name}: {compiled.params:,} parameters, "
                  f"{_shape(compiled.input_shape)} -> {_shape(compiled.output_shape)})")
    if failed and len(args.specs) > 1:
        print(f"{failed} of {len(args.specs)} specs have errors", file=sys.stderr)
    return EXIT_SPEC_ERROR if failed else EXIT_OK


def cmd_build(args) -> int:
    from .compiler import compile_spec

    overrides = _parse_set(args.set or [])
    compiled = compile_spec(args.spec, args.model, overrides, allow_outside_imports=args.allow_outside_imports,
                            limits=limits_of(args))
    for w in compiled.warnings:
        print(w.render(), file=sys.stderr)
    if args.dump_ir:
        from .ir.printer import dump

        print(dump(compiled.graph))
        return EXIT_OK
    try:
        import torch  # noqa: F401
    except ImportError:
        print("archdsl: error: `build` emits PyTorch and needs torch (pip install torch); "
              "`archdsl check` works without it", file=sys.stderr)
        return EXIT_SPEC_ERROR
    from .api import build, emit_fx, optimize

    module = build(compiled, device="meta")  # shapes and counts only; no memory for weights
    if args.optimize:
        module = optimize(module)
    if args.fx:
        print(emit_fx(module).code.strip())
        return EXIT_OK
    params = sum(p.numel() for p in module.parameters())
    rf = compiled.final_rf
    summary = {
        "model": compiled.name,
        "family": compiled.graph.family,
        "spec": args.spec,
        "params": params,
        "input_shape": compiled.input_shape,
        "output_shape": compiled.output_shape,
        "flops": compiled.totals.flops,
        "receptive_field": rf.as_dict(),
        "ops": len(getattr(module, "archdsl_graph", compiled.graph)),
        "modules": sum(1 for _ in module.modules()),
    }
    if args.optimize:
        summary["passes"] = {name: len(rewrites) for name, rewrites in module.archdsl_passes.items()}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['model']}  ({args.spec})")
        rows = [("family", summary["family"] or "-"), ("parameters", f"{params:,}"),
                ("input", _shape(summary["input_shape"])), ("output", _shape(summary["output_shape"])),
                ("FLOPs", f"{summary['flops']:,}"),
                ("RF", "the whole input" if rf.whole else f"{max(rf.size)} px, stride {max(rf.jump)}"),
                ("ops", f"{summary['ops']:,}"), ("modules", f"{summary['modules']:,}")]
        if args.optimize:
            rows.append(("passes", ", ".join(f"{k} x{v}" for k, v in summary["passes"].items() if v) or "none"))
        for key, value in rows:
            print(f"  {key:<11} {value}")
    return EXIT_OK


def cmd_summary(args) -> int:
    from .analysis.summary import summary_dict, summary_table
    from .compiler import compile_spec

    compiled = compile_spec(args.spec, args.model, _parse_set(args.set or []),
                            allow_outside_imports=args.allow_outside_imports, limits=limits_of(args))
    for w in compiled.warnings:
        print(w.render(), file=sys.stderr)
    if args.depth < 1:
        raise SystemExit(_usage_error("--depth must be 1 or more"))
    if args.json:
        print(json.dumps(summary_dict(compiled, args.depth)))
    else:
        print(summary_table(compiled, args.depth))
    return EXIT_OK


def cmd_viz(args) -> int:
    from pathlib import Path

    try:
        from .diagram import FORMATS, DotNotFound, drawing, render, write
    except ImportError as e:  # the `graphviz` Python package (the `viz` extra) is missing
        print(f"archdsl: error: `viz` needs the graphviz package ({e}); pip install 'archdsl[viz]'", file=sys.stderr)
        return EXIT_SPEC_ERROR
    depth = _viz_depth(args.depth)
    if args.output and Path(args.output).suffix.lower() not in FORMATS:
        raise SystemExit(_usage_error(f"-o {args.output}: the format follows the suffix, one of {', '.join(FORMATS)}"))
    try:
        facts, opened = drawing(args.spec, depth=depth, expand=args.expand or [], model=args.model,
                                overrides=_parse_set(args.set or []),
                                allow_outside_imports=args.allow_outside_imports)
    except ValueError as e:  # --expand names a scope the model does not have
        raise SystemExit(_usage_error(f"--expand: {e}"))
    for w in facts.compiled.warnings:
        print(w.render(), file=sys.stderr)
    out = Path(args.output) if args.output else Path(f"{facts.compiled.name}.svg")
    try:
        data = render(facts, opened, out.suffix.lower(), args.rankdir)
    except DotNotFound as e:
        print(f"archdsl: error: {e}", file=sys.stderr)
        return EXIT_SPEC_ERROR
    write(out, data)
    print(out)
    return EXIT_OK


def _viz_depth(text: str) -> int | None:
    if text in ("all", "full"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(_usage_error(f"--depth expects a number from 1 or 'all', got {text!r}"))
    return int(text)


def cmd_list(args) -> int:
    from .zoo import list_models

    models = list_models(args.pattern)
    if args.json:
        print(json.dumps([m.as_dict() for m in models]))
        return EXIT_OK
    if not models:
        print(f"no zoo model matches '{args.pattern}'", file=sys.stderr)
        return EXIT_SPEC_ERROR
    width = max(len(m.name) for m in models)
    print(f"{'model':<{width}}  {'params':>13}  {'GFLOPs':>7}  {'input':<15}  reference")
    for m in models:
        print(f"{m.name:<{width}}  {m.params:>13,}  {m.flops / 1e9:>7.3f}  {_shape(m.resolution):<15}  {_clip(m.reference, 72)}")
    return EXIT_OK


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _shape(dims: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _version() -> str:
    from . import __version__

    return __version__


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archdsl", description="Compile architecture specs into PyTorch models.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    parser.add_argument("--version", action="version", version=f"archdsl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="which model, when a file declares several")
    common.add_argument("--allow-outside-imports", action="store_true",
                        help="let imports leave the spec's folder tree")
    common.add_argument("--limit", action="append", metavar="NAME=VALUE",
                        help="raise a resource limit: params=16GiB (parameter memory, fp32; default 8GiB), "
                             "activation=8GiB (one feature map; default 4GiB), nodes=100000 (default 50000), "
                             "repeat, iterations, block-depth")

    b = sub.add_parser("build", parents=[common], help="compile a spec and print a summary")
    b.add_argument("spec", help="an .arch file or a zoo model name (archdsl list)")
    b.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    b.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="rebind a family parameter (a spec expression: 10, 0.5, [2, 2, 2, 2])")
    b.add_argument("--dump-ir", action="store_true", help="print the graph IR, one node per line")
    b.add_argument("--optimize", action="store_true",
                   help="run the inference passes (fold batch norms and layer scales, fuse, drop no-ops)")
    b.add_argument("--fx", action="store_true", help="print the code of the torch.fx GraphModule")
    b.set_defaults(run=cmd_build)

    s = sub.add_parser("summary", parents=[common], help="layer table: shapes, parameters, FLOPs, receptive "
                                                           "fields (no torch needed)")
    s.add_argument("spec", help="an .arch file or a zoo model name")
    s.add_argument("--json", action="store_true", help="print the table as JSON")
    s.add_argument("--depth", type=int, default=4, help="scope depth of the rows (default 4: blocks)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="rebind a family parameter")
    s.set_defaults(run=cmd_summary)

    ls = sub.add_parser("list", help="the zoo: every shipped model with parameters, FLOPs, input and reference")
    ls.add_argument("pattern", nargs="?", default="*", help="a shell pattern on names (default: all), e.g. 'convnext*'")
    ls.add_argument("--json", action="store_true", help="print the list as JSON")
    ls.set_defaults(run=cmd_list)

    v = sub.add_parser("viz", parents=[common], help="draw the architecture (svg, png, pdf, dot, html; no torch "
                                                      "needed)")
    v.add_argument("spec", help="an .arch file or a zoo model name")
    v.add_argument("-o", "--output", metavar="FILE", help="the file to write; its suffix picks the format "
                                                          "(.svg .png .pdf .dot .html); default <model>.svg here")
    v.add_argument("--depth", default="2", help="scopes deeper than this are one node each (1: stem, stages, "
                                                "head; 'all': every op; default 2)")
    v.add_argument("--expand", action="append", metavar="SCOPE", help="open this scope whatever the depth "
                                                                       "(e.g. stages.2); repeatable")
    v.add_argument("--rankdir", choices=("TB", "LR"), default="TB", help="top to bottom (default) or left to right")
    v.add_argument("--set", action="append", metavar="NAME=VALUE", help="rebind a family parameter")
    v.set_defaults(run=cmd_viz)

    c = sub.add_parser("check", parents=[common], help="parse and check specs (no torch needed)")
    c.add_argument("specs", nargs="+", help=".arch files or zoo model names")
    c.add_argument("--strict", action="store_true", help="treat warnings as errors")
    c.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    c.set_defaults(run=cmd_check)
    add_fmt_parser(sub)
    add_deploy_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A command is one short compilation whose objects mostly live until it ends: collecting
    # garbage less often makes big specs check in linear time (4,000 residual blocks: 3.0 s
    # of CPU with the default thresholds, 1.8 s with these; docs/performance.md).
    gc.set_threshold(50_000, 20, 100)
    parser = make_parser()
    args = parser.parse_args(argv)
    run: Callable = args.run
    try:
        status = run(args)
        sys.stdout.flush()  # output to a full device fails here, inside the handlers, not at exit
        return status
    except ArchDSLError as e:
        print(e.render(), file=sys.stderr)
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_OK
    except OSError as e:  # the machine's doing, not archdsl's: a full device, a file that vanished
        from .fileio import os_error

        _discard_stdout()
        action, what = ("write", "the output") if e.filename is None else ("use", e.filename)
        print(os_error(action, what, e).render(), file=sys.stderr)
        return EXIT_SPEC_ERROR
    except ModuleNotFoundError as e:  # an install without a dependency (lark is imported on first parse)
        if args.debug:
            raise
        print(f"error: archdsl needs the Python package '{e.name}', which is not installed\n"
              f"hint: install archdsl with its dependencies: pip install archdsl "
              f"(in a checkout: pip install -e .)", file=sys.stderr)
        return EXIT_SPEC_ERROR
    except Exception as e:  # an archdsl bug, not the user's: no traceback unless asked
        if args.debug:
            raise
        print(f"archdsl: internal error ({type(e).__name__}: {e}); please report it with the spec "
              f"that caused it (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the output still buffered is not flushed again (and
    reported as an ignored exception) when the interpreter exits."""
    try:
        sys.stdout.flush()
    except OSError:
        pass
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by a non-file (tests)
        pass


if __name__ == "__main__":
    sys.exit(main())

