"""`oauth2_apps:`: applications defined once, named by `oauth2: NAME` on mailboxes and smtp;
every problem reported with its key path, secrets kept as references."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ackwatch.config import ConfigError, SecretRef, load_config

BASE: dict = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "policies": {"default": {"window": "2h", "clock": "calendar"}},
    "oauth2_apps": {
        "m365": {
            "provider": "microsoft365",
            "tenant": "agency.example",
            "client_id": "11111111-2222-3333-4444-555555555555",
            "credential": "m365-secret",
        },
        "workspace": {"provider": "google", "service_account_file": "google-key.json"},
    },
    "mailboxes": [
        {"name": "office", "host": "outlook.office365.com", "username": "office@agency.example",
         "oauth2": "m365"},
        {"name": "piotr", "host": "imap.gmail.com", "username": "piotr@agency.example",
         "oauth2": "workspace"},
    ],
    "smtp": {"host": "smtp.office365.com", "username": "ackwatch@agency.example",
             "oauth2": "m365", "from": "ackwatch <ackwatch@agency.example>"},
}


def load(tmp_path: Path, data: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path, environ={})


def problems(tmp_path: Path, data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, data)
    return [str(p) for p in info.value.problems]


def with_app(name: str, app: dict) -> dict:
    data = copy.deepcopy(BASE)
    data["oauth2_apps"][name] = app
    return data


def test_mailboxes_and_smtp_share_the_application_they_name(tmp_path):
    config = load(tmp_path, BASE)
    office, piotr = config.mailboxes
    assert office.oauth2 is config.oauth2_apps["m365"] is config.smtp.oauth2
    assert office.password is None and office.oauth2_token is None
    assert office.oauth2.client_secret == SecretRef("credential", "m365-secret")
    assert piotr.oauth2.provider == "google"
    assert piotr.oauth2.service_account == SecretRef("file", str(tmp_path / "google-key.json"))


def test_a_certificate_takes_its_private_key_from_a_file_or_a_credential(tmp_path):
    app = {"provider": "microsoft365", "tenant": "t", "client_id": "c",
           "certificate_file": "/etc/ackwatch/cert.pem", "private_key_credential": "key.pem"}
    config = load(tmp_path, with_app("m365", app))
    m365 = config.oauth2_apps["m365"]
    assert m365.certificate_file == Path("/etc/ackwatch/cert.pem")
    assert m365.private_key == SecretRef("credential", "key.pem")
    assert m365.client_secret is None


def test_an_unknown_application_is_named_with_its_key_path(tmp_path):
    data = copy.deepcopy(BASE)
    data["mailboxes"][1]["oauth2"] = "worksapce"
    assert problems(tmp_path, data) == [
        'mailboxes[1].oauth2: unknown application "worksapce" (did you mean "workspace"?) '
        "in oauth2_apps"
    ]


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ({"provider": "outlook"}, "oauth2_apps.x.provider: expected one of"),
        ({"provider": "google"}, "oauth2_apps.x: missing: give one of service_account_file, "
                                 "credential"),
        ({"provider": "google", "credential": "k.json", "tenant": "t"},
         "oauth2_apps.x.tenant: not used by provider google"),
        ({"provider": "microsoft365", "tenant": "t", "client_id": "c"},
         "oauth2_apps.x: no client credential"),
        ({"provider": "microsoft365", "client_id": "c", "credential": "s"},
         "oauth2_apps.x.tenant: missing (required)"),
        ({"provider": "microsoft365", "tenant": "t", "client_id": "c", "credential": "s",
          "client_secret_env": "S"}, "oauth2_apps.x: give only one of"),
        ({"provider": "microsoft365", "tenant": "t", "client_id": "c",
          "certificate_file": "c.pem"}, "oauth2_apps.x: certificate_file needs the private key"),
        ({"provider": "microsoft365", "tenant": "t", "client_id": "c", "credential": "s",
          "certificate_file": "c.pem", "private_key_file": "k.pem"},
         "oauth2_apps.x: give a client secret or a certificate, not both"),
        ({"provider": "google", "credential": "k.json", "token_url": "http://oauth.example/t"},
         "oauth2_apps.x.token_url: expected an https:// URL"),
        ({"provider": "google", "credential": "k.json", "client_secret": "s3cret"},
         "oauth2_apps.x.client_secret: unknown key"),
    ],
)
def test_an_application_with_a_problem_is_refused_with_its_key_path(tmp_path, app, expected):
    found = problems(tmp_path, with_app("x", app))
    assert len(found) == 1 and found[0].startswith(expected), found
    assert "s3cret" not in found[0]


def test_http_token_url_is_accepted_on_loopback_only(tmp_path):
    app = {"provider": "google", "credential": "k.json", "token_url": "http://127.0.0.1:8080/t"}
    assert load(tmp_path, with_app("x", app)).oauth2_apps["x"].token_url.startswith("http://")


def test_a_mailbox_gives_oauth2_or_a_password_not_both(tmp_path):
    data = copy.deepcopy(BASE)
    data["mailboxes"][0]["password_env"] = "OFFICE_PASSWORD"
    assert problems(tmp_path, data) == ["mailboxes[0]: give oauth2 or password_env, not both"]


def test_smtp_with_oauth2_needs_the_username_it_sends_as(tmp_path):
    data = copy.deepcopy(BASE)
    del data["smtp"]["username"]
    assert problems(tmp_path, data) == [
        "smtp.username: missing (required with oauth2: the mailbox the application sends as)"
    ]


def test_a_config_without_applications_has_none(tmp_path):
    data = copy.deepcopy(BASE)
    del data["oauth2_apps"], data["smtp"]
    data["mailboxes"] = [{"name": "a", "host": "imap.example", "username": "a@agency.example",
                          "password_env": "A"}]
    assert dict(load(tmp_path, data).oauth2_apps) == {}
