"""Secrets and questions from the person at the terminal (or from files, for scripts).

Standard input is read line by line, so ``--password -`` and ``--secupass-file -`` can be
given together: the password is the first line, the SecuPass the next.
"""

from __future__ import annotations

import getpass
import sys

from secupass import keys
from secushare_cli.errors import USAGE, CliError

MAX_SECRET_BYTES = 4096


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def stdin_line(what: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise CliError(f"{what} was to be read from standard input, but it is empty.", USAGE)
    return line.rstrip("\r\n")


def read_secret_file(path: str, what: str) -> str:
    """The first line of the file (``-``: standard input), without its line break."""
    if path == "-":
        return stdin_line(what)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_SECRET_BYTES + 1)
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
        raise CliError(f"Cannot read {what} from {path}: {reason}.", USAGE) from None
    if len(text) > MAX_SECRET_BYTES:
        raise CliError(f"{path} is too long to hold {what}.", USAGE)
    line = text.splitlines()[0] if text else ""
    if not line:
        raise CliError(f"{path} is empty; it should hold {what} on its first line.", USAGE)
    return line


def secupass(path: str | None, *, new: bool = False, login_password: str | None = None) -> str:
    """The SecuPass from ``--secupass-file`` or typed (twice when it is a new one)."""
    if path is not None:
        value = read_secret_file(path, "the SecuPass")
    elif interactive():
        label = "New SecuPass" if new else "SecuPass"
        value = getpass.getpass(f"{label}: ")
        if new and getpass.getpass("The same SecuPass again: ") != value:
            raise CliError("The two SecuPass entries differ; nothing was changed.", USAGE)
    else:
        raise CliError(
            "A SecuPass is needed: give --secupass-file F (- for standard input), or run "
            "the command in a terminal to be asked.",
            USAGE,
        )
    if new:
        problems = keys.check_secupass(value, login_password)
        if problems:
            raise CliError(" ".join(problems), USAGE)
    return value


def confirm(question: str) -> bool | None:
    """Ask a yes/no question at the terminal; None when nobody can answer."""
    if not interactive():
        return None
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes", "j", "ja")
