"""Shared fixtures.  One rule: every test draws its randomness from one seeded
``np.random.Generator`` (never the global ``np.random`` state)."""
import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A Generator seeded from the test's id: reproducible run to run, different per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
