"""Secrets are resolved when used; errors name the reference and never the secret."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from ackwatch import credentials as secrets
from ackwatch import logs
from ackwatch.config import SecretRef
from ackwatch.credentials import SecretError, permission_warnings, resolve_secret, secret_warning

SECRET = "s3cr3t-Zq9!"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(autouse=True)
def _clean_registry():
    logs.forget_secrets()
    yield
    logs.forget_secrets()


def python_command(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def assert_secret_free(exc: BaseException) -> None:
    """Neither the message nor any chained exception mentions the secret."""
    assert SECRET not in str(exc)
    assert SECRET not in repr(exc.args)
    assert exc.__cause__ is None
    assert exc.__context__ is None


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("ref", "described"),
    [
        (SecretRef("file", "/etc/ackwatch/anna.pass"), "password_file /etc/ackwatch/anna.pass"),
        (SecretRef("env", "ANNA_PASSWORD"), "password_env ANNA_PASSWORD"),
        (SecretRef("credential", "anna.pass"), "credential anna.pass"),
        (SecretRef("command", "/opt/tokens/get-token"), "oauth2_token_command get-token"),
        (SecretRef("command", f"/opt/tokens/get-token --client-secret {SECRET}"),
         "oauth2_token_command get-token ..."),
        (SecretRef("command", f"CLIENT_SECRET={SECRET} get-token"),
         "oauth2_token_command (program) ..."),
        (SecretRef("command", f"get-token '--secret={SECRET}"),  # unbalanced quote
         "oauth2_token_command get-token ..."),
    ],
)  # fmt: skip
def test_every_secret_source_is_described_one_way_and_a_command_by_its_program_only(
    ref, described
):
    assert ref.describe() == described
    assert secrets.describe(ref) == described
    assert SECRET not in repr(ref)


def test_a_config_never_shows_a_token_commands_arguments():
    from ackwatch.config import MailboxConfig

    mb = MailboxConfig(
        name="anna", host="imap.example", port=993, security="tls", username="anna",
        password=None, oauth2_token=SecretRef("command", f"get-token --client-secret {SECRET}"),
    )  # fmt: skip
    assert SECRET not in repr(mb)


def test_a_failing_token_command_reaches_the_imap_error_by_its_program_name_only():
    from ackwatch.mail import connection as imap

    command = python_command("raise SystemExit(2)") + f" --client-secret {SECRET}"
    with pytest.raises(imap.AuthError) as info:
        imap._resolve(resolve_secret, SecretRef("command", command), "OAuth2 token")
    program = Path(sys.executable).name
    assert f"oauth2_token_command {program} ..." in str(info.value)
    assert SECRET not in str(info.value)
    assert sys.executable not in str(info.value)


def test_check_config_never_shows_a_first_word_that_is_not_a_program():
    ref = SecretRef("command", f"CLIENT_SECRET={SECRET} get-token")
    warning = secret_warning(ref, environ={"PATH": "/nonexistent"})
    assert warning == "the program (first word) is not found on PATH"


# --------------------------------------------------------------------------- file


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f"{SECRET}\n", SECRET),
        (f"{SECRET}\r\n", SECRET),
        (SECRET, SECRET),
        (f"{SECRET}\n\n", f"{SECRET}\n"),  # only one newline is stripped
        (f" {SECRET} \n", f" {SECRET} "),  # spaces are part of the password
    ],
)
def test_password_file_strips_one_trailing_newline(tmp_path, content, expected):
    path = tmp_path / "anna.pass"
    path.write_text(content, encoding="utf-8", newline="")
    assert resolve_secret(SecretRef("file", str(path))) == expected


def test_missing_password_file_names_the_file(tmp_path):
    path = tmp_path / "anna.pass"
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("file", str(path)))
    assert str(info.value) == f"password_file {path}: does not exist"


@pytest.mark.skipif(IS_ROOT, reason="root reads any file")
def test_unreadable_password_file_is_reported_as_not_readable(tmp_path):
    path = tmp_path / "anna.pass"
    path.write_text(SECRET)
    path.chmod(0)
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("file", str(path)))
    assert str(info.value).startswith(f"password_file {path}: not readable")
    assert_secret_free(info.value)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p.mkdir(), "is a directory, not a file"),
        (lambda p: p.write_text("\n"), "is empty"),
        (lambda p: p.write_bytes(b"\xff\xfe" + SECRET.encode()), "not UTF-8 text"),
    ],
)
def test_unusable_password_files(tmp_path, setup, message):
    path = tmp_path / "anna.pass"
    setup(path)
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("file", str(path)))
    assert str(info.value) == f"password_file {path}: {message}"
    assert_secret_free(info.value)


# --------------------------------------------------------------------------- env


def test_password_env_reads_the_variable():
    ref = SecretRef("env", "ACKWATCH_ANNA_PASSWORD")
    assert resolve_secret(ref, environ={"ACKWATCH_ANNA_PASSWORD": SECRET}) == SECRET


def test_password_env_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("ACKWATCH_TEST_PASSWORD", SECRET)
    assert resolve_secret(SecretRef("env", "ACKWATCH_TEST_PASSWORD")) == SECRET


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "is not set"), ({"ACKWATCH_ANNA_PASSWORD": ""}, "is empty")],
)
def test_password_env_missing_or_empty(environ, message):
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("env", "ACKWATCH_ANNA_PASSWORD"), environ=environ)
    assert str(info.value).startswith("password_env ACKWATCH_ANNA_PASSWORD: ")
    assert message in str(info.value)


# --------------------------------------------------------------------------- credential


def test_credential_is_read_from_the_credentials_directory(tmp_path):
    (tmp_path / "anna.pass").write_text(SECRET + "\n")
    ref = SecretRef("credential", "anna.pass")
    assert resolve_secret(ref, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}) == SECRET
    assert resolve_secret(ref, environ={}, credentials_dir=tmp_path) == SECRET


def test_credential_outside_systemd_says_where_it_should_come_from():
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("credential", "anna.pass"), environ={})
    message = str(info.value)
    assert message.startswith("credential anna.pass: $CREDENTIALS_DIRECTORY is not set")
    assert "LoadCredential=anna.pass:" in message


def test_credential_not_loaded_by_the_unit(tmp_path):
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("credential", "anna.pass"), environ={}, credentials_dir=tmp_path)
    assert str(info.value).startswith("credential anna.pass: not present in $CREDENTIALS_DIRECTORY")


# --------------------------------------------------------------------------- command


def test_token_command_output_is_stripped():
    ref = SecretRef("command", python_command(f"print('  {SECRET}  ')"))
    assert resolve_secret(ref) == SECRET


def test_token_command_runs_without_a_shell():
    ref = SecretRef("command", python_command("import sys; print(sys.argv[1])") + " '$HOME;id'")
    assert resolve_secret(ref, environ={"HOME": "/nowhere"}) == "$HOME;id"


def test_token_command_gets_the_given_environment():
    ref = SecretRef("command", python_command("import os; print(os.environ['TENANT'])"))
    assert resolve_secret(ref, environ={"TENANT": "agency"}) == "agency"


def test_failing_token_command_never_shows_its_output():
    code = f"import sys; print('{SECRET}'); print('{SECRET}', file=sys.stderr); sys.exit(3)"
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("command", python_command(code)))
    message = str(info.value)
    program = Path(sys.executable).name
    assert message.startswith(f"oauth2_token_command {program} ...: exited with status 3")
    assert_secret_free(info.value)


def test_error_names_only_the_program_not_its_arguments():
    ref = SecretRef("command", python_command("raise SystemExit(1)") + " --client-secret " + SECRET)
    with pytest.raises(SecretError) as info:
        resolve_secret(ref)
    assert_secret_free(info.value)


def test_token_command_timeout(monkeypatch):
    monkeypatch.setattr(secrets, "COMMAND_TIMEOUT", 0.3)
    ref = SecretRef(
        "command", python_command(f"import time; print('{SECRET}', flush=True); time.sleep(10)")
    )
    with pytest.raises(SecretError) as info:
        resolve_secret(ref)
    assert "timed out after 0.3s" in str(info.value)
    assert_secret_free(info.value)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("/nonexistent/get-token --x", "command not found"),
        (python_command("pass"), "printed nothing"),
        ("tok 'unclosed", "cannot split the command line"),
    ],
)
def test_unusable_token_commands(command, message):
    with pytest.raises(SecretError) as info:
        resolve_secret(SecretRef("command", command))
    assert message in str(info.value)
    assert str(info.value).startswith("oauth2_token_command ")


def test_the_default_timeout_is_30_seconds():
    assert secrets.COMMAND_TIMEOUT == 30


# --------------------------------------------------------------------------- logs


def test_resolved_secrets_never_reach_the_logs(tmp_path):
    path = tmp_path / "anna.pass"
    path.write_text(SECRET + "\n")
    resolve_secret(SecretRef("file", str(path)))
    assert logs.redact(f"login failed for {SECRET}") == f"login failed for {logs.REDACTED}"


def test_resolved_tokens_are_registered_too():
    token = "ya29.token-value-123"
    resolve_secret(SecretRef("command", python_command(f"print('{token}')")))
    assert token not in logs.redact(f"AUTH {token}")


# --------------------------------------------------------------------------- warnings


def test_env_warning_when_unset_in_this_shell():
    warning = secret_warning(SecretRef("env", "ACKWATCH_ANNA_PASSWORD"), environ={})
    assert warning == (
        "ACKWATCH_ANNA_PASSWORD is not set in this shell (the service's environment may set it)"
    )


def test_no_warning_for_a_set_variable_and_it_is_never_shown():
    ref = SecretRef("env", "ACKWATCH_ANNA_PASSWORD")
    assert secret_warning(ref, environ={"ACKWATCH_ANNA_PASSWORD": SECRET}) is None
    empty = secret_warning(ref, environ={"ACKWATCH_ANNA_PASSWORD": ""})
    assert empty == "ACKWATCH_ANNA_PASSWORD is set but empty"


def test_file_warnings(tmp_path):
    missing = tmp_path / "missing.pass"
    assert secret_warning(SecretRef("file", str(missing))) == f"{missing} does not exist"
    empty = tmp_path / "empty.pass"
    empty.write_text("")
    assert secret_warning(SecretRef("file", str(empty))) == f"{empty} is empty"
    good = tmp_path / "good.pass"
    good.write_text(SECRET)
    assert secret_warning(SecretRef("file", str(good))) is None


@pytest.mark.skipif(IS_ROOT, reason="root reads any file")
def test_file_warning_when_not_readable_by_this_user(tmp_path):
    path = tmp_path / "anna.pass"
    path.write_text(SECRET)
    path.chmod(0)
    assert "is not readable by this user" in (secret_warning(SecretRef("file", str(path))) or "")


def test_credential_outside_systemd_will_come_from_systemd():
    warning = secret_warning(SecretRef("credential", "anna.pass"), environ={})
    assert warning is not None
    assert warning.startswith("anna.pass will come from systemd")


def test_credential_inside_systemd_must_be_present(tmp_path):
    ref = SecretRef("credential", "anna.pass")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert "is not present in $CREDENTIALS_DIRECTORY" in (secret_warning(ref, env) or "")
    (tmp_path / "anna.pass").write_text(SECRET)
    assert secret_warning(ref, env) is None


def test_command_warnings_check_the_program_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    ref = SecretRef("command", python_command(f"open({str(marker)!r}, 'w')"))
    assert secret_warning(ref) is None
    assert not marker.exists()
    missing = SecretRef("command", "/nonexistent/get-token --tenant x")
    assert secret_warning(missing) == "/nonexistent/get-token does not exist"
    not_on_path = SecretRef("command", "no-such-token-helper-xyz")
    assert secret_warning(not_on_path, environ={"PATH": str(tmp_path)}) == (
        "no-such-token-helper-xyz is not found on PATH"
    )


def _config_with_files(configfactory_path: Path, password_file: Path):
    from configfactory import make_config, make_mailbox

    return make_config(
        path=configfactory_path,
        mailboxes=(make_mailbox("anna", password=SecretRef("file", str(password_file))),),
    )


def test_permission_warnings_for_group_or_world_readable_password_files(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("")
    config_file.chmod(0o640)
    password = tmp_path / "anna.pass"
    password.write_text(SECRET)
    config = _config_with_files(config_file, password)

    password.chmod(0o600)
    assert permission_warnings(config) == []

    for mode in (0o640, 0o604, 0o644):
        password.chmod(mode)
        (warning,) = permission_warnings(config)
        assert warning.startswith(
            f"mailboxes[0].password_file: {password} is readable by group/others"
        )
        assert f"mode {mode:04o}" in warning
        assert SECRET not in warning


def test_permission_warning_for_a_config_file_others_can_write(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("")
    password = tmp_path / "anna.pass"
    password.write_text(SECRET)
    password.chmod(0o600)
    config = _config_with_files(config_file, password)
    config_file.chmod(0o666)
    (warning,) = permission_warnings(config)
    assert warning.startswith(f"{config_file} is writable by group/others")
    config_file.chmod(0o640)  # no secrets in it: readable by the service's group is fine
    assert permission_warnings(config) == []


def test_permission_warning_for_a_config_file_others_can_read(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("")
    password = tmp_path / "anna.pass"
    password.write_text(SECRET)
    password.chmod(0o600)
    config = _config_with_files(config_file, password)
    config_file.chmod(0o644)
    (warning,) = permission_warnings(config)
    assert warning.startswith(f"{config_file} is readable by others (mode 0644)")
    assert SECRET not in warning
    config_file.chmod(0o600)
    assert permission_warnings(config) == []


# --------------------------------------------------------------------------- oauth2 apps


def _google_app(key: Path):
    from ackwatch.config import OAuth2App

    return OAuth2App("workspace", "google", service_account=SecretRef("file", str(key)))


def test_an_applications_key_file_readable_by_others_gets_a_warning_naming_its_key(tmp_path):
    from configfactory import make_config

    key = tmp_path / "google-key.json"
    key.write_text('{"type": "service_account", "private_key": "' + SECRET + '"}')
    config = make_config(path=tmp_path / "config.yaml",
                         oauth2_apps={"workspace": _google_app(key)})
    key.chmod(0o600)
    assert permission_warnings(config) == []
    key.chmod(0o644)
    (warning,) = permission_warnings(config)
    assert warning.startswith(f"oauth2_apps.workspace.service_account_file: {key} is readable")
    assert SECRET not in warning


def test_an_unreadable_service_account_key_is_a_refusal_that_shows_no_secret(tmp_path):
    from ackwatch.oauth2 import TokenRefused, Tokens

    key = tmp_path / "google-key.json"
    key.write_text('{"type": "service_account", "private_key": "' + SECRET + '"')  # cut short
    with pytest.raises(TokenRefused) as info:
        Tokens().token(_google_app(key), "anna@agency.example")
    assert "is not a service account's JSON key" in str(info.value)
    assert_secret_free(info.value)


def test_a_client_secret_that_cannot_be_read_names_where_it_lives(tmp_path):
    from ackwatch.config import OAuth2App
    from ackwatch.oauth2 import TokenRefused, Tokens

    app = OAuth2App("m365", "microsoft365", tenant="agency.example", client_id="c",
                    client_secret=SecretRef("env", "M365_SECRET"))
    with pytest.raises(TokenRefused) as info:
        Tokens().token(app, "office@agency.example", resolve=lambda ref: resolve_secret(
            ref, environ={}))
    assert str(info.value) == ("oauth2 application m365 (microsoft365): cannot read the client "
                               "secret (password_env M365_SECRET): the environment variable "
                               "is not set")
    assert_secret_free(info.value)
