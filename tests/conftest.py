import os

from hypothesis import settings

# Deadlines flake on a loaded 2-core CI machine; the number of examples is what matters.
settings.register_profile("ci", deadline=None, max_examples=200, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


import pytest  # noqa: E402

from . import backends  # noqa: E402


@pytest.fixture(params=backends.NAMES)
def backend(request) -> backends.Backend:
    """Every installed array library; the core tests run once on each."""
    return backends.get(request.param)


@pytest.fixture(params=backends.FOREIGN)
def foreign(request) -> backends.Backend:
    """Every installed array library other than NumPy."""
    return backends.get(request.param)


@pytest.fixture(autouse=True)
def _restore_settings():
    """Tests may call logloss.set_config; each test starts from the settings it found."""
    import logloss

    saved = logloss.get_config()
    yield
    logloss.set_config(**saved)
