"""The elaborator's combinators and side outputs: residuals, merges and concats; feature taps,
auxiliary heads and families used as backbones. A mixin of `Elaborator` (builder.py), which
holds the state these methods read (the graph, scopes, names, the block stack)."""
from __future__ import annotations

from ..errors import ArchDSLError, ArchLimitError, ArchNameError, ArchShapeError, ArchTypeError, Span, did_you_mean
from ..frontend import ast
from ..ir.graph import Tap
from ..ir.ops import INTERNAL_OPS, MERGE_OPS, OPS
from .arguments import bind_params, build_attrs
from .expressions import Env, evaluate
from .values import OpRef, ShapeView, describe

# Joins that are the identity on one input: a merge of these left with one branch by its
# branches' `when` conditions is that branch.
JOINS_OF_ONE = frozenset({"add", "mean", "mul", "concat"})


class Combinators:
    def _backbone(self, decl: ast.FamilyDecl, pos: list, kw: dict, el: ast.CallEl, scope: str, x: int | None,
                  alias: str | None) -> int:
        """A family called as a chain element is a backbone: its body runs in place (its modules
        keep the family's names, `stem`, `stages.0`, so its weight mapping applies; under
        `as name` they go under that scope), its `input` takes the incoming value (or is the
        model's input), and the element's value is its last feature tap. What the family computes
        after that tap stays in the model, feeding nothing, as HF's backbones compute it."""
        if f"family {decl.name}" in self._block_stack:
            raise ArchLimitError(f"family '{decl.name}' uses itself", el.span)
        sub = self._join(scope, self._alias(scope, alias, el.span)) if alias else scope
        self._block_stack.append(f"family {decl.name}")
        self._use_sites.append(el.span)
        self._backbone_inputs.append(x)
        before = set(self.graph.taps)
        try:
            env = bind_params(decl.params, pos, kw, Env(fallback=self._global), f"family '{decl.name}'",
                              el.span, self._known)
            self._body(decl.body, env, sub, x, collapse=False)
        except ArchDSLError as e:
            raise e.called_from(el.span)
        finally:
            self._block_stack.pop()
            self._use_sites.pop()
            self._backbone_inputs.pop()
        taps = [t for name, t in self.graph.taps.items() if name not in before]
        if not taps:
            raise ArchShapeError(f"family '{decl.name}' declares no feature taps, so it cannot serve as a backbone",
                                 el.span, 'mark its output in the family: `tap("stage4")`')
        return taps[-1].node

    def _tap(self, name: str, scope: str, x: int, span: Span, norm: tuple | None = None) -> int:
        taps = self.graph.taps
        if name in taps:
            raise ArchNameError(f"the feature tap '{name}' is declared twice", span,
                                "give each tap its own name, e.g. tap(\"stage\" + str(i + 1)) in a loop")
        tapped = x
        if norm is not None:  # `tap("stage1", norm=layernorm(eps=1e-6))`: HF backbones' output norms,
            value, nspan = norm  # a node `<scope>.<name>_norm` on the side, read by the tap only
            if not isinstance(value, OpRef) or OPS[value.name].min_inputs != 1 or value.name == "tap":
                raise ArchTypeError(f"tap(..., norm=) takes an op such as layernorm(eps=1e-6), got {describe(value)}",
                                    nspan)
            op = OPS[value.name]
            p, k = value.bound.then([], {})
            tapped = self._node(value.name, build_attrs(op, p, k, nspan), [x], scope,
                                self._alias(scope, f"{name}_norm", nspan), nspan)
        # the module a tap reports is the scope it is written in (`stem`, `stages.0`)
        taps[name] = Tap(tapped, scope, span)
        return x

    def _aux(self, el: ast.Aux, env: Env, x: int) -> int:
        """`aux name { body }`: a training-only side output. Its modules go under the root scope
        `name` wherever it is written (an auxiliary classifier is a head of the model, as
        torchvision's `aux1`); the body reads the value flowing past, which flows on unchanged."""
        sub = self._alias("", el.name, el.span)
        self.graph.scopes[sub] = "aux"
        out = self._body(el.body, env.child(in_shape=ShapeView(self._shape(x))), sub, x, collapse=True)
        if out == x:
            raise ArchShapeError(f"the auxiliary head '{el.name}' computes nothing", el.span,
                                 "give it a body that computes its output, e.g. `aux aux1 { avgpool -> "
                                 "flatten -> linear(classes) as fc }`")
        self.graph.aux_outputs[el.name] = out
        return x

    def _residual(self, el: ast.Residual, env: Env, scope: str, x: int) -> int:
        # the branch's `in` is the residual's input; its assignments stay inside it
        out = self._body(el.body, env.child(in_shape=ShapeView(self._shape(x))), scope, x, collapse=False)
        connect = el.when is None or self._truth(el.when, env)
        if not connect:
            return out
        skip = x
        if el.shortcut is not None and (el.shortcut_when is None or self._truth(el.shortcut_when, env)):
            sub = self._join(scope, self._alias(scope, "shortcut", el.span) if "shortcut" not in self._used[scope]
                             else self._fresh(scope, "shortcut", False))
            self.graph.scopes[sub] = "shortcut"
            skip = self._body(el.shortcut, env.child(in_shape=ShapeView(self._shape(x))), sub, x, collapse=True)
        a, b = self._shape(out), self._shape(skip)
        if a != b:
            where = self._channel_origin(out, x).span if out != x else el.span
            if a.c != b.c:
                msg = f"residual branch ends with {a.c} channels but the shortcut carries {b.c}"
                hint = (f"give the shortcut a projection, or end the branch with {b.c} channels"
                        if el.shortcut is None else f"make the shortcut end with {a.c} channels")
            else:
                msg = f"residual branch ends with {a.describe()} but the shortcut carries {b.describe()}"
                hint = "a strided branch needs a strided shortcut: add `shortcut { conv(..., s=...) -> bn }`"
            raise ArchShapeError(msg, where, hint)
        return self._node("add", OPS["add"].attrs(), [out, skip], scope, self._fresh(scope, "add", True), el.span)

    def _channel_origin(self, nid: int, stop: int):
        """The node that set `nid`'s channel count: walk back over channel-keeping ops (bn, relu)."""
        node = self.graph.node(nid)
        while True:
            ins = self.graph.inputs(node.id)
            if len(ins) != 1 or ins[0] == stop or self._shape(ins[0]).c != node.shape.c:
                return node
            node = self.graph.node(ins[0])

    def _merge(self, el: ast.Merge, env: Env, scope: str, x: int) -> int:
        if el.op not in OPS or el.op in INTERNAL_OPS:
            raise ArchNameError(f"unknown merge op '{el.op}'", el.op_span, did_you_mean(el.op, MERGE_OPS)
                                or "merge ops: " + ", ".join(sorted(MERGE_OPS)))
        op = OPS[el.op]
        if el.op not in MERGE_OPS:
            raise ArchTypeError(f"'{el.op}' takes one input and cannot join branches", el.op_span,
                                "merge ops: " + ", ".join(sorted(MERGE_OPS)))
        n = len(el.branches)
        if n < op.min_inputs or (op.max_inputs is not None and n > op.max_inputs):
            want = op.min_inputs if op.max_inputs == op.min_inputs else f"{op.min_inputs} or more"
            raise ArchTypeError(f"{el.op} joins {want} branches, got {n}", el.op_span)
        pos = [evaluate(a, env, self._known) for a in el.args.positional]
        kw = {k.name: (evaluate(k.value, env, self._known), k.span) for k in el.args.keyword}
        attrs = build_attrs(op, pos, kw, el.span)
        # `label { ... } when cond`: a dropped branch is absent (no scope, name or number); `in`
        # in the condition is the merge's input, as in the branch
        at_merge = env.child(in_shape=ShapeView(self._shape(x)))
        kept = [b for b in el.branches if b.when is None or self._truth(b.when, at_merge)]
        if len(kept) < len(el.branches):
            if not kept:
                raise ArchTypeError(f"every branch of this {el.op} is dropped by its `when`", el.op_span,
                                    "keep one branch unconditional, or put `when` on the whole statement")
            if len(kept) < op.min_inputs and not (len(kept) == 1 and el.op in JOINS_OF_ONE):
                raise ArchTypeError(f"{el.op} joins {op.min_inputs} branches, but only {len(kept)} remain "
                                    "after their `when` conditions", el.op_span)
        outs = []
        for i, branch in enumerate(kept, start=1):
            label = self._alias(scope, branch.label, branch.span) if branch.label else self._fresh(scope, "branch", True)
            sub = self._join(scope, label)
            self.graph.scopes[sub] = "branch"
            outs.append(self._body(branch.body, env.child(in_shape=ShapeView(self._shape(x))), sub, x, collapse=True))
        if len(outs) == 1 and len(el.branches) > 1:
            return outs[0]  # the one branch `when` left: joining one value is that value
        return self._node(el.op, attrs, outs, scope, self._fresh(scope, el.op, True), el.span)
