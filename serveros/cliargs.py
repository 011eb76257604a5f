"""How the command line checks its options and reports failures (used by :mod:`serveros.cli`).

Every subcommand answers a bad option the way argparse answers an unknown one, but on one
line: ``serveros <cmd>: error: argument --size: must be 14..1514, not 99999`` on stderr and
exit status 2 (POSIX utility conventions: 2 for a usage error). Numbers are checked while
parsing (:func:`int_arg`), output paths before anything is simulated (:func:`output_dir`,
:func:`output_file`), and what only a library can judge (an unknown profile, an unreadable
trace) is raised by the command as :class:`UsageError`. Anything else a command raises is an
unexpected failure: one line naming the cause and the file holding the full traceback
(:func:`log_traceback`), exit status 1.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import traceback
from pathlib import Path
from typing import Callable, NoReturn, Sequence

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "UsageError", "Parser", "int_arg", "output_dir",
           "output_file", "log_traceback", "one_line", "points_progress"]

#: Exit status of an unexpected failure (a simulation raised) and of a bad option.
EXIT_FAILURE = 1
EXIT_USAGE = 2

Bound = int | Callable[[], int] | None


class UsageError(Exception):
    """A bad option found by a command after parsing; the message names the option."""


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line (no usage block):
    ``<prog>: error: <message>`` on stderr, exit status 2. Its subparsers are ``Parser`` too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}\n")


def one_line(text: str) -> str:
    """``text`` on one line: its first non-empty line, with ``...`` if more followed."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[0] + (" ..." if len(lines) > 1 else "")


def _value(b: Bound) -> int | None:
    return b() if callable(b) else b


def int_arg(lo: Bound = None, hi: Bound = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting an integer in ``lo..hi`` (either end open when None; a
    callable bound is read when the option is parsed, so a library's constant is imported only
    then). The error names the allowed range and the value given."""
    def parse(text: str) -> int:
        low, high = _value(lo), _value(hi)
        if low is not None and high is not None:
            want = f"an integer {low}..{high}"
        elif low is not None:
            want = f"an integer >= {low}"
        elif high is not None:
            want = f"an integer <= {high}"
        else:
            want = "an integer"
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {want}, not {text!r}") from None
        if (low is not None and v < low) or (high is not None and v > high):
            raise argparse.ArgumentTypeError(f"must be {want}, not {v}")
        return v
    parse.__name__ = "integer"
    return parse


def output_dir(option: str, path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) now, before a run, so that a bad
    one is a usage error rather than a failure after the simulation.

    Raises
    ------
    UsageError
        Naming ``option`` when ``path`` is not a folder or cannot be created.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"argument {option}: {str(p)!r} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"argument {option}: cannot create the folder {str(p)!r}: "
                         f"{e.strerror or e}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"argument {option}: the folder {str(p)!r} is not writable")
    return p


def output_file(option: str, path: str | os.PathLike) -> Path:
    """Check that the file ``path`` can be written (creating its folder), before a run.

    Raises
    ------
    UsageError
        Naming ``option`` when ``path`` is a folder, or its folder cannot be created or written.
    """
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise UsageError(f"argument {option}: {str(p)!r} is a folder, not a file")
    output_dir(option, p.parent)
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"argument {option}: {str(p)!r} is not writable")
    return p


def log_traceback(command: str, argv: Sequence[str]) -> Path:
    """Write the exception being handled, with its full traceback and the command line
    ``argv`` it ran, to a new file in the temporary folder (``serveros-<command>-*.log``);
    returns the file."""
    fd, name = tempfile.mkstemp(prefix=f"serveros-{command}-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(f"serveros {' '.join(argv)}\n")
        fh.write(traceback.format_exc())
    return Path(name)


def points_progress(console):
    """The progress bar of a command that simulates points (``serveros run``, ``serveros
    sweep``): its description, the bar, points done of all, the time elapsed; kept on screen
    at the end."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)
