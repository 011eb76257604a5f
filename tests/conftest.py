"""Test-suite configuration: tests marked ``slow`` (long sweeps, the full-length model/RTL
equivalence, RZ26-sized RTL programs) run only when asked for with ``-m slow`` (or a marker
expression naming ``slow``); ``make test`` skips them so it stays within minutes."""
import pytest


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow (PYTEST_ARGS='-m slow')")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
