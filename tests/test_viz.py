"""`archdsl viz`: the drawing's content against the IR (nodes, edges, shapes, folding,
parameter totals), determinism, formats, errors, and that no torch is imported.

The expected node and edge sets are computed here from the IR with the summary's rule (a
node is drawn by the first `depth` components of its scope when it is deeper than that),
not with the diagram package's own code. Needs graphviz's `dot` program for the rendered
formats (apt-get install graphviz).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archdsl.compiler import compile_spec
from archdsl.diagram import drawing, render, viz

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = "(output)"

_ID = r'(?:"(?:[^"\\]|\\.)*"|[^\s\[\]"]+)'
_NODE = re.compile(rf"^\s*({_ID}) \[(.*)\]$")
_EDGE = re.compile(rf"^\s*({_ID}) -> ({_ID}) \[(.*)\]$")
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')
_SHAPE = re.compile(r"\[[\d, ]+\]")


def _unquote(text: str) -> str:
    if text.startswith('"'):
        text = text[1:-1].replace('\\"', '"')
    return text.replace("\\n", "\n").replace("\\\\", "\\")


def parse_dot(source: str) -> tuple[dict[str, dict], list[tuple[str, str, dict]]]:
    """Nodes (name -> attributes) and edges (src, dst, attributes) of a dot text."""
    nodes, edges = {}, []
    for line in source.splitlines():
        if m := _EDGE.match(line):
            edges.append((_unquote(m[1]), _unquote(m[2]), {k: _unquote(v) for k, v in _ATTR.findall(m[3])}))
        elif (m := _NODE.match(line)) and m[1] not in ("graph", "node", "edge"):
            nodes[_unquote(m[1])] = {k: _unquote(v) for k, v in _ATTR.findall(m[2])}
    return nodes, edges


def expected(compiled, depth: int | None):
    """The drawing at `depth` by the summary's rule, straight from the IR."""
    graph = compiled.graph

    def rep(scope: str) -> str:
        parts = scope.split(".")
        return scope if depth is None or len(parts) <= depth else ".".join(parts[:depth])

    nodes = {rep(n.scope) for n in graph} | {OUTPUT}
    edges = {(rep(graph.node(u).scope), rep(graph.node(v).scope), str(graph.node(u).shape))
             for u, v in ir_edges(graph) if rep(graph.node(u).scope) != rep(graph.node(v).scope)}
    edges.add((rep(graph.node(graph.output).scope), OUTPUT, str(graph.node(graph.output).shape)))
    return nodes, edges


def ir_edges(graph) -> list[tuple[int, int]]:
    """(argument, user) for every argument of every node."""
    return [(u, node.id) for node in graph for u in graph.inputs(node.id)]


def drawn(source: str):
    nodes, edges = parse_dot(source)
    return set(nodes), {(s, d, _SHAPE.search(a["label"])[0]) for s, d, a in edges}


@pytest.fixture(scope="module")
def resnet50():
    return compile_spec("specs/resnet50.arch")


@pytest.mark.quick
@pytest.mark.parametrize("depth", [1, 2])
def test_nodes_and_edges_at_depth_match_the_ir(resnet50, depth):
    nodes, edges = drawn(viz(resnet50, depth=depth).source)
    want_nodes, want_edges = expected(resnet50, depth)
    assert nodes == want_nodes
    assert edges == want_edges
    if depth == 1:
        assert nodes == {"input", "stem", "stages", "head", OUTPUT}


@pytest.mark.parametrize("spec", ["resnet18", "levit_128s", "mobilevit_s"])
def test_every_op_and_every_edge_with_its_static_shape_at_full_depth(spec):
    compiled = compile_spec(spec)
    nodes, edges = drawn(viz(compiled, depth=None).source)
    want_nodes, want_edges = expected(compiled, None)
    assert nodes == want_nodes and len(nodes) == len(compiled.graph) + 1
    assert edges == want_edges
    # every IR edge is drawn (edges carrying one value into one node are one edge)
    assert len(edges) == len(set(ir_edges(compiled.graph))) + 1


def test_token_edges_say_so():
    _, edges = parse_dot(viz("levit_128s", depth=None).source)
    labels = {a["label"] for _, _, a in edges}
    assert "[196, 128] tokens" in labels  # 14x14 tokens of 128 channels after LeViT-128S's stem
    assert any(lbl.startswith("q: ") for lbl in labels)  # attention's inputs are named


def _params_drawn(source: str) -> int:
    """Sum of the parameters the drawing states: on closed scopes and folds in the label,
    on single ops in the tooltip."""
    nodes, _ = parse_dot(source)
    total = 0
    for attrs in nodes.values():
        text = attrs.get("label", "") if attrs.get("shape") in ("box", "box3d") else attrs.get("tooltip", "")
        total += sum(int(m.replace(",", "")) for m in re.findall(r"([\d,]+) params", text))
    return total


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, None])
def test_parameters_of_collapsed_nodes_sum_to_the_models(resnet50, depth):
    assert _params_drawn(viz(resnet50, depth=depth).source) == 25_557_032  # the spec's `expect params`


def test_params_sum_with_folds_in_other_families():
    for spec in ("convnext_tiny", "mobilenet_v2"):
        compiled = compile_spec(spec)
        for depth in (2, 3, 4):
            assert _params_drawn(viz(compiled, depth=depth).source) == compiled.params, (spec, depth)


def test_repeats_fold_into_one_node_with_the_firsts_differences(resnet50):
    nodes, edges = parse_dot(viz(resnet50, depth=4).source)
    folds = {k: v["label"] for k, v in nodes.items() if v.get("shape") == "box3d"}
    assert set(folds) == {"stages.0.blocks.0-2", "stages.1.blocks.0-3", "stages.2.blocks.0-5", "stages.3.blocks.0-2"}
    for key, n in zip(sorted(folds), (3, 4, 6, 3)):  # ResNet-50's depths [3, 4, 6, 3]
        assert f"bottleneck x {n}" in folds[key]
    # the first block of stages 1-3 downsamples and projects its shortcut; stage 0's only projects
    assert "first: conv2 conv 3x3 s2" in folds["stages.1.blocks.0-3"]
    assert "first: + shortcut: conv 1x1 s2 -> bn" in folds["stages.1.blocks.0-3"]
    assert "s2" not in folds["stages.0.blocks.0-2"] and "+ shortcut: conv 1x1 -> bn" in folds["stages.0.blocks.0-2"]
    # a fold carries the value into and out of the run
    assert ("stages.0.blocks.0-2", "stages.1.blocks.0-3") in {(s, d) for s, d, _ in edges}


def test_expanding_one_item_unfolds_its_run(resnet50):
    nodes, _ = parse_dot(viz(resnet50, depth=4, expand=["stages.2.blocks.3"]).source)
    assert {"stages.2.blocks.0", "stages.2.blocks.5", "stages.2.blocks.3.conv2"} <= set(nodes)
    assert "stages.2.blocks.0-5" not in nodes and "stages.1.blocks.0-3" in nodes
    assert "stages.2.blocks.3" not in nodes  # open: drawn as a frame, its ops inside
    assert "subgraph \"cluster_stages.2.blocks.3\"" in viz(resnet50, depth=4, expand=["stages.2.blocks.3"]).source


TOY = """
block unit(out, stride = 1) {
  residual {
    conv(out, k=3, s=stride) -> bn -> relu
    conv(out, k=3) -> bn
  } shortcut when stride != 1 or in.channels != out {
    conv(out, k=1, s=stride) -> bn
  }
  -> relu
}

model toy {
  input [3, 32, 32]
  stem {
    conv(16, k=3) -> bn -> relu
  }
  blocks {
    unit(16) x 3
    unit(32) x 2 first(stride = 2)
    unit(64, stride = 2)
  }
  head {
    avgpool -> flatten -> linear(10) as fc
  }
}
"""


def test_identical_items_fold_without_differences_and_distinct_items_do_not():
    compiled = compile_spec(text=TOY)
    nodes, _ = parse_dot(viz(compiled, depth=3).source)
    folds = {k: v["label"] for k, v in nodes.items() if v.get("shape") == "box3d"}
    # two repeats in one section are one container of 5 items: 3 identical, then 2 led by a downsampler
    assert set(folds) == {"blocks.blocks.0-2", "blocks.blocks.3-4"}
    assert "unit x 3" in folds["blocks.blocks.0-2"] and "first:" not in folds["blocks.blocks.0-2"]
    assert "unit x 2" in folds["blocks.blocks.3-4"]
    assert "first: + shortcut: conv 1x1 s2 -> bn" in folds["blocks.blocks.3-4"]
    assert "blocks.unit1.add1" in nodes  # a block outside the repeat is no part of a fold
    assert _params_drawn(viz(compiled, depth=3).source) == compiled.params


def test_closed_nodes_show_params_flops_and_receptive_field(resnet50):
    nodes, _ = parse_dot(viz(resnet50, depth=2).source)
    label = nodes["stages.3"]["label"]
    rf = resnet50.rf[resnet50.graph.taps["stage4"].node] if getattr(resnet50.graph, "taps", None) else None
    assert "14,964,736 params" in label and "FLOPs" in label
    assert "RF 427 stride 32" in label  # ResNet-50's receptive field at its last feature map
    if rf is not None:
        assert max(rf.size) == 427


def test_merges_are_drawn_as_what_they_are():
    nodes, edges = parse_dot(viz("resnet18", depth=None).source)
    adds = [k for k, v in nodes.items() if v["label"] == "+"]
    assert len(adds) == 8 and all(nodes[k]["shape"] == "circle" for k in adds)
    dashed = [(s, d) for s, d, a in edges if a.get("style") == "dashed"]
    assert ("stages.0.blocks.0.relu2", "stages.0.blocks.1.add1") in dashed  # the identity path of a basic block
    mv, _ = parse_dot(viz("mobilevit_s", depth=None).source)
    assert any(v["label"] == "concat" and v["shape"] == "invtrapezium" for v in mv.values())
    assert any(v["label"].startswith("attention") for v in mv.values())


def test_colours_follow_op_kinds_across_models():
    colours: dict[str, set] = {}
    for spec in ("resnet18", "convnext_tiny", "levit_128s"):
        for attrs in parse_dot(viz(spec, depth=None).source)[0].values():
            word = attrs["label"].split(" ")[0]
            if word in ("conv", "bn", "relu", "linear", "layernorm", "+"):
                colours.setdefault(word, set()).add(attrs["fillcolor"])
    assert all(len(c) == 1 for c in colours.values()) and len(colours) == 6
    assert colours["bn"] == colours["layernorm"]  # one kind (norms), one colour
    assert len({next(iter(colours[k])) for k in ("conv", "bn", "relu", "linear")}) == 4  # other kinds differ


def test_warnings_are_drawn_where_they_are():
    nodes, _ = parse_dot(viz("examples/misaligned_shortcut.arch", depth=None).source)
    warned = {k: v for k, v in nodes.items() if "xlabel" in v}
    assert list(warned) == ["add1"]
    assert "misaligned" in warned["add1"]["xlabel"] and "misaligned" in warned["add1"]["tooltip"]


def test_tooltips_link_back_to_the_spec(resnet50):
    nodes, _ = parse_dot(viz(resnet50, depth=2).source)
    tip = nodes["stem.maxpool1"]["tooltip"]
    span = next(n.span for n in resnet50.graph if n.scope == "stem.maxpool1")
    assert f"{span.file}:{span.line}" in tip and "maxpool(k=3, s=2, p=1)" in tip


def test_unknown_ops_get_a_readable_label():
    from pydantic import BaseModel

    from archdsl.diagram.labels import _generic_label

    class UpsampleAttrs(BaseModel):
        scale: int = 2
        mode: str = "nearest"
        align: bool | None = None

    assert _generic_label("upsample", UpsampleAttrs()) == "upsample 2 nearest"


def test_dot_text_is_byte_identical_across_runs(tmp_path, resnet50):
    first = viz(resnet50, depth=3).source
    assert viz(compile_spec("specs/resnet50.arch"), depth=3).source == first
    outs = []
    for seed in ("1", "2"):  # another process, another hash seed: same bytes
        out = tmp_path / f"r{seed}.dot"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "archdsl", "viz", "resnet50", "--depth", "3", "-o", str(out)],
                       check=True, env=env, cwd=ROOT, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == first.encode()


def test_every_format_by_suffix_without_torch(tmp_path):
    script = (
        "import sys\n"
        "from archdsl.cli import main\n"
        f"for suffix in ('.svg', '.png', '.pdf', '.dot', '.html'):\n"
        f"    assert main(['viz', 'resnet18', '-o', r'{tmp_path}/r' + suffix]) == 0\n"
        "assert 'torch' not in sys.modules, 'viz imported torch'\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"
    assert (tmp_path / "r.dot").read_text().startswith("digraph resnet18 {")
    svg = ET.parse(tmp_path / "r.svg").getroot()
    titles = {g.find("{http://www.w3.org/2000/svg}title").text
              for g in svg.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"}
    assert titles == set(parse_dot((tmp_path / "r.dot").read_text())[0])
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Viz.instance()" in page  # laid out in the browser
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # self-contained: nothing fetched


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the command line in this process: (exit status, stdout, stderr)."""
    from archdsl.cli import main

    try:
        code = main(args)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_default_output_is_model_svg_in_the_cwd(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["viz", str(ROOT / "specs/resnet18.arch"), "--depth", "1"], capsys)
    assert code == 0, err
    assert out.strip() == "resnet18.svg"
    assert (tmp_path / "resnet18.svg").read_text().lstrip().startswith("<?xml")


def test_a_bad_spec_gets_checks_errors_and_no_file(tmp_path, monkeypatch, capsys):
    spec = str(ROOT / "examples/broken_residual.arch")
    monkeypatch.chdir(tmp_path)
    check = cli(["check", spec], capsys)
    run = cli(["viz", spec, "-o", "out.svg"], capsys)
    assert run[0] == check[0] == 1
    assert run[2] == check[2] and ":9:5: error:" in run[2]
    assert list(tmp_path.iterdir()) == []


def test_without_dot_one_line_and_dot_source_still_written(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no graphviz programs on the PATH
    run = subprocess.run([sys.executable, "-m", "archdsl", "viz", "resnet18", "-o", "r.svg"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1 and "dot" in run.stderr
    assert not (tmp_path / "r.svg").exists()
    for suffix in (".dot", ".html"):  # the page is laid out in the browser: no `dot` either
        run = subprocess.run([sys.executable, "-m", "archdsl", "viz", "resnet18", "-o", f"r{suffix}"], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    assert (tmp_path / "r.dot").read_text().startswith("digraph")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_command_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for args in (["--depth", "0"], ["-o", "x.jpg"], ["--expand", "stages.9"]):
        code, _, err = cli(["viz", "resnet18", *args], capsys)
        assert code == 2 and err.startswith("archdsl: error:"), (args, err)
    assert list(tmp_path.iterdir()) == []


def _page_data(page: str) -> dict:
    import json

    text = re.search(r'<script id="viz-data" type="application/json">(.*?)</script>', page, re.S)[1]
    return json.loads(text)


@pytest.mark.parametrize("depth", [1, 2])
def test_html_page_carries_every_item_any_drawing_can_hold(resnet50, depth):
    """The page draws any set of open scopes from the pieces it carries: every scope, and the
    statement of every item that the drawings at every depth (and one scope opened) show,
    exactly as the .dot text of those drawings writes it."""
    facts, opened = drawing(resnet50, depth=depth)
    data = _page_data(render(facts, opened, ".html").decode())
    assert [row[0] for row in data["scopes"]] == facts.tree.scopes()
    assert set(facts.tree.scopes()) == {s for s in resnet50.graph.scopes if s}
    assert set(data["initial"]) == opened
    statements = {row[2] for row in data["items"]}
    sources = [viz(resnet50, depth=d).source for d in (1, 2, 3, 4, 5, None)]
    sources.append(viz(resnet50, depth=1, expand=["stages.2.blocks.0.shortcut"]).source)
    for source in sources:
        for line in source.splitlines():
            line = line.strip()
            if _NODE.match(line) and not line.startswith(("graph ", "node ", "edge ")):
                assert line in statements
    attrs = set(data["strings"])
    for source in sources:  # every edge's attributes too
        for line in source.splitlines():
            if m := _EDGE.match(line):
                assert f" [{m[3]}]" in attrs
    assert len(data["nodes"]) == len(resnet50.graph)
    assert len(data["edges"]) == len(ir_edges(resnet50.graph))


def test_html_page_inlines_the_vendored_viz_js_it_says():
    """The vendored Viz.js is the version its note states, ships with the package
    (pyproject's package-data), and is what the page inlines."""
    import fnmatch
    import tomllib

    from archdsl.diagram.html import PAGE_JS, VIZ_JS

    vendor = VIZ_JS.parent
    header = re.search(r"^/\*!\s*Viz\.js (\d+\.\d+\.\d+)", VIZ_JS.read_text())
    stated = re.search(r"`@viz-js/viz` version: (\d+\.\d+\.\d+)", (vendor / "README.md").read_text())
    assert header and stated and header[1] == stated[1]
    assert f"npm pack @viz-js/viz@{stated[1]}" in (vendor / "README.md").read_text()
    assert "Permission is hereby granted" in (vendor / "LICENSE-viz-js.txt").read_text()
    package = ROOT / "archdsl"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["archdsl"]
    for path in (VIZ_JS, PAGE_JS, vendor / "LICENSE-viz-js.txt", vendor / "README.md"):
        rel = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
