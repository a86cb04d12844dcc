"""Who may open the board (`web.access`), without a server: the request environ alone."""

from __future__ import annotations

import base64

import pytest
from structlog.testing import capture_logs

from ackwatch.config import TrustedProxy, WebConfig, WebUser
from ackwatch.web.access import Access, Refusal, Viewer, hash_password

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hashed() -> str:
    return hash_password(PASSWORD)


def env(remote: str = "127.0.0.1", host: str = "127.0.0.1:8025", **headers: str) -> dict:
    environ = {"REMOTE_ADDR": remote, "HTTP_HOST": host}
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return environ


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_loopback_without_authentication_sees_everything():
    viewer = Access(WebConfig(listen="127.0.0.1:8025")).check(env())
    assert viewer == Viewer(None, None)
    assert viewer.sees("anna@agency.example") and viewer.sees(None)


def test_a_viewer_limited_to_accounts_sees_no_mail_without_an_account():
    viewer = Viewer("anna", frozenset({"anna@agency.example"}))
    assert viewer.sees("anna@agency.example")
    assert not viewer.sees("piotr@agency.example") and not viewer.sees(None)


def test_basic_credentials_are_checked_against_the_hash_and_remembered(hashed):
    access = Access(WebConfig(users=(WebUser("kasia", hashed),)))
    assert access.check(env(authorization=basic("kasia", PASSWORD))) == Viewer("kasia")
    assert access.check(env(authorization=basic("kasia", PASSWORD))) == Viewer("kasia")
    with capture_logs() as logs:
        refused = access.check(env(authorization=basic("kasia", "wrong password")))
    assert isinstance(refused, Refusal) and refused.challenge
    assert refused.status == "401 Unauthorized"
    assert logs == [{"event": "web_login_refused", "user": "kasia", "log_level": "warning"}]
    assert "wrong password" not in str(logs)


@pytest.mark.parametrize("header", [
    "", "Bearer abc", "Basic !!!", "Basic " + "A" * 600,
    "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    "Basic " + base64.b64encode(b"no-colon").decode(),
])
def test_malformed_credentials_are_refused(hashed, header):
    access = Access(WebConfig(users=(WebUser("kasia", hashed),)))
    assert isinstance(access.check(env(authorization=header)), Refusal)


def test_an_unknown_user_is_refused_without_naming_who_exists(hashed):
    access = Access(WebConfig(users=(WebUser("kasia", hashed),)))
    with capture_logs() as logs:
        refused = access.check(env(authorization=basic("nobody", PASSWORD)))
    assert isinstance(refused, Refusal) and refused.status == "401 Unauthorized"
    assert logs[0]["user"] is None


def test_the_proxy_header_counts_only_from_the_proxy_address():
    web = WebConfig(trusted_proxy=TrustedProxy("10.0.0.1/32", "X-Auth-User"),
                    users=(WebUser("anna", None, frozenset({"anna@agency.example"})),))
    access = Access(web)
    assert access.check(env("10.0.0.1", x_auth_user="anna")) == Viewer(
        "anna", frozenset({"anna@agency.example"}))
    assert access.check(env("10.0.0.1", x_auth_user="kasia")) == Viewer("kasia")
    forged = access.check(env("10.0.0.9", x_auth_user="kasia"))
    assert isinstance(forged, Refusal) and forged.status == "403 Forbidden"
    nameless = access.check(env("10.0.0.1"))
    assert isinstance(nameless, Refusal) and nameless.status == "403 Forbidden"


def test_password_checks_wait_for_each_other_and_give_up_busy(hashed, monkeypatch):
    from ackwatch.web import access as module

    monkeypatch.setattr(module, "CHECK_WAIT_SECONDS", 0.01)
    access = Access(WebConfig(users=(WebUser("kasia", hashed),)))
    access._checking.acquire()  # another request is checking a password
    try:
        busy = access.check(env(authorization=basic("kasia", PASSWORD)))
    finally:
        access._checking.release()
    assert isinstance(busy, Refusal) and busy.status == "503 Service Unavailable"
    assert access.check(env(authorization=basic("kasia", PASSWORD))) == Viewer("kasia")


# --------------------------------------------------------------------------- failed-login limit

ATTACKER = "203.0.113.9"
COLLEAGUE = "198.51.100.20"


@pytest.fixture(scope="module")
def cheap() -> str:
    """A hash of PASSWORD that takes no time to check: these tests check many."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


def guess(access: Access, remote: str, times: int = 10, **headers: str) -> list:
    return [access.check(env(remote, authorization=basic("kasia", f"guess {n}"), **headers))
            for n in range(times)]


def test_ten_failed_sign_ins_from_an_address_are_answered_429_with_retry_after(cheap):
    access = Access(WebConfig(users=(WebUser("kasia", cheap),)))
    answers = guess(access, ATTACKER)
    assert [a.status for a in answers[:9]] == ["401 Unauthorized"] * 9
    assert answers[9].status == "429 Too Many Requests" and not answers[9].challenge
    assert 590 <= answers[9].retry_after <= 600
    # Even the right password is not checked from there for the rest of the window.
    limited = access.check(env(ATTACKER, authorization=basic("kasia", PASSWORD)))
    assert isinstance(limited, Refusal) and limited.status == "429 Too Many Requests"
    assert "try again in 10 minutes" in limited.reason


def test_a_successful_sign_in_does_not_reset_another_addresss_count(cheap):
    access = Access(WebConfig(users=(WebUser("kasia", cheap),)))
    guess(access, ATTACKER, times=9)
    assert access.check(env(COLLEAGUE, authorization=basic("kasia", PASSWORD))) == Viewer("kasia")
    assert guess(access, ATTACKER, times=1)[0].status == "429 Too Many Requests"


def test_a_sign_in_remembered_before_the_limit_still_gets_in(cheap):
    # A colleague behind the same office address signed in earlier: the page keeps working.
    access = Access(WebConfig(users=(WebUser("kasia", cheap),)))
    assert access.check(env(ATTACKER, authorization=basic("kasia", PASSWORD))) == Viewer("kasia")
    guess(access, ATTACKER)
    assert access.check(env(ATTACKER, authorization=basic("kasia", PASSWORD))) == Viewer("kasia")


def test_behind_the_trusted_proxy_the_forwarded_client_address_is_counted(cheap):
    web = WebConfig(trusted_proxy=TrustedProxy("10.0.0.1/32", "X-Auth-User"),
                    users=(WebUser("kasia", cheap),))
    access = Access(web)
    forwarded = f"192.0.2.200, {ATTACKER}"  # the proxy appended the address it saw
    assert guess(access, "10.0.0.1", x_forwarded_for=forwarded)[-1].status.startswith("429")
    # Another client of the same proxy is not limited by the attacker's failures.
    colleague = access.check(env("10.0.0.1", x_forwarded_for=COLLEAGUE,
                                 authorization=basic("kasia", PASSWORD)))
    assert colleague == Viewer("kasia")


def test_a_forwarded_address_from_anyone_but_the_trusted_proxy_is_not_believed(cheap):
    web = WebConfig(trusted_proxy=TrustedProxy("10.0.0.1/32", "X-Auth-User"),
                    users=(WebUser("kasia", cheap),))
    access = Access(web)
    for n in range(10):  # a new made-up address each time: the real one is counted
        last = access.check(env(ATTACKER, x_forwarded_for=f"192.0.2.{n}",
                                authorization=basic("kasia", "guess")))
    assert last.status == "429 Too Many Requests"
