"""`archdsl fmt`: rewrite specs in the canonical format (`--check`: only report, like black).

Exit status: 0 nothing to do (or done), 1 a spec would change under --check, does not parse
or cannot be written, 2 a wrong command line. Files are replaced atomically
(`archdsl.fileio.write_atomic`): killed or out of disk, a spec is left as it was or formatted, whole.
"""
from __future__ import annotations

import difflib
import sys
from pathlib import Path


def add_fmt_parser(subparsers) -> None:
    f = subparsers.add_parser("fmt", help="format specs canonically (comments kept)")
    f.add_argument("specs", nargs="+", help=".arch files")
    f.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 and print a diff if a file would change")
    f.set_defaults(run=cmd_fmt)


def cmd_fmt(args) -> int:
    from .errors import ArchDSLError
    from .fileio import write_atomic
    from .frontend.formatter import format_text
    from .frontend.loader import read_spec_text

    status = 0
    for spec in args.specs:
        path = Path(spec)
        try:
            text = read_spec_text(path)
            formatted = format_text(text, spec)
        except ArchDSLError as e:
            print(e.render(), file=sys.stderr)
            status = 1
            continue
        if formatted == text:
            continue
        if args.check:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(keepends=True),
                                                       formatted.splitlines(keepends=True),
                                                       f"{spec} (original)", f"{spec} (formatted)"))
            print(f"would reformat {spec}", file=sys.stderr)
            status = 1
        else:
            try:  # all or nothing per file; one that cannot be written does not stop the others
                write_atomic(path, formatted)
            except ArchDSLError as e:
                print(e.render(), file=sys.stderr)
                status = 1
                continue
            print(f"reformatted {spec}", file=sys.stderr)
    return status
