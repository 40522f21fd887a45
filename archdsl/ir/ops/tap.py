"""Feature taps: `tap("stage1")` names the value flowing past it as a feature map.

A tap computes nothing and makes no node: the elaborator records the tapped node in
`Graph.taps` (name -> `Tap`, in the spec's order) and passes the value on. Backbone users
(`archdsl.build(..., features_only=True)`, `archdsl.features`) read the taps; the
classification graph is unchanged by them. The op is registered so the language knows the
name, validates the argument and documents it like any other op.
"""
from __future__ import annotations

from pydantic import constr

from .base import Attrs, Op


class TapAttrs(Attrs):
    # an identifier: it becomes a key of `out_features` and a name in feature_info
    name: constr(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)


class Tap(Op):
    name = "tap"
    attrs = TapAttrs
    doc = 'tap("name"): names the value here as a feature map (an output of features_only); computes nothing'
