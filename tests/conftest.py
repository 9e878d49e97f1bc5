"""Hypothesis profiles and the guard that the tests import the compiled, installed package.

CYCONV_HYPOTHESIS_PROFILE=quick (default) keeps the suite fast; =thorough runs many more examples.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "quick", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("CYCONV_HYPOTHESIS_PROFILE", "quick"))


def pytest_report_header(config):
    import cyconv._im2col

    return [
        f"cyconv from {os.path.dirname(cyconv._im2col.__file__)}",
        f"hypothesis profile: {settings._current_profile}",
    ]
