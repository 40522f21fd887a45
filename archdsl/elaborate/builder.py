"""Elaboration: running a model's spec into the graph IR, shapes inferred as nodes are made.

Blocks, sections, loops and combinators unroll into op nodes. Every node gets a stable
hierarchical scope name (see docs/language.md, "Names") and the span of the spec text
that made it; a shape error is raised at that span with the chain of block uses that
led there.
"""
from __future__ import annotations

import keyword
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..errors import (ArchDSLError, ArchLimitError, ArchNameError, ArchShapeError, ArchTypeError, Diagnostic,
                      Span, did_you_mean)
from ..frontend import ast
from ..frontend.loader import Program
from ..ir.graph import Graph
from ..ir.ops import INTERNAL_OPS, OPS
from ..ir.shape import Shape
from ..limits import Limits
from .arguments import bind_params, block_call, build_attrs, loop_item
from .templates import Templates
from .combinators import Combinators
from .expressions import BUILTINS, MAX_INT, MAX_LIST, Env, bindings, evaluate
from .environment import WORK_PER_ITEM, WORK_PER_NODE, Evaluation
from .values import BlockRef, FamilyRef, OpRef, ScaleRule, ShapeView, describe


# Attributes of the emitted modules: every public name of torch.nn.Module (torch 2.13), and
# those archdsl's own modules add. A layer named like one would shadow it (`as
# register_forward_hook` checked fine, then failed in build). The front end cannot import
# torch, so the list is a literal; tests/test_hostile.py checks it covers dir(nn.Module) and
# archdsl's module classes. Names starting with '_' are refused separately.
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
    # archdsl's root module and generated classes, and the timm-style methods of a classifier
    "archdsl_info", "archdsl_graph", "archdsl_passes", "archdsl_source", "reset_classifier", "get_classifier",
    "forward_features", "forward_head", "feature_info",
    # added to nn.Module by transformers when it is imported in the same process
    "smart_apply",
})



def _check_python_value(what: str, value: Any, span: Span) -> None:
    """A value passed from Python must be one a spec could write: a finite number below
    MAX_INT, a bool, a string, or a list of those (a NaN or 1e308 would overflow later)."""
    if isinstance(value, (bool, str)):
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_INT:
            raise ArchLimitError(f"{what} is {_clip(repr(value))}: numbers stay finite and below 10^15", span,
                                 "pass a number a spec could write")
        return
    if isinstance(value, (list, tuple)) and len(value) <= MAX_LIST:
        for item in value:
            _check_python_value(what, item, span)
        return
    if not isinstance(value, (BlockRef, OpRef, FamilyRef, ScaleRule)):
        raise ArchTypeError(f"{what} is a Python {type(value).__name__}, not a spec value", span,
                            "pass a number, a string, a bool or a list of them")


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


@dataclass
class Expectation:
    stmt: ast.ExpectStmt
    value: Any


class Elaborator(Combinators, Templates):
    def __init__(self, program: Program, limits: Limits = Limits()):
        self.program = program
        self.limits = limits
        self.graph = Graph()
        self.expects: list[Expectation] = []
        self.warnings: list[Diagnostic] = []
        self._use_sites: list[Span] = []  # spans of the block calls being elaborated, outermost first
        self._used: dict[str, set[str]] = defaultdict(set)
        self._counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._block_stack: list[str] = []
        self._backbone_inputs: list[int | None] = []  # the value flowing into each family used as a backbone
        self._items: dict[str, int] = defaultdict(int)  # next index of each numbered container
        self._constants: dict[str, Any] = {}
        self._evaluating: list[str] = []  # constants being evaluated, to catch cycles
        self._iterations_done = 0
        # this elaboration's evaluation state (constants being resolved, the work budget): the
        # root environments take it from `_global`'s object (see environment.Env)
        self.evaluation = Evaluation(limits.max_work)
        self._params = 0
        self._templates: dict = {}  # block call key -> Template or None (templates.py)

    # ------------------------------------------------------------------ entry
    def elaborate(self, model: str | None = None, overrides: dict[str, Any] | None = None) -> Graph:
        decl = self._pick_model(model)
        self.graph.name = decl.name
        self.graph.scopes[""] = "model"
        overrides = dict(overrides or {})
        env = Env(fallback=self._global)
        if decl.family is None:
            if overrides:
                raise ArchNameError(f"model '{decl.name}' has no parameters to set "
                                    f"({', '.join(sorted(overrides))})", decl.span,
                                    "parameters belong to families: `model m = family(...)`")
            body = decl.body
        else:
            family = self.program.families.get(decl.family)
            if family is None:
                raise ArchNameError(f"unknown family '{decl.family}'", decl.family_span,
                                    did_you_mean(decl.family, self.program.families))
            pos = [evaluate(a, env, self._known) for a in decl.args.positional]
            kw = {k.name: (evaluate(k.value, env, self._known), k.span) for k in decl.args.keyword}
            for name, value in overrides.items():
                if isinstance(value, ast.EXPR_TYPES):  # from the command line: `--set depths=[2, 2]`
                    value = evaluate(value, env, self._known)
                else:  # from Python: held to the language's own values (no NaN, no 10**400)
                    _check_python_value(f"parameter '{name}'", value, decl.span)
                if name not in {p.name for p in family.params}:
                    raise ArchNameError(f"family '{family.name}' has no parameter '{name}'", decl.span,
                                        did_you_mean(name, [p.name for p in family.params]) or
                                        "parameters: " + ", ".join(p.name for p in family.params))
                kw[name] = (value, decl.span)
            env = bind_params(family.params, pos, kw, Env(fallback=self._global), f"family '{family.name}'",
                              decl.span, self._known)
            body = family.body
        x = self._body(body, env, "", None, collapse=False)
        # an instance's expectations pin that variant; rebinding parameters makes another one
        if decl.expects is not None and not overrides:
            self._body(decl.expects, env, "", x, collapse=False)
        self.graph.family = decl.family
        if self.graph.input is None:
            raise ArchShapeError(f"model '{decl.name}' declares no input", decl.span,
                                 "start the model with `input [channels, height, width]`")
        self.graph.output = x
        return self.graph

    def _pick_model(self, model: str | None) -> ast.ModelDecl:
        models = self.program.models
        if model is not None:
            if model not in models:
                raise ArchNameError(f"no model named '{model}' in {self.program.root}", None,
                                    did_you_mean(model, models) or
                                    ("models: " + ", ".join(models) if models else None))
            return models[model]
        candidates = self.program.root_models or list(models)
        if not candidates:
            from ..errors import Span as _Span
            raise ArchNameError(f"{self.program.root} declares no model", _Span(self.program.root, 1, 1),
                                "add `model NAME = family(...)` or `model NAME { ... }`")
        if len(candidates) > 1:
            decl = models[candidates[1]]
            raise ArchNameError(f"{self.program.root} declares several models ({', '.join(candidates)})",
                                decl.span, "choose one with --model NAME")
        return models[candidates[0]]

    # -------------------------------------------------------------- names
    def _global(self, name: str):
        if name in self.program.constants:
            if name not in self._constants:
                decl = self.program.constants[name]
                if name in self._evaluating:
                    chain = " -> ".join(self._evaluating[self._evaluating.index(name):] + [name])
                    raise ArchNameError(f"constant '{name}' is defined in terms of itself ({chain})", decl.span)
                self._evaluating.append(name)
                try:
                    self._constants[name] = evaluate(decl.value, Env(fallback=self._global), self._known)
                finally:
                    self._evaluating.pop()
            return self._constants[name]
        if name in self.program.blocks:
            return BlockRef(self.program.blocks[name])
        if name in self.program.families:
            return FamilyRef(self.program.families[name])
        if name in OPS and name not in INTERNAL_OPS:
            return OpRef(name)
        return BUILTINS.get(name)

    def _known(self) -> set[str]:
        return (set(self.program.constants) | set(self.program.blocks) | set(OPS.names()) | set(BUILTINS)) \
            - INTERNAL_OPS

    def _fresh(self, scope: str, base: str, numbered: bool) -> str:
        used = self._used[scope]
        if numbered:
            sep = "_" if base[-1].isdigit() else ""
            while True:
                self._counters[scope][base] += 1
                name = f"{base}{sep}{self._counters[scope][base]}"
                if name not in used:
                    break
        else:
            name, k = base, 1
            while name in used:
                k += 1
                name = f"{base}_{k}"
        used.add(name)
        return name

    def _alias(self, scope: str, alias: str, span: Span) -> str:
        if alias in MODULE_ATTRIBUTES or alias.startswith("_"):
            raise ArchNameError(f"'{alias}' cannot name a layer: the emitted torch module uses that name", span,
                                f"choose another name, e.g. '{alias.strip('_')}_'")
        if keyword.iskeyword(alias):
            raise ArchNameError(f"'{alias}' cannot name a layer: it is a Python keyword", span,
                                f"choose another name, e.g. '{alias}_'")
        if alias in self._used[scope]:
            raise ArchNameError(f"the name '{alias}' is already used in this scope", span,
                                "give each element of a scope its own name")
        self._used[scope].add(alias)
        return alias

    def _container(self, scope: str, name: str, kind: str, span: Span) -> str:
        """A numbered container (`blocks`, `stages`). Reusing the name of one in the same scope
        continues its numbering, like appending to an nn.Sequential: flat layouts such as
        MobileNet's `blocks.0 .. blocks.16` come from several repetitions."""
        path = self._join(scope, name)
        if self.graph.scopes.get(path) in ("repeat", "loop"):
            return path
        self._alias(scope, name, span)
        self.graph.scopes[path] = kind
        return path

    @staticmethod
    def _join(scope: str, name: str) -> str:
        return f"{scope}.{name}" if scope else name

    # -------------------------------------------------------------- nodes
    def _node(self, op_name: str, attrs, inputs: list[int], scope: str, name: str, span: Span) -> int:
        op = OPS[op_name]
        ins = [self.graph.node(i).shape for i in inputs]
        try:
            attrs = op.resolve(attrs, ins)
            shape = op.infer(attrs, ins)
        except ArchDSLError as e:
            raise e.at(span)
        self.limits.check_activation(shape, span)  # in bytes, before any tensor exists
        for message, hint in op.lint(attrs, ins):
            self.warnings.append(Diagnostic(message, span, hint, list(self._use_sites)))
        if len(self.graph) >= self.limits.max_nodes:
            raise ArchLimitError(f"the model has more than {self.limits.max_nodes:,} ops", span,
                                 "check repetition counts; the limit is archdsl.elaborate.Limits.max_nodes")
        for dims in op.params(attrs, ins).values():
            n = 1
            for d in dims:
                n *= d
            self._params += n
        self.limits.check_params(self._params, span)
        self.evaluation.credit += WORK_PER_NODE  # work that builds the model is paid for (see Evaluation)
        return self.graph.add(op_name, attrs, inputs, self._join(scope, name), span, shape)

    def _shape(self, x: int) -> Shape:
        return self.graph.node(x).shape

    # -------------------------------------------------------------- statements
    def _body(self, body: ast.Body, env: Env, scope: str, x: int | None, collapse: bool) -> int | None:
        single = self._single_block_call(body, env) if collapse else None
        for stmt in body.stmts:
            x = self._stmt(stmt, env, scope, x, in_place=stmt is single)
        return x

    def _single_block_call(self, body: ast.Body, env: Env):
        """A scope whose body is one (non-repeated) block call takes the block's contents
        directly: `stages.0.blocks.1.conv1`, not `stages.0.blocks.1.bottleneck1.conv1`."""
        chains = [s for s in body.stmts if not isinstance(s, (ast.Assign, ast.ScaleStmt, ast.ExpectStmt))
                  and not self._only_taps(s, env)  # a tap makes no module: it never breaks a collapse
                  and not self._only_aux(s)]  # nor does an auxiliary head (its modules are the root's)
        if len(chains) != 1 or not isinstance(chains[0], ast.ChainStmt):
            return None
        stmt = chains[0]
        elements = list(stmt.elements)
        while len(elements) > 1 and self._is_tap(elements[-1], env):
            elements.pop()
        if stmt.repeat is not None or len(elements) != 1 or not isinstance(elements[0], ast.CallEl):
            return None
        el = elements[0]
        if el.alias is not None:
            return None
        return stmt if isinstance(self._callee(el.name, env), BlockRef) else None

    def _is_tap(self, el, env: Env) -> bool:
        return isinstance(el, ast.CallEl) and el.name == "tap" and self._callee(el.name, env) == OpRef("tap")

    def _only_taps(self, stmt, env: Env) -> bool:
        return (isinstance(stmt, ast.ChainStmt) and stmt.repeat is None
                and all(self._is_tap(el, env) for el in stmt.elements))

    @staticmethod
    def _only_aux(stmt) -> bool:
        return isinstance(stmt, ast.ChainStmt) and all(isinstance(el, ast.Aux) for el in stmt.elements)

    def _stmt(self, stmt, env: Env, scope: str, x: int | None, in_place: bool = False) -> int | None:
        if isinstance(stmt, ast.Assign):
            env.assign(stmt.name, evaluate(stmt.value, env, self._known))
            return x
        if isinstance(stmt, ast.ChainStmt):
            return self._chain(stmt, env, scope, x, in_place)
        if isinstance(stmt, ast.InputStmt):
            return self._input(stmt, env, scope, x)
        if isinstance(stmt, ast.ScaleStmt):
            for rule in stmt.rules:
                env.assign(rule.name, self._scale_rule(rule, env))
            return x
        if isinstance(stmt, ast.ExpectStmt):
            self.expects.append(Expectation(stmt, evaluate(stmt.value, env, self._known)))
            return x
        if isinstance(stmt, ast.ForStmt):
            for bound in self._iterations(stmt.names, stmt.iterable, env):
                # the body's assignments are the enclosing body's (Python's rule): only the
                # loop variables belong to the iteration
                x = self._body(stmt.body, env.child(bound, transparent=True), scope, x, collapse=False)
            return x
        if isinstance(stmt, ast.IfStmt):
            if self._truth(stmt.test, env):
                return self._body(stmt.then, env, scope, x, collapse=False)
            if stmt.otherwise is not None:
                return self._body(stmt.otherwise, env, scope, x, collapse=False)
            return x
        raise TypeError(f"unknown statement {type(stmt).__name__}")

    def _truth(self, e: ast.Expr, env: Env) -> bool:
        v = evaluate(e, env, self._known)
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)):
            return v != 0
        raise ArchTypeError(f"expected a condition, got {describe(v)}", e.span)

    def _input(self, stmt: ast.InputStmt, env: Env, scope: str, x: int | None) -> int:
        incoming = self._backbone_inputs[-1] if self._backbone_inputs else None
        if incoming is not None and x == incoming:  # a backbone's input: the value flowing into it
            dims = evaluate(stmt.shape, env, self._known)
            if dims != list(self._shape(x).dims):
                raise ArchShapeError(f"this backbone takes {dims} but receives {self._shape(x).describe()}",
                                     stmt.span, "pass the backbone the incoming size, e.g. resolution = ...")
            return x
        if self._backbone_inputs and incoming is None and x is None and self.graph.input is None:
            scope = ""  # a backbone that starts the model declares the model's input
        if scope != "" or self.graph.input is not None or x is not None:
            raise ArchShapeError("`input` must come first in a model, and only once", stmt.span,
                                 "blocks take their input from the previous element")
        dims = evaluate(stmt.shape, env, self._known)
        if not isinstance(dims, list) or len(dims) not in (1, 3) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
            raise ArchTypeError(f"input must be [channels, height, width] (or [features]) of positive whole "
                                f"numbers, got {describe(dims)}", stmt.shape.span)
        shape = Shape.grid(*dims) if len(dims) == 3 else Shape.vector(dims[0])
        self.limits.check_activation(shape, stmt.shape.span, "the input")
        self._used[""].add("input")
        nid = self.graph.add("input", OPS["input"].attrs(), [], "input", stmt.span, shape)
        self.graph.input = nid
        return nid

    def _scale_rule(self, rule: ast.ScaleRule, env: Env) -> ScaleRule:
        factor = evaluate(rule.factor, env, self._known)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
            raise ArchTypeError(f"scale factor must be a positive number, got {describe(factor)}", rule.factor.span)
        if rule.kind == "width":
            divisor = evaluate(rule.divisor, env, self._known)
            if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor <= 0:
                raise ArchTypeError(f"divisible_by needs a positive whole number, got {describe(divisor)}",
                                    rule.divisor.span)
            minimum = evaluate(rule.minimum, env, self._known) if rule.minimum is not None else None
            if minimum is not None and (isinstance(minimum, bool) or not isinstance(minimum, int) or minimum <= 0):
                raise ArchTypeError(f"min needs a positive whole number, got {describe(minimum)}", rule.minimum.span)
            return ScaleRule(rule.name, "width", float(factor), divisor, minimum)
        if rule.rounding not in ("ceil", "floor", "round"):
            raise ArchNameError(f"unknown rounding '{rule.rounding}'", rule.span, "use ceil, floor or round")
        return ScaleRule(rule.name, "depth", float(factor), rounding=rule.rounding)

    def _iterations(self, names: tuple[str, ...], iterable: ast.Expr, env: Env):
        """The variables of each iteration of a loop (see `bindings`), counted against the limits."""
        for bound in bindings(names, evaluate(iterable, env, self._known), iterable):
            self.evaluation.spend(WORK_PER_ITEM, iterable.span)
            self._iterations_done += 1
            if self._iterations_done > self.limits.max_iterations:
                raise ArchLimitError(f"loops run more than {self.limits.max_iterations:,} iterations in all",
                                     iterable.span, "check loop bounds; nested loops multiply")
            yield bound

    # -------------------------------------------------------------- chains
    def _chain(self, stmt: ast.ChainStmt, env: Env, scope: str, x: int | None, in_place: bool) -> int | None:
        if stmt.when is not None and not self._truth(stmt.when, env):
            return x
        if x is None and not (stmt.repeat is None and self._calls_family(stmt.elements[0], env)):
            raise ArchShapeError("nothing flows into this yet", stmt.span,
                                 "declare the model's `input [channels, height, width]` first")
        if stmt.repeat is None:
            for el in stmt.elements:
                x = self._element(el, env, scope, x, in_place=in_place)
            return x
        return self._repeat(stmt, env, scope, x)

    def _repeat(self, stmt: ast.ChainStmt, env: Env, scope: str, x: int) -> int:
        rep = stmt.repeat
        count = evaluate(rep.count, env, self._known)
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ArchTypeError(f"repeat count must be a whole number >= 0, got {describe(count)}", rep.count.span)
        if count > self.limits.max_repeat:
            raise ArchLimitError(f"repeat count {count:,} is over the limit of {self.limits.max_repeat:,}",
                                 rep.count.span)
        single = len(stmt.elements) == 1 and isinstance(stmt.elements[0], ast.CallEl)
        if not single:
            for el in stmt.elements:
                if isinstance(el, ast.CallEl) and el.alias is not None:
                    raise ArchTypeError(f"'as {el.alias}' in a repeated chain: each repeat numbers its elements",
                                        el.span, "repeat a block instead, and name the repeats: "
                                        "`b(...) as layers x n`")
        if rep.first is not None and not single:
            raise ArchTypeError("first(...) applies to a single repeated call", rep.span,
                                "repeat one block: `block(...) x n first(stride = 2)`")
        alias = stmt.elements[0].alias if single else None
        container = self._container(scope, alias or "blocks", "repeat", stmt.span)
        start = self._items[container]
        self._items[container] += count
        for r in range(count):
            self.evaluation.spend(WORK_PER_ITEM, rep.span)
            sub = f"{container}.{start + r}"
            self.graph.scopes[sub] = "repeat item"
            sub_env = env.child({rep.index: r} if rep.index else None, in_shape=ShapeView(self._shape(x)))
            for i, el in enumerate(stmt.elements):
                extra = rep.first if (r == 0 and i == 0) else None
                x = self._element(el, sub_env, sub, x, in_place=single, extra=extra, use_alias=False)
        return x

    def _element(self, el, env: Env, scope: str, x: int, in_place: bool = False,
                 extra: ast.Args | None = None, use_alias: bool = True) -> int:
        if isinstance(el, ast.CallEl):
            return self._call(el, env, scope, x, in_place, extra, use_alias)
        if isinstance(el, ast.Section):
            sub = self._join(scope, self._alias(scope, el.name, el.span))
            self.graph.scopes[sub] = "section"
            return self._body(el.body, env.child(in_shape=ShapeView(self._shape(x))), sub, x, collapse=True)
        if isinstance(el, ast.NamedLoop):
            container = self._container(scope, el.name, "loop", el.span)
            for bound in self._iterations(el.names, el.iterable, env):
                sub = f"{container}.{self._items[container]}"
                self._items[container] += 1
                self.graph.scopes[sub] = "loop item"
                self.graph.loop_items[sub] = loop_item(el, bound)  # for `archdsl eject` (ir/calls.py)
                x = self._body(el.body, env.child(bound, in_shape=ShapeView(self._shape(x))), sub, x, collapse=True)
            return x
        if isinstance(el, ast.Residual):
            return self._residual(el, env, scope, x)
        if isinstance(el, ast.Merge):
            return self._merge(el, env, scope, x)
        if isinstance(el, ast.Aux):
            return self._aux(el, env, x)
        if isinstance(el, ast.Gate):
            g = self._body(el.body, env.child(in_shape=ShapeView(self._shape(x))), scope, x, collapse=False)
            return self._node("mul", OPS["mul"].attrs(), [x, g], scope, self._fresh(scope, "mul", True), el.span)
        raise TypeError(f"unknown element {type(el).__name__}")

    def _calls_family(self, el, env: Env) -> bool:
        return isinstance(el, ast.CallEl) and isinstance(self._callee(el.name, env, None), FamilyRef)

    def _callee(self, name: str, env: Env, x: int | None = -1):
        """A chain element's target: a parameter bound to a block or op (`act = relu6`), else a
        global block or op. Other locals do not hide globals, so `drop_path(drop_path)` works."""
        found, value = env.lookup_local(name)
        if found and isinstance(value, (BlockRef, OpRef)):
            return value
        target = self._global(name)
        if target is None and found:
            return value
        if x is None and isinstance(target, BlockRef) and name in self.program.families:
            return FamilyRef(self.program.families[name])  # nothing flows in: the backbone `mobilevit`
        return target

    def _call(self, el: ast.CallEl, env: Env, scope: str, x: int, in_place: bool,
              extra: ast.Args | None, use_alias: bool) -> int:
        target = self._callee(el.name, env, x)
        if target is None:
            known = [b for b in self.program.blocks] + [o for o in OPS.names() if o not in INTERNAL_OPS]
            hint = did_you_mean(el.name, known + list(env.names()))
            if el.name == "with":  # `x n first(...) with j`: the index comes first
                hint = "`with NAME` names the repeat index right after the count: `b(...) x n with j first(...)`"
            raise ArchNameError(f"unknown block or op '{el.name}'", el.name_span, hint)
        pos = [evaluate(a, env, self._known) for a in el.args.positional]
        kw = {k.name: (evaluate(k.value, env, self._known), k.span) for k in el.args.keyword}
        if isinstance(target, (BlockRef, OpRef)):  # a configured block or op: its arguments come first
            pos, kw = target.bound.then(pos, kw)
        if extra is not None:
            if extra.positional:
                raise ArchTypeError("first(...) takes keyword arguments only", extra.positional[0].span)
            kw.update({k.name: (evaluate(k.value, env, self._known), k.span) for k in extra.keyword})
        alias = el.alias if use_alias else None
        if isinstance(target, OpRef):
            op = OPS[target.name]
            if op.min_inputs > 1:
                raise ArchTypeError(f"'{target.name}' joins branches", el.name_span,
                                    f"use `merge {target.name} {{ {{...}} {{...}} }}`")
            norm = kw.pop("norm", None) if target.name == "tap" else None
            attrs = build_attrs(op, pos, kw, el.span)
            if target.name == "tap":  # names the value; makes no node (see ir/ops/tap.py)
                return self._tap(attrs.name, scope, x, el.span, norm)
            name = self._alias(scope, alias, el.span) if alias else self._fresh(scope, target.name, True)
            return self._node(target.name, attrs, [x], scope, name, el.span)
        if isinstance(target, BlockRef):
            return self._block(target.decl, pos, kw, el, scope, x, in_place, alias)
        if isinstance(target, FamilyRef):
            return self._backbone(target.decl, pos, kw, el, scope, x, alias)
        raise ArchTypeError(f"'{el.name}' is {describe(target)}, not a block or op", el.name_span,
                            "only blocks and ops can be chained")

    def _block(self, decl: ast.BlockDecl, pos: list, kw: dict, el: ast.CallEl, scope: str, x: int,
               in_place: bool, alias: str | None) -> int:
        self.evaluation.spend(WORK_PER_ITEM, el.span)
        if decl.name in self._block_stack:
            chain = " -> ".join(self._block_stack[self._block_stack.index(decl.name):] + [decl.name])
            raise ArchLimitError(f"block '{decl.name}' uses itself ({chain})", el.span,
                                 "a block cannot contain itself; repeat it with `x n` instead")
        if len(self._block_stack) >= self.limits.max_block_depth:
            raise ArchLimitError(f"blocks nest more than {self.limits.max_block_depth} deep", el.span)
        if in_place:
            sub = scope
        else:
            name = self._alias(scope, alias, el.span) if alias else self._fresh(scope, decl.name, True)
            sub = self._join(scope, name)
        self.graph.scopes[sub] = f"block {decl.name}"
        self._block_stack.append(decl.name)
        self._use_sites.append(el.span)
        try:
            env = bind_params(decl.params, pos, kw, Env(fallback=self._global, in_shape=ShapeView(self._shape(x))),
                              f"block '{decl.name}'", el.span, self._known)
            self.graph.calls[sub] = block_call(decl, env, el.span)  # for `archdsl eject` (ir/calls.py)
            return self._instance(decl, env, sub, x)  # templates.py: a repeated call is copied
        except ArchDSLError as e:
            raise e.called_from(el.span)
        finally:
            self._block_stack.pop()
            self._use_sites.pop()
