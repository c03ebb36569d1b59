"""Shared fixtures: the tests run on the ``tiny`` profile, built once per session into the project cache."""
import pytest

from ohlora_utils.models import provision
from ohlora_utils.profiles import get_profile


@pytest.fixture(scope="session")
def tiny_profile():
    profile = get_profile("tiny")
    provision(profile)
    return profile
