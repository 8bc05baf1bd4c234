"""Shared test settings: hypothesis profiles (numba compiles on first call, so no deadline)."""

import os

import pytest
from hypothesis import HealthCheck, settings

import taylorsketch as ts

settings.register_profile("dev", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=30, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="module")
def paper():
    """The paper's set-up (documents, vocabulary, initial parameters), once per test module
    (a module may define its own ``paper``)."""
    return ts.paper.setup(seed=42)
