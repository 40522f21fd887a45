"""The `.html` drawing: one self-contained page (no network, nothing fetched) where a click on
a closed scope or a folded run opens it and a click on an open scope's frame title closes it;
any set of open scopes can be shown, and scopes opened one after the other stay open together.

Python lays nothing out for the page: it computes once the pieces of dot text that any drawing
of the spec is assembled from (`pieces.py`: every item's statement, every edge's attributes,
every frame's parts) and the scope tree, and embeds them as JSON with `page.js`, which
assembles the drawing of the open scopes as `dot.py` does and lays it out in the browser with
Viz.js (Graphviz compiled to WebAssembly, `vendor/viz-global.js`, inlined: the page is ~1.4 MB).
"""
from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path

from .pieces import Facts
from .scopes import only_child
from .view import every_item, output_terminals

_HERE = Path(__file__).resolve().parent
VIZ_JS = _HERE / "vendor" / "viz-global.js"
PAGE_JS = _HERE / "page.js"


def page_data(facts: Facts, initial: frozenset[str], rankdir: str = "TB") -> dict:
    """Everything page.js needs, as JSON-ready lists (the layout of each is in page.js)."""
    tree = facts.tree
    strings: dict[str, int] = {}  # edge attributes, each written once

    def string(text: str) -> int:
        return strings.setdefault(text, len(strings))

    items = every_item(tree)
    index = {(item.key, item.kind): i for i, item in enumerate(items)}
    scopes = tree.scopes()
    scope_index = {s: i for i, s in enumerate(scopes)}
    runs = [item for item in items if item.kind == "fold"]
    run_index = {scope: r for r, item in enumerate(runs) for scope in item.run.items}

    def scope_row(scope: str) -> list:
        parents = tree.ancestors(scope)
        kid = only_child(tree, scope)
        frame = facts.frame(scope)
        return [scope, scope_index[parents[-1]] if parents else -1, index[scope, "scope"], run_index.get(scope, -1),
                -1 if kid is None else scope_index[kid], frame.head, frame.before, frame.after, frame.name, frame.kind]

    def node_row(nid: int) -> list:
        scope = facts.graph.node(nid).scope
        parents = tree.ancestors(scope)
        return [scope_index[parents[-1]] if parents else -1, index[scope, "op"], string(facts.value_attrs(nid))]

    position = {nid: i for i, nid in enumerate(tree.order)}
    return {
        "header": facts.header(rankdir),
        "items": [[item.key, facts.edge_id(item.key), facts.statement(item), item.frame, item.kind] for item in items],
        "scopes": [scope_row(s) for s in scopes],
        "runs": [[index[item.key, "fold"], [scope_index[s] for s in item.run.items]] for item in runs],
        "nodes": [node_row(nid) for nid in tree.order],
        "edges": [[position[src], position[nid], string(facts.op_edge_attrs(src, nid, slot))]
                  for nid in tree.order for slot, src in enumerate(tree.inputs[nid])],
        "outputs": [[index[key, "output"], position[out], string(facts.output_edge_attrs(out))]
                    for key, out in output_terminals(facts.graph)],
        "strings": list(strings),
        "initial": sorted(initial),
    }


def page(facts: Facts, initial: frozenset[str], rankdir: str = "TB") -> str:
    """The whole HTML page for a compiled spec, opening on `initial`."""
    data = json.dumps(page_data(facts, initial, rankdir), ensure_ascii=False, separators=(",", ":"))
    parts = {"TITLE": html.escape(f"{facts.compiled.name} - archdsl viz"),
             "DATA": data.replace("<", "\\u003c"),  # `<` only occurs in strings: no `</script>`, no `<!--`
             "VIZ": _script(VIZ_JS), "PAGE": _script(PAGE_JS)}
    return re.sub(r"__(TITLE|DATA|VIZ|PAGE)__", lambda m: parts[m[1]], _TEMPLATE)


@lru_cache(maxsize=None)
def _script(path: Path) -> str:
    """A script's text, checked to be safe inline (nothing in it ends the <script> element)."""
    text = path.read_text(encoding="utf-8")
    if re.search(r"</script|<!--", text, re.I):
        raise ValueError(f"{path} cannot be inlined in a <script> element")
    return text


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>__TITLE__</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 0; }
header { padding: 6px 10px; border-bottom: 1px solid #ddd; font-size: 13px; position: sticky; top: 0;
         background: #fff; }
header button { font-size: 12px; margin-right: 6px; }
#drawing { padding: 10px; }
#drawing svg { max-width: none; }
g.node.closed, text.frame-title { cursor: pointer; }
g.node.closed:hover polygon, g.node.closed:hover path { stroke: #1155cc; stroke-width: 2; }
text.frame-title:hover { fill: #1155cc; text-decoration: underline; }
</style>
</head>
<body>
<header><button id="all-closed">close all</button><button id="initial">first view</button>
<span id="status"></span> &mdash; click a box to open it, a frame's title to close it; hover for the spec line</header>
<div id="drawing"></div>
<script id="viz-data" type="application/json">__DATA__</script>
<script>
__VIZ__
</script>
<script>
__PAGE__
</script>
</body>
</html>
"""
