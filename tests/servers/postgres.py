"""A throwaway PostgreSQL server (Debian's ``postgresql`` package) for the tests.

``initdb`` into a temporary directory, ``pg_ctl start`` on a free loopback port with the
socket in that directory. PostgreSQL refuses to run as root: as root the directory is
given to the ``postgres`` system user and the programs run as it (``runuser``). The
superuser logs in with a password (SCRAM), so the tests go through ackwatch's password
path. Each test gets a database of its own (`PostgresServer.new_database`).

Without PostgreSQL installed its tests skip with a reason, unless
ACKWATCH_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .imapserver import HOST, free_port

REQUIRE_ENV = "ACKWATCH_REQUIRE_POSTGRES"
SUPERUSER = "ackwatch_test"
PASSWORD = "pg-test-secret-7f3a"  # the tests check it never shows


def postgres_bindir() -> Path | None:
    """The newest installed server's programs (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


class PostgresServer:
    """One PostgreSQL server on loopback, started and stopped by the tests."""

    def __init__(self, *, crash_safe: bool = False) -> None:
        """``crash_safe``: a commit is written before it is acknowledged (as in
        production), so that ``pg_ctl restart -m immediate`` keeps every commit; else
        commits are acknowledged first (faster, for tests that never kill the server)."""
        self.crash_safe = crash_safe
        bindir = postgres_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        self.host = HOST
        self.root = Path(tempfile.mkdtemp(prefix="ackwatch-pg-"))
        self.data = self.root / "data"
        self._numbers = itertools.count(1)
        self._as_root = os.geteuid() == 0
        os.chmod(self.root, 0o755)
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / program), *args]
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120,
                              cwd=self.root)

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=scram-sha-256",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8")
        pwfile.unlink()
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "log"), "-w", "-t", "60", "start")

    def _options(self) -> str:
        # fsync=off is safe even for an immediate restart: the operating system keeps
        # what the server wrote; only a commit acknowledged before it was written is not.
        commit = "on" if self.crash_safe else "off"
        return (f"-p {self.port} -k {self.root} -c listen_addresses={self.host}"
                f" -c fsync=off -c synchronous_commit={commit} -c full_page_writes=off"
                " -c max_connections=200")

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m mode``: ``fast`` ends every session cleanly (what a
        package upgrade or a planned failover does), ``immediate`` kills the server
        without a shutdown (a crash: recovery from the WAL at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "log"), "-m", mode, "-w", "-t", "60", "restart")

    def stop_for_now(self, mode: str = "fast") -> None:
        """Stop the server, to be started again by `start_again` (an outage)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def start_again(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l",
                  str(self.root / "log"), "-w", "-t", "60", "start")

    def connect_admin(self, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=SUPERUSER,
                               password=PASSWORD, dbname=dbname, autocommit=True)

    def new_database(self) -> str:
        """A new, empty database's name."""
        name = f"state_{os.getpid()}_{next(self._numbers)}"
        with self.connect_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def database_config(server: PostgresServer, dbname: str):  # type: ignore[no-untyped-def]
    """The `DatabaseConfig` of one of the server's databases, its password in a file."""
    from ackwatch.config.model import DatabaseConfig, SecretRef

    secret = server.root / "ackwatch.pass"
    if not secret.exists():
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
    return DatabaseConfig(
        url=server.url(dbname), host=server.host, port=server.port, user=SUPERUSER,
        dbname=dbname, password=SecretRef("file", str(secret)), sslmode="disable",
    )


def database_yaml(server: PostgresServer) -> str:
    """A config file's ``database`` section for a new database of ``server``."""
    db = database_config(server, server.new_database())
    assert db.password is not None
    return (f"database:\n  url: {db.url}\n  password_file: {db.password.value}\n"
            "  sslmode: disable\n")
