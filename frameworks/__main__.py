"""``python -m frameworks COMMAND`` (or ``rdfia-mlp COMMAND``): the kit's command line.

Each command lives in its own module, imported only when it runs; a module
provides ``add_arguments(parser)`` and ``run(args) -> int``. Bad input gets one
line on stderr and exit status 2, never a traceback or a usage block: a
:class:`KitError` from the command, and every argument the parser refuses (with
the nearest valid choice suggested). A warning (a diverging run) is one
``warning: ...`` line that does not break a progress bar.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from frameworks._errors import ALIASES, KitError

COMMANDS = {
    "train": ("frameworks._cli_train", "train one implementation and write its history and curves"),
    "parity": ("frameworks.parity", "gradients of all eight implementations against each other and an oracle"),
    "compare": ("frameworks.compare", "train all eight side by side and write a report"),
    "bench": ("frameworks.bench", "time every implementation side by side"),
    "optimizers": ("frameworks.optim_traps", "each torch.optim setup's naive Optax port beside the exact one"),
    "sweep": ("frameworks._cli_sweep", "a grid of runs at once (vmapped on JAX), chosen on a validation split"),
    "launch": ("frameworks._cli_launch", "a JAX train run over several processes or hosts (jax.distributed, gloo)"),
    "export": ("frameworks._cli_export", "a checkpoint out as a torch.save model, Orbax (Flax NNX) or safetensors"),
}
DESCRIPTION = "The kit's command line: train, compare, check and time the eight implementations of the lab's MLP."
MODULE_PROG = "python -m frameworks"
class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``error: ... (see PROG --help)``, with exit status 2.

    Subparsers are of this class too (``add_subparsers`` makes them with the parent's class).
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {' '.join(message.split())} (see {self.prog} --help)\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        """argparse's choice check, with the nearest valid choice suggested."""
        if action.choices is not None and value not in action.choices:
            raise argparse.ArgumentError(action, choice_error(value, action.choices))


def choice_error(value: object, choices: Iterable[str]) -> str:
    """``invalid choice 'x'; expected one of ... Did you mean 'y'?``, the kit's suggestion for a bad choice."""
    choices = [str(c) for c in choices]
    alias = ALIASES.get(str(value).lower().split(":")[0])
    near = [alias] if alias in choices else difflib.get_close_matches(str(value), choices, n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(map(repr, near))}?" if near else ""
    return f"invalid choice {value!r}; expected one of {', '.join(map(repr, choices))}.{hint}"


def program_name(argv0: str) -> str:
    """How the kit was called: the script's name (``rdfia-mlp``), or ``python -m frameworks`` for the module."""
    name = Path(argv0).name
    return MODULE_PROG if not name or name.endswith(".py") or name.startswith("-") else name


def build_parser(prog: str, wanted: Iterable[str]) -> tuple[Parser, dict[str, ModuleType]]:
    """The parser of every command, and the modules of the ``wanted`` ones (imported: they add their options)."""
    parser = Parser(prog=prog, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("-v", "--verbose", action="count", default=0,
                         help="log what the kit does to stderr (-v: each run and sweep group; -vv: each epoch)")
        if name in wanted:  # import only the command that runs
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(sub)
    return parser, modules


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show each warning as one ``warning: <message>`` line on stderr, written through tqdm so a bar stays whole.

    Python's default (``file:line: RuntimeWarning: ...`` and the source line) is restored on exit.
    """

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: object = None,
             line: str | None = None) -> None:
        from tqdm import tqdm

        tqdm.write(f"warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def logging_to_stderr(verbosity: int) -> Iterator[None]:
    """The "frameworks" logger's records on stderr (through tqdm, so a bar stays whole) at INFO (``-v``) or DEBUG
    (``-vv``); with no ``-v``, its warnings only. The logger's level and handlers are restored on exit."""
    import logging

    from tqdm import tqdm

    class ToTqdm(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            tqdm.write(self.format(record), file=sys.stderr)

    logger = logging.getLogger("frameworks")
    handler, level = ToTqdm(), logger.level
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if not verbosity else logging.INFO if verbosity == 1 else logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``argv=None`` runs the process's own command line.

    Called with ``argv=None`` (the ``rdfia-mlp`` script, ``python -m frameworks``) the program is named as it was
    called and warnings are shown as one line; called with a list, the program is ``python -m frameworks`` and
    the caller's warning handling is left alone.
    """
    command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    prog = program_name(sys.argv[0] if sys.argv else "") if command_line else MODULE_PROG
    parser, modules = build_parser(prog, argv[:1])
    args = parser.parse_args(argv)
    try:
        with one_line_warnings() if command_line else contextlib.nullcontext(), logging_to_stderr(args.verbose):
            return modules[args.command].run(args)
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an output folder that cannot be written, a disk that is full
        print(f"error: {err.strerror or err} ({err.filename or 'output'}); check the --out/--checkpoint path.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
