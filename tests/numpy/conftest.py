"""Fixtures of the NumPy engine's tests."""

from __future__ import annotations

import pytest

import logloss
from logloss._numpy import kernels as paths


@pytest.fixture(params=paths.supported_paths())
def K(request):
    """The kernel module of one CPU path this machine runs, made the active one for calls through
    the public API (each test runs once per path)."""
    paths.set_cpu_path(request.param)
    logloss.set_config(engine="auto")
    yield paths.module()
    paths.set_cpu_path(None)
