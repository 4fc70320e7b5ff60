"""``NEWSROOM_TIMEZONE``: the time zone of CMS date fields without an offset."""

from __future__ import annotations

import pytest

from chalicelib.errors import ConfigurationError
from chalicelib.settings import Settings


def test_timezone_defaults_to_utc_and_is_checked() -> None:
    assert Settings.from_env({}).timezone == "UTC"
    assert Settings.from_env({"NEWSROOM_TIMEZONE": "Europe/Paris"}).timezone == "Europe/Paris"
    with pytest.raises(ConfigurationError, match="NEWSROOM_TIMEZONE"):
        Settings.from_env({"NEWSROOM_TIMEZONE": "Mars/Olympus"})
