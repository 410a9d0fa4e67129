"""Shared test set-up: hypothesis profiles (bounded in CI) and the gpu marker's skip."""
import os
import socket

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Tests never reach the internet: a data download that a test did not arrange (an example run without
# --no-download on missing data, say) goes to this empty local mirror and fails at once, not to the
# official mirrors (see minigrad/data/download.py, mirror_urls).
os.environ.setdefault("MINIGRAD_DATA_MIRROR", "file:///nonexistent/minigrad-test-mirror/")


def pytest_collection_modifyitems(config, items):
    """Skip tests marked `gpu` unless CuPy and a CUDA device are present."""
    from minigrad import backend

    if backend.gpu_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def no_network(monkeypatch):
    """Fail any test that opens a network connection (data tests use local files only)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def reference_only():
    """Every op runs its reference code (minigrad/ops/): the fast layer's table is emptied for the
    test and filled again afterwards."""
    import minigrad
    from minigrad.ops import registry

    registry.clear()
    try:
        yield
    finally:
        minigrad.fast.install()
