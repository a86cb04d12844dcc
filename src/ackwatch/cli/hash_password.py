"""``ackwatch hash-password``: an argon2id hash for ``web.users[].password_hash``.

The password is read from the terminal without echo (twice, to catch a typo), or as the
first line of standard input when that is not a terminal; never from the command line,
where other users see it in the process list and the shell keeps it in its history.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from ackwatch.cli.common import EX_OK, EX_USAGE, err, out

NAME = "hash-password"
HELP = "print an argon2 hash of a board user's password (for web.users[].password_hash)"
MIN_LENGTH = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Read a password (from the terminal without echo, or the first line of standard "
        "input) and print its argon2id hash for web.users[].password_hash."
    )


def _read() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            err("ackwatch hash-password: the two passwords differ")
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    from ackwatch.web.access import hash_password

    password = _read()
    if password is None:
        return EX_USAGE
    if len(password) < MIN_LENGTH:
        err(f"ackwatch hash-password: use at least {MIN_LENGTH} characters")
        return EX_USAGE
    out(hash_password(password))
    return EX_OK
