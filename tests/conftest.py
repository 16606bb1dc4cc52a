"""Test-wide settings."""

from hypothesis import HealthCheck, settings

# The property tests check correctness, not speed. On a loaded 2-core CI machine, one draw once took 3.8 s
# (Hypothesis's too_slow health check failed the run), so timing checks are off for them.
settings.register_profile("dqhash", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("dqhash")


def pytest_addoption(parser):
    """Here, not in tests/e2e/conftest.py: pytest registers options only from the conftests it starts with."""
    parser.addoption(
        "--broker",
        choices=("embedded", "mock", "both"),
        default="both",
        help="the test broker(s) the e2e suite runs on: embedded (Tansu, tansu://), mock (librdkafka's, kafka://)",
    )

