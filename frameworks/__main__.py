"""``python -m frameworks COMMAND``: the kit's command line.

Each command lives in its own module, imported only when it runs; a module
provides ``add_arguments(parser)`` and ``run(args) -> int``. A :class:`KitError`
(bad input) is printed as one line and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from frameworks._errors import KitError

COMMANDS = {
    "train": ("frameworks._cli_train", "train one implementation and write its history and curves"),
    "parity": ("frameworks.parity", "gradients of all eight implementations against each other and an oracle"),
    "compare": ("frameworks.compare", "train all eight side by side and write a report"),
    "bench": ("frameworks.bench", "time every implementation side by side"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frameworks", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    wanted = (argv if argv is not None else sys.argv[1:])[:1]
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name in wanted:  # import only the command that runs
            modules[name] = importlib.import_module(module_name)
            modules[name].add_arguments(sub)
    args = parser.parse_args(argv)
    try:
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
