"""A private Dovecot (Debian ``dovecot-imapd``) on loopback for the integration tests.

Runs ``dovecot -F -c <tmp>/dovecot.conf`` with everything (base_dir, state_dir, logs,
Maildirs, passwd-file) inside a temp dir. Works as a normal user (every Dovecot
process runs as that user, chroots off) and as root. As root, Dovecot refuses two
things: login processes running as root ("This process must not be run as root") and
mail access as UID 0 ("Mail access not allowed for root"; only doveadm/LDA may set the
allow-root flag). So as root the fixture uses the Debian package's dedicated users:
``default_login_user = dovenull`` and ``default_internal_user``/``mail_uid`` =
``dovecot``, and makes the temp dir traversable (0755) and the mail dir theirs.

Dovecot re-reads the passwd-file when it changes, so users can be added at any time.
``imap_logout_format`` logs per-session fetch counters (``body_count`` must stay 0 for
ackwatch sessions; see `session_stats`).
"""

from __future__ import annotations

import atexit
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

from .imapserver import (
    DEFAULT_USERS,
    HOST,
    ImapTestServer,
    ServerStartError,
    default_password,
    free_port,
    tail,
    wait_for_greeting,
)

REQUIRE_ENV = "ACKWATCH_REQUIRE_DOVECOT"

# Folders the config gives a SPECIAL-USE attribute. "Sent" is auto-created for every
# user; "Outgoing" is \Sent too but only exists once a test creates it: its name matches
# no common sent-folder name, so finding it proves discovery used SPECIAL-USE. The
# [Gmail]/ folders exist once a test creates them.
SPECIAL_USE = {"Sent": ("\\Sent", True), "Outgoing": ("\\Sent", False),
               "Drafts": ("\\Drafts", False), "Trash": ("\\Trash", False),
               # Gmail's layout, for a test that creates it
               "[Gmail]/Sent Mail": ("\\Sent", False), "[Gmail]/All Mail": ("\\All", False)}  # fmt: skip

_LOGOUT_RE = re.compile(
    r"imap\((?P<user>[^)]+)\).*Disconnected: (?P<reason>[^ ].*?) in=(?P<in>\d+) out=(?P<out>\d+) "
    r"hdr_count=(?P<hdr_count>\d+) hdr_bytes=(?P<hdr_bytes>\d+) "
    r"body_count=(?P<body_count>\d+) body_bytes=(?P<body_bytes>\d+)"
)


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None


def dovecot_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's group: not ours to wait on
        return False
    return True


def _openssl_self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed cert for 127.0.0.1/localhost (also usable as its own CA file)."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    os.chmod(key, 0o644)  # read by the login processes (dovenull when run as root)
    return cert, key


class DovecotServer(ImapTestServer):
    kind = "dovecot"
    has_condstore = True
    has_special_use = True
    has_idle = True
    has_keywords = True

    def __init__(
        self,
        users: tuple[str, ...] = DEFAULT_USERS,
        *,
        tls: bool = False,
        directory: Path | None = None,
        binary: str | None = None,
        pool: int = 40,
        auth_mechanisms: str = "plain login",
        oauth2_introspection: str | None = None,
    ) -> None:
        super().__init__()
        self.binary = binary or dovecot_binary()
        if self.binary is None:
            raise FileNotFoundError("dovecot is not installed (apt-get install dovecot-imapd)")
        self.tls = tls
        self.auth_mechanisms = auth_mechanisms  # "login": no AUTH=PLAIN (LOGIN still works)
        # The base URL of a token server's introspection endpoints (tests/servers/
        # tokenserver.py): tokens are then checked by Dovecot's oauth2 passdb.
        self.oauth2_introspection = oauth2_introspection
        self._own_dir = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="ackwatch-dovecot-"))
        self.port = free_port()
        self.tls_port: int | None = free_port() if tls else None
        self.cert_file: Path | None = None
        self.key_file: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._initial_users = users
        self._configured = False
        # Users written before start, handed out by add_user(): a user added later can
        # only log in after Dovecot's next passwd-file stat (up to a second).
        self._pool = [f"pool{i:03d}x{os.getpid()}" for i in range(pool)]

    # ------------------------------------------------------------------ config
    @property
    def log_path(self) -> Path:
        return self.dir / "dovecot.log"

    @property
    def passwd_path(self) -> Path:
        return self.dir / "passwd"

    def _accounts(self) -> tuple[str, str, str, str, str]:
        """(mail user, mail group, internal user, internal group, login user)."""
        if os.geteuid() != 0:
            user = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            return user, group, user, group, user
        try:
            pwd.getpwnam("dovecot")
            internal = "dovecot"
        except KeyError:  # pragma: no cover - the Debian package creates it
            internal = "nobody"
        try:
            pwd.getpwnam("dovenull")
            login = "dovenull"
        except KeyError:  # pragma: no cover
            login = "nobody"
        igroup = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        return internal, igroup, internal, igroup, login

    def _write_config(self) -> None:
        d = self.dir
        mail_user, mail_group, internal, igroup, login = self._accounts()
        for sub in ("mail", "home"):
            (d / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chmod(d, 0o755)
            uid, gid = pwd.getpwnam(mail_user).pw_uid, grp.getgrnam(mail_group).gr_gid
            for sub in ("mail", "home"):
                os.chown(d / sub, uid, gid)
        mailboxes = "\n".join(
            f'  mailbox "{name}" {{\n    special_use = {use}\n'
            + ("    auto = create\n" if auto else "")
            + "  }"
            for name, (use, auto) in SPECIAL_USE.items()
        )
        ssl_block = "ssl = no\n"
        imaps_port = 0
        if self.tls:
            if self.cert_file is None:
                self.cert_file, self.key_file = _openssl_self_signed(d)
            ssl_block = f"ssl = yes\nssl_cert = <{self.cert_file}\nssl_key = <{self.key_file}\n"
            imaps_port = self.tls_port or 0
        conf = f"""# generated by tests/servers/dovecot.py
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
instance_name = ackwatch-test-{self.port}
protocols = imap
listen = {HOST}
{ssl_block}disable_plaintext_auth = no
auth_mechanisms = {self.auth_mechanisms}
mail_location = maildir:{d}/mail/%u
mail_uid = {mail_user}
mail_gid = {mail_group}
first_valid_uid = 0
first_valid_gid = 0
default_internal_user = {internal}
default_internal_group = {igroup}
default_login_user = {login}
login_greeting = ackwatch test dovecot ready.
imap_logout_format = in=%i out=%o hdr_count=%{{fetch_hdr_count}} hdr_bytes=%{{fetch_hdr_bytes}} body_count=%{{fetch_body_count}} body_bytes=%{{fetch_body_bytes}}
auth_failure_delay = 0
mail_max_userip_connections = 10
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: wrong-password tests must not slow down every login from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
{self._oauth2_passdbs()}userdb {{
  driver = static
  args = home={d}/home/%u allow_all_users=yes
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}
"""
        (d / "dovecot.conf").write_text(conf)

    def _oauth2_passdbs(self) -> str:
        """Dovecot's oauth2 passdb, once per provider: a Google token names its mailbox;
        a Microsoft token names the application, which may open any mailbox
        (``username_format = %d`` compares the domains, and test users have none)."""
        if self.oauth2_introspection is None:
            return ""
        blocks = []
        for provider, scope, user_format in (
            ("google", "https://mail.google.com/", "%Lu"),
            ("m365", "https://outlook.office365.com/.default", "%d"),
        ):
            ext = self.dir / f"oauth2-{provider}.conf.ext"
            ext.write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.oauth2_introspection}/introspect/{provider}\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                f"username_format = {user_format}\n"
                "active_attribute = active\nactive_value = true\n"
                f"scope = {scope}\n"
            )
            os.chmod(ext, 0o644)
            blocks.append(f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                          f"  args = {ext}\n}}\n")
        return "".join(blocks)

    def _write_users(self) -> None:
        lines = [f"{u}:{{PLAIN}}{p}::::::nodelay=y\n" for u, p in self.passwords.items()]
        tmp = self.passwd_path.with_suffix(".tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.chmod(tmp, 0o644)
        # Dovecot re-reads the passwd-file when its mtime (whole seconds) changes: make
        # every rewrite move the mtime forward by at least one second.
        self._users_mtime = max(int(time.time()), getattr(self, "_users_mtime", 0) + 1)
        os.utime(tmp, (self._users_mtime, self._users_mtime))
        os.replace(tmp, self.passwd_path)

    def add_user(self, name: str | None = None, password: str | None = None) -> str:
        if name is None and password is None and self._pool and self._configured:
            return self._pool.pop(0)
        return super().add_user(name, password)

    def _login(self, client: IMAPClient, user: str, password: str) -> None:
        if "plain" in self.auth_mechanisms.split():
            super()._login(client, user, password)
            return
        # Dovecot's LOGIN command is SASL PLAIN inside: without it, only AUTHENTICATE LOGIN.
        answers = iter((user, password))
        client.sasl_login("LOGIN", lambda _challenge: next(answers))

    def _ensure_sent(self, user: str) -> None:
        # "Sent" has auto = create in the config. Dovecot stats the passwd-file at most once
        # a second: wait until the new user can log in, so tests never race it.
        if not self.is_running():
            return
        deadline = time.monotonic() + 5
        while True:
            try:
                with self.admin(user):
                    return
            except IMAPClient.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.is_running():
            return
        if not self._configured:
            for u in (*self._initial_users, *self._pool):
                self.passwords.setdefault(u, default_password(u))
            self._write_users()
            self._write_config()
            self._configured = True
        if not getattr(self, "_atexit", False):  # a killed test run leaves no server behind
            atexit.register(self.stop)
            self._atexit = True
        out = open(self.dir / "stdout.log", "ab")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.dir / "dovecot.conf")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        out.close()
        try:
            wait_for_greeting(HOST, self.port, time.monotonic() + 15, self.is_running)
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(
                f"dovecot did not start: {exc}\n--- log ---\n{tail(self.log_path)}\n"
                f"--- stdout ---\n{tail(self.dir / 'stdout.log')}"
            ) from None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        # Processes that outlive the master (2.3 leaves running imap sessions and the log
        # process behind): end them, so clients see the restart as a real one.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline and _group_alive(proc.pid):
                time.sleep(0.02)
        # The master removes its pid file on exit; wait so a restart does not race it.
        pid_file = self.dir / "run" / "master.pid"
        deadline = time.monotonic() + 5
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def _create_special(self, user: str, name: str, special_use: str) -> None:
        configured = SPECIAL_USE.get(name)
        if configured is None or configured[0].lower() != special_use.lower():
            raise NotImplementedError(
                f"Dovecot 2.3 has no CREATE-SPECIAL-USE; only {sorted(SPECIAL_USE)} carry "
                "special-use attributes (from dovecot.conf)"
            )
        with self.admin(user) as c:
            c.create_folder(name)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def session_stats(self, user: str) -> list[dict[str, int | str]]:
        """Per-session counters Dovecot logged at logout for `user` (imap_logout_format)."""
        stats = []
        for m in _LOGOUT_RE.finditer(self.log_text()):
            if m.group("user") == user:
                d: dict[str, int | str] = {k: int(v) for k, v in m.groupdict().items()
                                           if k not in ("user", "reason")}  # fmt: skip
                d["reason"] = m.group("reason")
                stats.append(d)
        return stats
