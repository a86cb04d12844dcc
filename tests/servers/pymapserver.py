"""pymap (pure-Python IMAP server, PyPI ``pymap``) on loopback for the integration tests.

pymap's CLI (``pymap [--host H] [--port N] [--no-tls] dict [--demo-data]``) knows one
demo user only, so this file is also the launcher: run as a script it starts pymap's own
``main()`` with the in-memory ``dict`` backend, after patching the backend's login so
that users come from a JSON file re-read on every login ({"user": "password"}). Without
``--demo-data`` every user starts with an empty INBOX; `PymapServer.add_user` creates
"Sent" through IMAP.

pymap offers IDLE, UIDPLUS, MOVE, but no CONDSTORE and no SPECIAL-USE (so ackwatch finds
"Sent" by name there). Data lives in memory: `restart` keeps the users but loses mail.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

USERS_ENV = "ACKWATCH_PYMAP_USERS_FILE"


# ---------------------------------------------------------------------- the launcher


def _launch() -> None:  # pragma: no cover - runs in the server subprocess
    import asyncio

    from pymap.backend.dict import Login
    from pymap.main import main
    from pymap.user import Passwords, UserMetadata

    users_file = Path(os.environ[USERS_ENV])
    original = Login.authenticate
    lock = asyncio.Lock()

    async def _sync_users(login: Login) -> None:
        try:
            wanted = json.loads(users_file.read_text())
        except (OSError, ValueError):
            return
        async with lock:
            known = getattr(login, "_ackwatch_plain", {})
            for name, password in wanted.items():
                if known.get(name) != password:
                    hashed = await Passwords(login.config).hash_password(password)
                    login.users_dict[name] = UserMetadata(login.config, name, password=hashed)
                    known[name] = password
            login._ackwatch_plain = known

    async def authenticate(self, credentials):  # type: ignore[no-untyped-def]
        await _sync_users(self)
        return await original(self, credentials)

    Login.authenticate = authenticate  # type: ignore[method-assign]
    sys.argv = ["pymap", *sys.argv[1:]]
    main()


if __name__ == "__main__":  # pragma: no cover - the server subprocess
    _launch()
    sys.exit(0)


from .imapserver import (  # noqa: E402 - the launcher above runs without the package
    DEFAULT_USERS,
    HOST,
    ImapTestServer,
    ServerStartError,
    default_password,
    free_port,
    tail,
    wait_for_greeting,
)


class PymapServer(ImapTestServer):
    kind = "pymap"
    has_condstore = False
    has_special_use = False
    has_idle = True
    has_keywords = False

    def __init__(self, users: tuple[str, ...] = DEFAULT_USERS, *, tls: bool = False) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ackwatch-pymap-"))
        self.port = free_port()
        self.tls = tls  # STARTTLS only (pymap has no implicit-TLS listener)
        self.cert_file: Path | None = None
        self.key_file: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        for u in users:
            self.passwords[u] = default_password(u)
        self._initial_users = users

    @property
    def users_path(self) -> Path:
        return self.dir / "users.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "pymap.log"

    def _write_users(self) -> None:
        tmp = self.users_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.passwords))
        os.replace(tmp, self.users_path)

    def start(self) -> None:
        if self.is_running():
            return
        self._write_users()
        args = [sys.executable, str(Path(__file__).resolve()), "--host", HOST,
                "--port", str(self.port)]  # fmt: skip
        if self.tls:
            from .dovecot import _openssl_self_signed

            if self.cert_file is None:
                self.cert_file, self.key_file = _openssl_self_signed(self.dir)
            args += ["--cert", str(self.cert_file), "--key", str(self.key_file)]
        else:
            args.append("--no-tls")
        args.append("dict")
        env = dict(os.environ, **{USERS_ENV: str(self.users_path), "FQDN": "localhost"})
        if not getattr(self, "_atexit", False):  # a killed test run leaves no server behind
            atexit.register(self.stop)
            self._atexit = True
        out = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        try:
            wait_for_greeting(HOST, self.port, time.monotonic() + 20, self.is_running)
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"pymap did not start: {exc}\n{tail(self.log_path)}") from None
        for u in self.passwords:
            self._ensure_sent(u)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait(timeout=5)

    def cleanup(self) -> None:
        self.stop()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
