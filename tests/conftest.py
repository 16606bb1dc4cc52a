"""Test-wide settings."""

from hypothesis import HealthCheck, settings

from dqhash.core.hashing import RowHasher

# The property tests check correctness, not speed. On a loaded 2-core CI machine, one draw once took 3.8 s
# (Hypothesis's too_slow health check failed the run), so timing checks are off for them.
settings.register_profile("dqhash", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("dqhash")

# The first hasher built raises Python's recursion limit, once, to the nesting depth the spec allows. Built here,
# before any test: a property test that built the first one would see the limit change under it, and Hypothesis
# warns that it cannot put the limit back.
RowHasher()


def pytest_addoption(parser):
    """Here, not in tests/e2e/conftest.py: pytest registers options only from the conftests it starts with."""
    parser.addoption(
        "--broker",
        choices=("embedded", "mock", "both"),
        default="both",
        help="the test broker(s) the e2e suite runs on: embedded (Tansu, tansu://), mock (librdkafka's, kafka://)",
    )


#: e2e modules by how long their tests run, longest first: with ``-n 4 --dist worksteal`` (the README's test command)
#: the longest start first and idle processes steal what is left, so no process finishes alone with a long test
LONGEST_FIRST = ("test_zombies", "test_replicas", "test_faults", "test_recovery", "test_shutdown", "test_scenarios")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a module, the order stays
