"""Optimizer hyperparameters as data: a config's optimizer, schedule and clipping split into a static structure
and their numbers, so that a sweep's runs that differ only in those numbers share one JAX program.

A spec's values are of two kinds. Its *structure* decides what the program computes: the booleans
(``nesterov``, ``amsgrad``, ``centered``...), the strings, the counts (``step_size``, ``milestones``,
``T_max``, ``total_iters``, ``total_steps``), a spec against None, and whether a number is zero
(``SGD(momentum=0)`` keeps no buffer, a zero ``weight_decay`` adds nothing). These stay Python values: runs
that differ in them are other programs. Every other number, when nonzero, is *data*: :func:`split` puts a
slot in its place in the static key and returns the numbers apart, in a fixed order; :func:`fill` rebuilds
the specs with a (traced) value in each slot. Within a group, only the numbers that differ between its runs
are traced (:func:`varying`); the others stay the constants a single ``train`` compiles, bit for bit.

The code that builds an update asks :func:`nonzero` where it would ask ``bool``: a traced value cannot
answer, and it is nonzero by construction.

    SGD(momentum=0.5), SGD(momentum=0.9)  ->  one key SGD(momentum=<slot>), values (0.5,) and (0.9,)
    SGD(), SGD(momentum=0.9)              ->  two keys: zero momentum is another program
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from frameworks._config import TrainConfig

#: The config fields that hold specs (optimizer, schedule, clipping).
SPECS = ("optimizer", "schedule", "clip")
#: Spec fields that are counts: structure (the program's shape), never data.
COUNTS = frozenset({"step_size", "milestones", "T_max", "total_iters", "total_steps"})


class _Slot:
    """The place of a data value in a static key (one object: keys compare and hash by it)."""

    def __repr__(self) -> str:
        return "<slot>"


SLOT = _Slot()


def nonzero(value: Any) -> bool:
    """Whether a hyperparameter is on: a Python number's truth; any other value is a sweep's traced one, which
    :func:`split` makes data only when it is nonzero."""
    return bool(value) if isinstance(value, (int, float)) else True


def split(config: TrainConfig, data: Sequence[bool] | None = None) -> tuple[TrainConfig, tuple[float, ...]]:
    """``config`` with each nonzero number of its specs replaced by :data:`SLOT` (hashable: runs of one key share a
    program), and all those numbers, in order. ``data``: which of them become slots (default: all); the others
    stay Python numbers in the key. Without a slot, ``config`` itself."""
    values: list[float] = []

    def take(value: float) -> Any:
        values.append(float(value))
        return SLOT if data is None or data[len(values) - 1] else value

    specs = {name: _map(getattr(config, name), take, _plain) for name in SPECS}
    if all(specs[name] is getattr(config, name) for name in SPECS):
        return config, tuple(values)
    return _with(config, specs), tuple(values)


def varying(configs: Sequence[TrainConfig]) -> tuple[tuple[bool, ...], list[tuple[float, ...]]]:
    """For runs of one static key: which of their numbers differ between them (only those need be data: a
    number the runs share stays a Python constant, the program a single ``train`` compiles), and each run's
    numbers at those places."""
    rows = [split(c)[1] for c in configs]
    data = tuple(len({row[k] for row in rows}) > 1 for k in range(len(rows[0])))
    return data, [tuple(v for v, d in zip(row, data) if d) for row in rows]


def fill(key: TrainConfig, values: Sequence[Any]) -> TrainConfig:
    """A copy of the static ``key`` with ``values`` (e.g. a run's traced numbers) in its slots, in
    :func:`split`'s order. A spec with a traced value is of a subclass that compares by identity (a traced value
    cannot be compared), so ``spec == SGD()`` is False, as it is for the nonzero value it holds."""
    found: Iterator[Any] = iter(values)
    specs = {name: _map(getattr(key, name), lambda v: next(found) if v is SLOT else v, _traced) for name in SPECS}
    if next(found, SLOT) is not SLOT:
        raise ValueError("more values than slots")
    return _with(key, specs)


def _data(name: str, value: Any) -> bool:
    return name not in COUNTS and (value is SLOT or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                     and value != 0))


def _map(value: Any, leaf: Callable[[Any], Any], build: Callable[[type, dict[str, Any]], Any], name: str = "") -> Any:
    """``value`` with ``leaf`` applied to each data number, specs rebuilt by ``build`` where one changed."""
    if is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _map(getattr(value, f.name), leaf, build, f.name) for f in fields(value)}
        if all(changes[k] is getattr(value, k) for k in changes):
            return value
        return build(type(value), changes)
    if isinstance(value, tuple):
        items = tuple(_map(v, leaf, build, name) for v in value)
        return value if all(a is b for a, b in zip(items, value)) else items
    return leaf(value) if _data(name, value) else value


def _plain(cls: type, changes: dict[str, Any]) -> Any:
    """A spec of ``cls`` with these fields, not validated (a slot is no number)."""
    spec: Any = object.__new__(cls)
    for k, v in changes.items():
        object.__setattr__(spec, k, v)
    return spec


def _traced(cls: type, changes: dict[str, Any]) -> Any:
    return _plain(_identity_class(cls), changes)


@functools.cache
def _identity_class(cls: type) -> type:
    """``cls`` with equality and hash by identity: the spec's values may be traced."""
    return type(f"Traced{cls.__name__}", (cls,), {"__eq__": object.__eq__, "__hash__": object.__hash__,
                                                   "__module__": __name__, "__doc__": cls.__doc__})


def _with(config: TrainConfig, specs: dict[str, Any]) -> TrainConfig:
    out = copy.copy(config)
    for name, spec in specs.items():
        object.__setattr__(out, name, spec)
    return out
