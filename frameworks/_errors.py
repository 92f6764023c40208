"""The one error type of the kit."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KitError(ValueError):
    """Bad input or a failed check: the message says what was wrong and what is expected.

    The CLI prints the message and exits with status 2, never a traceback.
    """


#: Names people write for the kit's choices (a device "cuda:0" is the kit's "gpu").
ALIASES = {"cuda": "gpu", "rocm": "gpu", "nvidia": "gpu", "double": "float64", "float": "float32"}


def unknown(kind: str, name: object, choices: Iterable[str]) -> KitError:
    """A :class:`KitError` for an unknown name that suggests the nearest valid ones."""
    choices = list(choices)
    alias = ALIASES.get(str(name).lower().split(":")[0])
    near = [alias] if alias in choices else difflib.get_close_matches(str(name), choices, n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    return KitError(f"unknown {kind} {name!r}; expected one of {', '.join(map(repr, choices))}.{hint}")
