// The `.html` page of `archdsl viz`: draws the spec for any set of open scopes, in the browser.
//
// The page carries every piece of dot text a drawing of the spec can hold (archdsl/diagram/
// pieces.py: each item's statement, each edge's attributes, each frame's parts) and the scope
// tree. For the current set of open scopes this script does what view.py's build_view and
// dot.py's body_lines do in Python, concatenating the same pieces into the same dot text
// (tests/test_viz_browser.py checks they agree), and lays it out with Viz.js (Graphviz in
// WebAssembly, inlined before this script). A click on a closed scope or a folded run opens
// it; a click on a frame's title closes that scope; any combination of open scopes can be shown.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("viz-data").textContent);
  const STR = DATA.strings;
  // items: [key, edge id, statement, frame, kind]
  const ITEMS = DATA.items.map(([key, edgeId, statement, frame, kind]) => ({key, edgeId, statement, frame, kind}));
  const ITEM_BY_KEY = new Map(ITEMS.map((item, i) => [item.key, i]));
  // scopes, parents first: [name, parent, closed item, run (-1: none), only child (-1), head, before, after,
  // name in quotes, kind in quotes]
  const SCOPES = DATA.scopes.map(([name, parent, item, run, onlyChild, head, before, after, qname, qkind]) =>
    ({name, parent, item, run, onlyChild, head, before, after, qname, qkind}));
  const SCOPE_BY_NAME = new Map(SCOPES.map((s, i) => [s.name, i]));
  const RUNS = DATA.runs.map(([item, scopes]) => ({item, scopes}));  // folds: the fold's item, its items' scopes
  // nodes in the graph's topological order: [deepest scope above it (-1: none), its op's item, edge attributes
  // of its value into a closed scope or fold]
  const NODES = DATA.nodes;
  const CHAIN = NODES.map(([scope]) => {  // the scopes above a node, shallowest first
    const chain = [];
    for (let s = scope; s >= 0; s = SCOPES[s].parent) chain.push(s);
    return chain.reverse();
  });

  // view.py: build_view --------------------------------------------------------------------------
  function buildView(opened) {
    const rep = new Int32Array(NODES.length);
    const items = [], seen = new Uint8Array(ITEMS.length);
    NODES.forEach(([, opItem], n) => {
      let item = opItem;
      for (const s of CHAIN[n]) {  // the shallowest closed scope draws the node, or the fold it belongs to
        if (opened.has(SCOPES[s].name)) continue;
        const run = SCOPES[s].run;
        const folded = run >= 0 && !RUNS[run].scopes.some(i => opened.has(SCOPES[i].name));
        item = folded ? RUNS[run].item : SCOPES[s].item;
        break;
      }
      rep[n] = item;
      if (!seen[item]) { seen[item] = 1; items.push(item); }
    });
    const edges = [], drawn = new Set();
    for (const [src, user, opAttrs] of DATA.edges) {  // one edge per value into a drawn item
      const a = rep[src], b = rep[user], key = a + " " + b + " " + src;
      if (a === b || drawn.has(key)) continue;
      drawn.add(key);
      edges.push([a, b, STR[ITEMS[b].kind === "op" ? opAttrs : NODES[src][2]]]);
    }
    for (const [item, node, attrs] of DATA.outputs) {
      items.push(item);
      edges.push([rep[node], item, STR[attrs]]);
    }
    return {opened, items, edges};
  }

  function prefixes(key) {  // view.py: ancestors(key + ".x")
    const parts = key.split("."), out = [];
    for (let i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join("."));
    return out;
  }

  function frames(view) {  // View.frames: open scopes that hold something drawn, parents first
    const used = new Set();
    for (const i of view.items) for (const p of prefixes(ITEMS[i].key)) if (view.opened.has(p)) used.add(p);
    return SCOPES.map(s => s.name).filter(name => used.has(name));
  }

  // dot.py: body_lines ---------------------------------------------------------------------------
  function frameAttrs(sub, inner) {  // pieces.py: Facts.frame_attrs
    const a = SCOPES[SCOPE_BY_NAME.get(sub)], b = SCOPES[SCOPE_BY_NAME.get(inner)];
    const name = inner === sub ? a.qname : a.qname + " > " + b.qname.slice(a.qname.length + 1);
    return a.before + '"' + name + " (" + b.qkind + ')"' + a.after;
  }

  function drawingText(opened) {
    const view = buildView(opened);
    const byFrame = new Map(), childFrames = new Map();
    for (const i of view.items) {
      const frame = ITEMS[i].frame;
      if (!byFrame.has(frame)) byFrame.set(frame, []);
      byFrame.get(frame).push(i);
    }
    for (const f of frames(view)) {
      const parent = f.includes(".") ? f.slice(0, f.lastIndexOf(".")) : "";
      if (!childFrames.has(parent)) childFrames.set(parent, []);
      childFrames.get(parent).push(f);
    }
    const held = frame => (byFrame.get(frame) || []).length;
    const kids = frame => childFrames.get(frame) || [];
    const lines = [];
    function fill(frame, depth) {
      const tabs = "\t".repeat(depth);
      for (const i of byFrame.get(frame) || []) lines.push(tabs + ITEMS[i].statement + "\n");
      for (const sub of kids(frame)) {
        let inner = sub;  // a frame holding nothing but one frame is drawn once, named for both
        while (!held(inner) && kids(inner).length === 1) inner = kids(inner)[0];
        const alone = byFrame.get(inner) || [];  // a frame around one op: the op alone (see dot.py)
        if (alone.length === 1 && ITEMS[alone[0]].kind === "op" && !kids(inner).length) { fill(inner, depth); continue; }
        lines.push(tabs + SCOPES[SCOPE_BY_NAME.get(sub)].head + "\n");
        lines.push(tabs + "\t" + frameAttrs(sub, inner) + "\n");
        fill(inner, depth + 1);
        lines.push(tabs + "}\n");
      }
    }
    fill("", 1);
    for (const [a, b, attrs] of view.edges) {
      lines.push("\t" + ITEMS[a].edgeId + " -> " + ITEMS[b].edgeId + attrs + "\n");
    }
    return DATA.header + lines.join("") + "}\n";
  }

  // opening and closing ---------------------------------------------------------------------------
  let viz = null, current = new Set(DATA.initial), rendered = 0;
  const box = document.getElementById("drawing"), status = document.getElementById("status");

  function ancestorsOf(scope) {
    const parts = scope.split("."), out = [];
    for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("."));
    return out;
  }
  function withOnlyChildren(scope) {  // scopes.py: opening a scope that holds one scope opens both
    const chain = [scope];
    for (let s = SCOPES[SCOPE_BY_NAME.get(scope)].onlyChild; s >= 0; s = SCOPES[s].onlyChild) {
      chain.push(SCOPES[s].name);
    }
    return chain;
  }
  function openScope(scope) {
    const next = new Set(current);
    [...ancestorsOf(scope), ...withOnlyChildren(scope)].forEach(s => next.add(s));
    show(next);
  }
  function closeScope(scope) {
    show(new Set([...current].filter(s => s !== scope && !s.startsWith(scope + "."))));
  }

  function show(opened) {
    const state = current = new Set(opened);
    if (!viz) return;  // Viz.js is still starting: it shows `current` when it is ready
    status.textContent = "laying out...";
    // let the browser paint the message first: a big drawing takes a while to lay out
    setTimeout(() => {
      if (state !== current) return;  // a later click asked for another drawing
      const open = [...state].filter(s => s).length;
      try {
        const svg = viz.renderSVGElement(drawingText(state));
        box.replaceChildren(svg);
        wire(svg);
        status.textContent = open + " scope" + (open === 1 ? "" : "s") + " open";
      } catch (err) {
        status.textContent = "could not lay the drawing out: " + err;
        throw err;
      } finally {
        box.dataset.rendered = String(++rendered);  // tests wait on this
      }
    }, 0);
  }

  function wire(svg) {
    svg.querySelectorAll("g.node").forEach(g => {
      const i = ITEM_BY_KEY.get((g.id || "").replace(/^n:/, ""));
      const item = i === undefined ? null : ITEMS[i];
      if (!item || (item.kind !== "scope" && item.kind !== "fold")) return;
      const scope = item.kind === "scope" ? item.key : SCOPES[RUNS.find(r => r.item === i).scopes[0]].name;
      g.classList.add("closed");
      g.addEventListener("click", ev => { ev.preventDefault(); openScope(scope); });
    });
    svg.querySelectorAll("g.cluster").forEach(g => {
      const scope = (g.id || "").replace(/^c:/, "");
      if (!SCOPE_BY_NAME.has(scope)) return;
      // the frame's own label: its first text (graphviz wraps it in a link when the frame has a tooltip)
      const title = g.querySelector(":scope > text") || g.querySelector("text");
      if (!title) return;
      title.classList.add("frame-title");
      title.addEventListener("click", ev => { ev.preventDefault(); closeScope(scope); });
    });
  }

  document.getElementById("all-closed").addEventListener("click", () => show(new Set([""])));
  document.getElementById("initial").addEventListener("click", () => show(new Set(DATA.initial)));
  // for tests and the curious: the dot text of any set of open scopes, and the open scopes now
  window.archdslViz = {drawingText: scopes => drawingText(new Set(scopes)), show: scopes => show(new Set(scopes)),
                       opened: () => [...current].sort()};
  status.textContent = "laying out...";
  Viz.instance().then(instance => { viz = instance; show(current); }).catch(err => {
    status.textContent = "could not start Viz.js: " + err;
    throw err;
  });
})();
