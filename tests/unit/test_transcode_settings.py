"""TranscodeSettings: the timeout of an encode grows with the source."""

from __future__ import annotations

from tritontube.settings import TranscodeSettings


def test_the_longest_run_is_the_timeout_of_the_longest_accepted_source() -> None:
    settings = TranscodeSettings(
        timeout_seconds=600, timeout_per_source_second=2, max_duration_seconds=3600
    )
    assert settings.longest_run_seconds == 600 + 2 * 3600


def test_by_default_a_four_hour_upload_gets_a_day_and_an_hour() -> None:
    defaults = TranscodeSettings()
    assert defaults.max_duration_seconds == 4 * 3600
    assert defaults.longest_run_seconds == 3600 + 6 * 4 * 3600
