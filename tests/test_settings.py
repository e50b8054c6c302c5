"""Settings: environment variables, CLI overrides and derived paths."""

from __future__ import annotations

from pathlib import Path

from store.settings import Settings


def test_defaults_derive_sqlite_and_index_paths_from_data_dir():
    settings = Settings.from_env({})
    assert settings.data_dir == Path("var")
    assert settings.database_url == "sqlite:///var/sigverify.db"
    assert settings.index_path == Path("var/vectors.index")
    assert settings.model_path is None and settings.threshold is None


def test_environment_is_read_and_typed():
    settings = Settings.from_env({"SIGVERIFY_DATA_DIR": "/tmp/x", "SIGVERIFY_THRESHOLD": "0.7",
                                  "SIGVERIFY_IVF_MIN_SIZE": "5", "HOME": "/root"})
    assert settings.data_dir == Path("/tmp/x")
    assert settings.database_url == "sqlite:////tmp/x/sigverify.db"
    assert settings.threshold == 0.7 and settings.ivf_min_size == 5


def test_cli_overrides_beat_environment_and_none_is_ignored():
    settings = Settings.from_env({"SIGVERIFY_DATA_DIR": "/env"}, data_dir=Path("/flag"), model_path=None)
    assert settings.data_dir == Path("/flag")
    assert settings.model_path is None


def test_explicit_database_url_is_kept_when_data_dir_changes():
    explicit = Settings(database_url="postgresql+psycopg://db/test").with_overrides(data_dir="/d")
    assert explicit.database_url == "postgresql+psycopg://db/test"
    derived = Settings().with_overrides(data_dir="/d")
    assert derived.database_url == "sqlite:////d/sigverify.db"


def test_web_settings_are_typed():
    settings = Settings.from_env({"SIGVERIFY_MAX_REQUEST_BYTES": "1000", "SIGVERIFY_LOGIN_MAX_ATTEMPTS": "3",
                                  "SIGVERIFY_SESSION_COOKIE_SECURE": "true"})
    assert settings.max_request_bytes == 1000 and settings.login_max_attempts == 3
    assert settings.session_cookie_secure is True
    assert Settings.from_env({"SIGVERIFY_SESSION_COOKIE_SECURE": "0"}).session_cookie_secure is False
