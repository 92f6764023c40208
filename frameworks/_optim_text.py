"""The text and JSON forms of :mod:`frameworks.optim`'s specs: ``parse``, ``describe``, ``to_dict``, ``from_dict``.

Imported back into :mod:`frameworks.optim`, whose API they are.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from typing import Any

from frameworks._errors import KitError, unknown
from frameworks.optim import _ALL, SCHEDULES


def to_dict(spec: Any) -> dict[str, Any]:
    """A spec as JSON-ready data, its class under "name" (nested schedules too)."""
    out: dict[str, Any] = {"name": type(spec).__name__}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        out[field.name] = [to_dict(v) for v in value] if field.name == "schedulers" else value
    return out


def from_dict(data: Mapping[str, Any], kinds: Mapping[str, type] = _ALL) -> Any:
    """The inverse of :func:`to_dict` (a checkpoint's or a JSON file's spec)."""
    if not isinstance(data, Mapping) or data.get("name") not in kinds:
        raise KitError(f"not a spec of {sorted(kinds)}: {data!r}.")
    fields = {k: v for k, v in data.items() if k != "name"}
    if "schedulers" in fields:
        fields["schedulers"] = tuple(from_dict(v, SCHEDULES) for v in fields["schedulers"])
    for key in ("betas", "milestones"):
        if isinstance(fields.get(key), list):
            fields[key] = tuple(fields[key])
    return _build(kinds[data["name"]], (), fields)


def parse(text: str, kinds: Mapping[str, type] = _ALL) -> Any:
    """A spec from its Python form, e.g. ``"Adam(betas=(0.9, 0.99), weight_decay=1e-4)"`` or ``"SGD"``, or
    ``"SequentialLR([LinearLR(0.1, total_iters=5), CosineAnnealingLR(95)], milestones=[5])"``; literals only."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise KitError(f"cannot read {text!r}: write it as in Python, e.g. Adam(weight_decay=1e-4).") from None
    return _from_node(node, kinds, text)


def _from_node(node: ast.expr, kinds: Mapping[str, type], text: str) -> Any:
    if isinstance(node, ast.Name):
        node = ast.Call(func=node, args=[], keywords=[])
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise KitError(f"cannot read {text!r}: expected a call like Adam(weight_decay=1e-4).")
    if node.func.id not in kinds:
        raise unknown("spec", node.func.id, tuple(kinds))

    def value(arg: ast.expr) -> Any:
        if isinstance(arg, (ast.List, ast.Tuple)) and any(isinstance(e, (ast.Call, ast.Name)) for e in arg.elts):
            return tuple(_from_node(e, SCHEDULES, text) for e in arg.elts)
        try:
            literal = ast.literal_eval(arg)
        except ValueError:
            raise KitError(f"cannot read {text!r}: arguments must be numbers, strings, booleans or lists of "
                           "them.") from None
        return tuple(literal) if isinstance(literal, list) else literal

    args = tuple(value(a) for a in node.args)
    keywords = {k.arg: value(k.value) for k in node.keywords if k.arg is not None}
    return _build(kinds[node.func.id], args, keywords)


def _build(cls: type, args: tuple[Any, ...], keywords: dict[str, Any]) -> Any:
    try:
        return cls(*args, **keywords)
    except TypeError as err:
        names = ", ".join(f.name for f in dataclasses.fields(cls))
        raise KitError(f"{cls.__name__}: {err} (its arguments: {names}).") from None


def describe(spec: Any) -> str:
    """A spec in its Python form, fields at their default left out: ``Adam(weight_decay=0.0001)``."""
    if spec is None:
        return "None"
    parts = []
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.default is not dataclasses.MISSING and value == field.default:
            continue
        shown = "[" + ", ".join(describe(v) for v in value) + "]" if field.name == "schedulers" else repr(value)
        parts.append(f"{field.name}={shown}")
    return f"{type(spec).__name__}({', '.join(parts)})"
