"""``ackwatch hash-password``: a hash the board accepts, the password never on the
command line or in the output."""

from __future__ import annotations

import subprocess
import sys

from argon2 import PasswordHasher


def hash_password(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ackwatch", "hash-password"], input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def test_prints_an_argon2id_hash_of_the_first_line_of_stdin():
    done = hash_password("zażółć gęślą jaźń\nignored\n")
    assert done.returncode == 0
    printed = done.stdout.strip()
    assert printed.startswith("$argon2id$") and "zażółć" not in done.stdout + done.stderr
    assert PasswordHasher().verify(printed, "zażółć gęślą jaźń")


def test_a_short_password_is_refused():
    done = hash_password("short\n")
    assert done.returncode == 2 and done.stdout == ""
    assert "at least 8 characters" in done.stderr
