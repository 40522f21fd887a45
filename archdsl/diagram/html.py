"""The `.html` drawing: one self-contained page (no network, no scripts from elsewhere) where a
click on a closed scope opens it and a click on an open scope's frame closes it.

Graphviz lays out every drawing ahead of time, so the page carries one SVG per state it can
show (a state is a set of open scopes): the requested drawing, each drawing one click away
from it, and for every scope the first view with that scope (and its ancestors) opened, and
with it closed. From
any state a click goes to the exact state it asks for when the page has it, and otherwise to
the nearest one that shows what was clicked (the first view with the clicked scope opened or
closed), so every scope can be opened down to single ops. A few `dot` processes lay out all
the SVGs (one per core, up to 4).
"""
from __future__ import annotations

import html
import json
import os
from concurrent.futures import ThreadPoolExecutor

import graphviz

from .dot import Facts, draw
from .scopes import ancestors, only_child, with_only_children
from .view import build_view

_SEP = "|"


def state_key(opened) -> str:
    return _SEP.join(sorted(opened))


def page_states(facts: Facts, initial: frozenset[str]) -> list[frozenset[str]]:
    """The states the page carries, the initial one first, in a deterministic order."""
    states = [initial]
    view = build_view(facts.graph, facts.tree, initial)
    tree = facts.tree
    for item in view.items.values():  # one click from the initial drawing
        if item.kind == "scope":
            states.append(initial | set(with_only_children(tree, item.key)))
        elif item.kind == "fold":
            states.append(initial | set(with_only_children(tree, item.run.items[0])))
    for frame in view.frames():
        states.append(closed_under(initial, frame))
    states.append(frozenset({""}))
    for scope in tree.scopes():  # each scope opened, and closed, on top of the initial drawing
        states.append(initial | {*ancestors(scope), *with_only_children(tree, scope)})
        states.append(closed_under(initial | set(ancestors(scope)), scope))
    seen, out = set(), []
    for s in states:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def closed_under(opened, scope: str) -> frozenset[str]:
    """`opened` with `scope` and everything inside it closed."""
    return frozenset(s for s in opened if s != scope and not s.startswith(scope + "."))


def render_svgs(sources: list[str]) -> list[str]:
    """Lay out several dot graphs, the `<svg>` element of each: a few `dot` processes at once
    (one per core, up to 4), each laying out a consecutive share of the graphs."""
    workers = max(1, min(4, os.cpu_count() or 1, len(sources) // 8))
    size = -(-len(sources) // workers)
    shares = [sources[i:i + size] for i in range(0, len(sources), size)]
    with ThreadPoolExecutor(len(shares)) as pool:  # threads wait on dot subprocesses
        return [svg for svgs in pool.map(_render_share, shares) for svg in svgs]


def _render_share(sources: list[str]) -> list[str]:
    out = graphviz.pipe("dot", "svg", "\n".join(sources).encode()).decode()
    svgs = ["<svg" + chunk[: chunk.rindex("</svg>") + len("</svg>")] for chunk in out.split("<svg")[1:]]
    if len(svgs) != len(sources):
        raise RuntimeError(f"dot returned {len(svgs)} drawings for {len(sources)} graphs")
    return svgs


def page(facts: Facts, initial: frozenset[str], rankdir: str = "TB") -> str:
    """The whole HTML page for a compiled spec, opening on `initial`."""
    states = page_states(facts, initial)
    sources = [draw(facts, build_view(facts.graph, facts.tree, s), rankdir).source for s in states]
    svgs = render_svgs(sources)
    data = {"states": {state_key(s): i for i, s in enumerate(states)}, "svgs": svgs,
            "scopes": facts.tree.scopes(), "initial": state_key(initial),
            "onlyChild": {s: kid for s in facts.tree.scopes() if (kid := only_child(facts.tree, s))}}
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    title = html.escape(f"{facts.compiled.name} - archdsl viz")
    return _TEMPLATE.replace("__TITLE__", title).replace("__DATA__", payload)


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
g.node.closed, g.cluster.open > text { cursor: pointer; }
g.node.closed:hover polygon, g.node.closed:hover path { stroke: #1155cc; stroke-width: 2; }
g.cluster.open > text:hover { fill: #1155cc; text-decoration: underline; }
</style>
</head>
<body>
<header><button id="all-closed">close all</button><button id="initial">first view</button>
<span id="status"></span> &mdash; click a box to open it, a frame's title to close it; hover for the spec line</header>
<div id="drawing"></div>
<script id="viz-data" type="application/json">__DATA__</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("viz-data").textContent);
const SCOPES = new Set(DATA.scopes);
const SEP = "|";
let current = DATA.initial;

function opened(key) { return new Set(key.split(SEP)); }
function keyOf(set) { return Array.from(set).sort().join(SEP); }
function ancestorsOf(scope) {
  const parts = scope.split("."), out = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("."));
  return out;
}
function withOnlyChildren(scope) {
  const chain = [scope];
  while (chain[chain.length - 1] in DATA.onlyChild) chain.push(DATA.onlyChild[chain[chain.length - 1]]);
  return chain;
}
function drill(scope) {  // the page's drawing of `scope` opened on top of the first view
  return keyOf(new Set([...opened(DATA.initial), ...ancestorsOf(scope), ...withOnlyChildren(scope)]));
}
function closedUnder(set, scope) {
  return new Set([...set].filter(s => s !== scope && !s.startsWith(scope + ".")));
}
function go(target, fallback) {
  current = (target in DATA.states) ? target : fallback;
  show();
}
function openScope(scope) {
  const set = opened(current);
  [...ancestorsOf(scope), ...withOnlyChildren(scope)].forEach(s => set.add(s));
  go(keyOf(set), drill(scope));
}
function closeScope(scope) {
  const fallback = closedUnder(new Set([...opened(DATA.initial), ...ancestorsOf(scope)]), scope);
  go(keyOf(closedUnder(opened(current), scope)), keyOf(fallback));
}
function show() {
  const box = document.getElementById("drawing");
  box.innerHTML = DATA.svgs[DATA.states[current]];
  const open = [...opened(current)].filter(s => s).length;
  document.getElementById("status").textContent = open + " scope" + (open === 1 ? "" : "s") + " open";
  box.querySelectorAll("g.node").forEach(g => {
    const key = (g.id || "").replace(/^n:/, "");
    const fold = key.match(/^(.*)\\.(\\d+)-(\\d+)$/);
    if (SCOPES.has(key)) {
      g.classList.add("closed");
      g.addEventListener("click", ev => { ev.preventDefault(); openScope(key); });
    } else if (fold && SCOPES.has(fold[1])) {
      g.classList.add("closed");
      g.addEventListener("click", ev => { ev.preventDefault(); openScope(fold[1] + "." + fold[2]); });
    }
  });
  box.querySelectorAll("g.cluster").forEach(g => {
    const scope = (g.id || "").replace(/^c:/, "");
    if (!SCOPES.has(scope)) return;
    g.classList.add("open");
    const title = g.querySelector(":scope > text") || g.querySelector("text");
    if (title) title.addEventListener("click", ev => { ev.preventDefault(); closeScope(scope); });
  });
}
document.getElementById("all-closed").addEventListener("click", () => go("", ""));
document.getElementById("initial").addEventListener("click", () => go(DATA.initial, DATA.initial));
show();
</script>
</body>
</html>
"""
