"""Hypothesis profiles, the fixtures that keep cyconv's settings per test, and the report header
that shows which cyconv the tests import (the compiled, installed package).

CYCONV_HYPOTHESIS_PROFILE=quick (default) keeps the suite fast; =thorough runs many more examples.
Shared helpers and tolerances live in helpers.py, the independent references in reference.py.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

import cyconv

settings.register_profile(
    "quick", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("CYCONV_HYPOTHESIS_PROFILE", "quick"))


@pytest.fixture
def restore_settings():
    """cyconv's run-time settings (kernel threads, workspace limit) put back after the test."""
    saved = cyconv.get_num_threads(), cyconv.get_max_workspace()
    yield
    cyconv.set_num_threads(saved[0])
    cyconv.set_max_workspace(saved[1])


@pytest.fixture
def one_thread(restore_settings):
    """One kernel thread for the test: thousands of tiny calls run fastest on shared cores."""
    cyconv.set_num_threads(1)


def pytest_report_header(config):
    import cyconv._im2col

    return [
        f"cyconv from {os.path.dirname(cyconv._im2col.__file__)}",
        f"hypothesis profile: {settings._current_profile}",
    ]
