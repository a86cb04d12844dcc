"""Fixtures of the tests in this folder."""

from tests.support.storing import store  # noqa: F401 - fixture
