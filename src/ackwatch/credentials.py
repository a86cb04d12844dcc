"""Resolve the secrets the config refers to (`SecretRef`), when they are needed.

Four kinds, as written in the config file:

- ``password_file: PATH``: the file's text, one trailing newline stripped;
- ``password_env: NAME``: the environment variable;
- ``credential: NAME``: ``$CREDENTIALS_DIRECTORY/NAME``, the file systemd hands over for
  ``LoadCredential=NAME:...`` (one trailing newline stripped);
- ``oauth2_token_command: CMD``: run without a shell (``shlex.split``), 30 s timeout,
  stdout stripped; the output is an OAuth2 access token for XOAUTH2.

A `SecretError` names the reference ("password_file /etc/ackwatch/anna.pass: not
readable (permission denied)") and never carries the secret or a command's output, not
even as ``__cause__``/``__context__``. Every resolved value is registered with
`ackwatch.logs.register_secret`, so that it can never reach a log line.

`secret_warning` and `permission_warnings` are the non-fatal checks of ``check-config``,
which runs in an ops shell that usually lacks the service's environment and credentials;
they never read a secret.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ackwatch import logs
from ackwatch.config import Config, SecretRef

COMMAND_TIMEOUT = 30.0  # seconds
_PATH_LIKE = re.compile(r"[\w./+-]{1,256}")

# The config key each kind is written with (used to name a reference in messages).
CONFIG_KEY = {
    "file": "password_file",
    "env": "password_env",
    "credential": "credential",
    "command": "oauth2_token_command",
}


class SecretError(Exception):
    """A secret could not be resolved. The message names the reference, never the value."""

    def __init__(self, ref: SecretRef, problem: str):
        self.ref = ref
        self.problem = problem
        super().__init__(f"{describe(ref)}: {problem}")


def describe(ref: SecretRef) -> str:
    """`SecretRef.describe`: ``password_file /etc/ackwatch/anna.pass``; a command by its
    program's name alone (its arguments may carry a client id or secret)."""
    return ref.describe()


# --------------------------------------------------------------------------- resolve


def resolve_secret(
    ref: SecretRef,
    *,
    environ: Mapping[str, str] | None = None,
    credentials_dir: str | Path | None = None,
) -> str:
    """The secret ``ref`` points at, or `SecretError`.

    ``environ`` defaults to ``os.environ`` (it is where ``password_env`` and
    ``$CREDENTIALS_DIRECTORY`` are looked up, and the environment of the token command);
    ``credentials_dir`` overrides ``$CREDENTIALS_DIRECTORY``.
    """
    env = os.environ if environ is None else environ
    # Each helper returns (value, None) or (None, problem): errors are raised here, outside
    # any except block, so no exception holding output or partial reads is chained.
    if ref.kind == "file":
        value, problem = _read_secret_file(Path(ref.value))
    elif ref.kind == "env":
        value, problem = _from_env(ref.value, env)
    elif ref.kind == "credential":
        value, problem = _from_credential(ref.value, env, credentials_dir)
    elif ref.kind == "command":
        value, problem = _run_command(ref.value, env)
    else:
        value, problem = None, f"unknown kind of secret {ref.kind!r}"
    if problem is not None or value is None:
        raise SecretError(ref, problem or "no value")
    logs.register_secret(value, transient=ref.kind == "command")
    return value


def _strip_newline(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _read_secret_file(path: Path) -> tuple[str | None, str | None]:
    problem: str | None = None
    text = ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = "does not exist"
    except IsADirectoryError:
        problem = "is a directory, not a file"
    except PermissionError:
        problem = f"not readable (permission denied for uid {os.getuid()})"
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except OSError as exc:
        problem = f"not readable ({exc.strerror or type(exc).__name__})"
    if problem is not None:
        return None, problem
    value = _strip_newline(text)
    if not value:
        return None, "is empty"
    return value, None


def _from_env(name: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    value = env.get(name)
    if value is None:
        return None, "the environment variable is not set"
    if not value:
        return None, "the environment variable is empty"
    return value, None


def _credentials_dir(env: Mapping[str, str], override: str | Path | None) -> Path | None:
    if override is not None:
        return Path(override)
    value = env.get("CREDENTIALS_DIRECTORY")
    return Path(value) if value else None


def _from_credential(
    name: str, env: Mapping[str, str], override: str | Path | None
) -> tuple[str | None, str | None]:
    directory = _credentials_dir(env, override)
    if directory is None:
        return None, (
            "$CREDENTIALS_DIRECTORY is not set (credentials come from systemd: "
            f"LoadCredential={name}:/path/to/file in the unit)"
        )
    value, problem = _read_secret_file(directory / name)
    if problem == "does not exist":
        problem = (
            f"not present in $CREDENTIALS_DIRECTORY ({directory}); "
            f"is LoadCredential={name}:... in the unit?"
        )
    return value, problem


def _run_command(command: str, env: Mapping[str, str]) -> tuple[str | None, str | None]:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return None, f"cannot split the command line ({exc})"
    if not argv:
        return None, "empty command"
    problem: str | None = None
    stdout = b""
    try:
        completed = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            env=dict(env),
            check=False,
        )
    except FileNotFoundError:
        problem = "command not found"
    except PermissionError:
        problem = "command not executable (permission denied)"
    except subprocess.TimeoutExpired:
        problem = f"timed out after {COMMAND_TIMEOUT:g}s"
    except OSError as exc:
        problem = f"cannot run the command ({exc.strerror or type(exc).__name__})"
    else:
        if completed.returncode != 0:
            problem = f"exited with status {completed.returncode} (its output is not shown)"
        stdout = completed.stdout
    if problem is not None:
        return None, problem
    try:
        value = stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None, "printed something that is not UTF-8 text"
    if not value:
        return None, "printed nothing"
    return value, None


# --------------------------------------------------------------------------- checks


def secret_warning(ref: SecretRef, environ: Mapping[str, str] | None = None) -> str | None:
    """A non-fatal note about ``ref`` for ``check-config``, or None when it looks fine.

    Never reads the secret itself and never runs a command: it checks that the variable
    is set, the file exists and is readable by the current user, the credential is
    present (or, outside systemd, says it will come from systemd), the program exists.
    """
    env = os.environ if environ is None else environ
    if ref.kind == "env":
        if ref.value not in env:
            return f"{ref.value} is not set in this shell (the service's environment may set it)"
        if not env[ref.value]:
            return f"{ref.value} is set but empty"
        return None
    if ref.kind == "file":
        return _file_warning(Path(ref.value))
    if ref.kind == "credential":
        directory = _credentials_dir(env, None)
        if directory is None:
            return (
                f"{ref.value} will come from systemd ($CREDENTIALS_DIRECTORY is not set in "
                f"this shell; the unit needs LoadCredential={ref.value}:...)"
            )
        path = directory / ref.value
        if not path.exists():
            return f"{ref.value} is not present in $CREDENTIALS_DIRECTORY ({directory})"
        return _file_warning(path)
    if ref.kind == "command":
        try:
            argv = shlex.split(ref.value)
        except ValueError as exc:
            return f"cannot split the command line ({exc})"
        if not argv:
            return "empty command"
        program = argv[0]
        # The program's path helps ops; a first word such as CLIENT_SECRET=... is not shown.
        shown = program if _PATH_LIKE.fullmatch(program) else "the program (first word)"
        path_env = env.get("PATH", os.defpath)
        if os.sep in program:
            if not os.path.isfile(program):
                return f"{shown} does not exist"
            if not os.access(program, os.X_OK):
                return f"{shown} is not executable"
            return None
        if shutil.which(program, path=path_env) is None:
            return f"{shown} is not found on PATH"
        return None
    return f"unknown kind of secret {ref.kind!r}"


def _file_warning(path: Path) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path} cannot be examined ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a directory, not a file"
    if not os.access(path, os.R_OK):
        return (
            f"{path} is not readable by this user (uid {os.getuid()}); "
            "the service's user must be able to read it"
        )
    if st.st_size == 0:
        return f"{path} is empty"
    return None


def permission_warnings(config: Config) -> list[str]:
    """Secret files (``password_file``) readable by group or others, a config file that
    others may write (it names the commands ackwatch runs) or read: one warning each.

    The config file holds no secrets (literal passwords are refused), but it lists the
    agency's clients, accounts, hosts and where the secrets live: mode 0640 (root and
    the service's group) is enough, so a world-readable one gets a warning too.
    """
    warnings: list[str] = []
    mode = _mode(config.path)
    if mode is not None and mode & (stat.S_IWGRP | stat.S_IWOTH):
        warnings.append(
            f"{config.path} is writable by group/others (mode {mode:04o}); it names commands "
            "ackwatch runs: chmod go-w"
        )
    elif mode is not None and mode & stat.S_IROTH:
        warnings.append(
            f"{config.path} is readable by others (mode {mode:04o}); it lists clients, "
            "accounts and where the secrets are: chmod o-r (0640)"
        )
    seen: set[str] = set()
    secret_files = [(f"{where}.password_file", ref) for where, ref in _secret_refs(config)]
    for where, ref in [*secret_files, *app_secret_refs(config)]:
        if ref.kind != "file" or ref.value in seen:
            continue
        seen.add(ref.value)
        mode = _mode(Path(ref.value))
        if mode is not None and mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"{where}: {ref.value} is readable by group/others (mode {mode:04o}): "
                "chmod 600 it, or under systemd use a credential with LoadCredential= so "
                "only root needs to read it"
            )
    return warnings


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def _secret_refs(config: Config) -> list[tuple[str, SecretRef]]:
    """(key path of the section, reference) for every secret the config refers to."""
    refs: list[tuple[str, SecretRef]] = []
    for i, mb in enumerate(config.mailboxes):
        for ref in (mb.password, mb.oauth2_token):
            if ref is not None:
                refs.append((f"mailboxes[{i}]", ref))
    if config.smtp is not None and config.smtp.password is not None:
        refs.append(("smtp", config.smtp.password))
    if config.database is not None and config.database.password is not None:
        refs.append(("database", config.database.password))
    return refs


def app_secret_refs(config: Config) -> list[tuple[str, SecretRef]]:
    """(key path, reference) for every secret of ``oauth2_apps``: a client secret, a
    certificate's private key, a service account's JSON key."""
    keys = {
        "client_secret": {"file": "client_secret_file", "env": "client_secret_env",
                          "credential": "credential"},
        "private_key": {"file": "private_key_file", "credential": "private_key_credential"},
        "service_account": {"file": "service_account_file", "credential": "credential"},
    }
    refs: list[tuple[str, SecretRef]] = []
    for name, app in config.oauth2_apps.items():
        for field, by_kind in keys.items():
            ref = getattr(app, field)
            if ref is not None:
                refs.append((f"oauth2_apps.{name}.{by_kind.get(ref.kind, ref.kind)}", ref))
    return refs


def secret_warnings(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """`secret_warning` for every reference in ``config``, prefixed with its key path
    (``mailboxes[0].password_env: ACKWATCH_ANNA_PASSWORD is not set in this shell ...``)."""
    out: list[str] = []
    for where, ref in _secret_refs(config):
        warning = secret_warning(ref, environ)
        if warning is not None:
            out.append(f"{where}.{CONFIG_KEY[ref.kind]}: {warning}")
    for where, ref in app_secret_refs(config):
        warning = secret_warning(ref, environ)
        if warning is not None:
            out.append(f"{where}: {warning}")
    return out
