"""The ``cluster`` section: the lease time and the renewal of several nodes' leases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from ackwatch.config import ConfigError, load_config

BASE = {
    "timezone": "Europe/Warsaw",
    "agency": {"domains": ["agency.example"]},
    "policies": {"default": {"window": "2h", "clock": "calendar"}},
    "mailboxes": [{"name": "a", "host": "imap.example", "username": "a", "password_env": "A"}],
}


def _load(tmp_path: Path, cluster: object):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({**BASE, "cluster": cluster}), encoding="utf-8")
    return load_config(path, environ={})


def test_a_lease_and_its_renewal_in_durations(tmp_path):
    c = _load(tmp_path, {"lease": "3s", "renew": "1s"}).cluster
    assert (c.lease, c.renew) == (dt.timedelta(seconds=3), dt.timedelta(seconds=1))


def test_a_renewal_longer_than_half_the_lease_is_refused_with_its_key_path(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"lease": "10s", "renew": "6s"})
    assert [str(p).split(":")[0] for p in info.value.problems] == ["cluster.renew"]
    assert "config.yaml: cluster.renew: must be at most half" in str(info.value)


def test_an_unknown_cluster_key_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, {"leases": "10s"})
    assert "cluster.leases" in str(info.value.problems[0])
