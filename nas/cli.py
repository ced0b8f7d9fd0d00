"""The ``nas`` command: one subcommand per module of ``nas.commands``.

Each command module has ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, and keeps
heavy imports inside ``run`` so that ``nas --help`` stays fast. Errors the user can fix
(:class:`nas.errors.NasError`), failures of the file system (``OSError``: permissions, a
directory where a file is expected, a full disk) and usage errors are printed as one line with
exit code 2, never a traceback; warnings as one line each. SIGTERM stops a command as Ctrl-C
does: one line, exit code 130.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import signal
import sys
import warnings

from nas.errors import NasError, interrupt_on_signal

COMMANDS = ("info", "sample", "train", "latency", "search", "pareto", "analyze", "report",
            "export")


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line too, naming the (sub)command."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="nas", description=__import__("nas").__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {name: importlib.import_module(f"nas.commands.{name}") for name in COMMANDS}
    parsers = {name: sub.add_parser(name, help=module.HELP, description=module.HELP)
               for name, module in modules.items()}
    for name, module in modules.items():
        module.add_arguments(parsers[name])
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        parsers[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    signal.signal(signal.SIGTERM, interrupt_on_signal)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, args.command)
            return modules[args.command].run(args) or 0
    except NasError as e:
        print(f"nas {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except OSError as e:
        print(f"nas {args.command}: error: {_os_error(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nas {args.command}: interrupted", file=sys.stderr)
        return 130


def _show_warning(command: str, message, *_args, **_kwargs) -> None:
    """A warning as one line naming the command, without Python's file and line."""
    print(f"nas {command}: warning: {message}", file=sys.stderr)


def _os_error(e: OSError) -> str:
    """``path: reason`` of a failed file operation."""
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    return f"{paths}: {e.strerror}" if paths and e.strerror else str(e)


if __name__ == "__main__":
    sys.exit(main())
