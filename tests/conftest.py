import pytest


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch):
    """Tests must not depend on the terminal they run in (as rich's own tests do)."""
    for var in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM"):
        monkeypatch.delenv(var, raising=False)
