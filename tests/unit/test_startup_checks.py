"""The shipped auth secret is public: `tritontube api`/`worker` refuse it outside dev mode;
`tritontube dev` draws a random secret per data directory, stores it 0600 and reuses it; the
API refuses to guess its own URL."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from tritontube.cli import (
    StartupRefusedError,
    check_secret,
    dev_settings,
    token_settings,
)
from tritontube.devstack.process import free_port
from tritontube.devstack.secret import (
    DevSecretError,
    load_or_create_dev_secret,
    read_dev_secret,
    secret_path,
)
from tritontube.settings import SHIPPED_AUTH_SECRET, AuthSettings, HttpSettings, Settings


def shipped(tmp_path: Path, **extra: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["api", "worker"])
def test_serving_commands_refuse_the_shipped_secret(tmp_path: Path, command: str) -> None:
    settings = shipped(tmp_path)
    assert settings.uses_shipped_secret
    with pytest.raises(StartupRefusedError, match="TRITONTUBE_AUTH__SECRET"):
        check_secret(settings, command)
    check_secret(shipped(tmp_path, dev_mode=True), command)  # a developer's machine
    check_secret(shipped(tmp_path, auth=AuthSettings(secret="s" * 40)), command)


def test_other_commands_do_not_need_a_secret(tmp_path: Path) -> None:
    for command in ("settings", "schemas", "topics", "replay", "archive", "dev"):
        check_secret(shipped(tmp_path), command)


@pytest.mark.parametrize("command", ["api", "worker"])
def test_the_command_exits_at_once_with_the_reason(tmp_path: Path, command: str) -> None:
    """The real entry point, on ports nobody uses: before the fix it started serving."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRITONTUBE_")}
    env.update(
        {
            "TRITONTUBE_HTTP__PORT": str(free_port()),
            "TRITONTUBE_WORKER__WEB_PORT": str(free_port()),
            "TRITONTUBE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "TRITONTUBE_DATA_DIR": str(tmp_path / "data"),
            "TRITONTUBE_WORKER__DATA_DIR": str(tmp_path / "worker"),
            "TRITONTUBE_SEARCH__PATH": str(tmp_path / "search"),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "tritontube.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refusing to start" in done.stderr and "TRITONTUBE_AUTH__SECRET" in done.stderr


def test_dev_draws_a_secret_per_data_dir_stores_it_0600_and_reuses_it(tmp_path: Path) -> None:
    first = dev_settings(shipped(tmp_path))
    secret = first.auth.secret.get_secret_value()
    assert secret != SHIPPED_AUTH_SECRET and len(secret) >= 48
    path = secret_path(tmp_path / "data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dev_settings(shipped(tmp_path)).auth.secret.get_secret_value() == secret
    other = dev_settings(Settings(data_dir=tmp_path / "other"))
    assert other.auth.secret.get_secret_value() != secret
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["auth-secret"]  # nothing aside
    # An explicit secret is left alone and nothing is written.
    mine = dev_settings(Settings(data_dir=tmp_path / "mine", auth=AuthSettings(secret="m" * 40)))
    assert mine.auth.secret.get_secret_value() == "m" * 40
    assert not (tmp_path / "mine").exists()


def test_dev_knows_its_own_url(tmp_path: Path) -> None:
    settings = dev_settings(shipped(tmp_path, http=HttpSettings(port=23123)))
    assert settings.http.public_url == "http://127.0.0.1:23123"
    assert settings.kafka.embedded_broker_compat


def test_token_create_signs_with_the_dev_stack_secret(tmp_path: Path) -> None:
    with pytest.raises(StartupRefusedError):
        token_settings(shipped(tmp_path))  # nothing to sign with
    secret = load_or_create_dev_secret(tmp_path / "data")
    assert token_settings(shipped(tmp_path)).auth.secret == SecretStr(secret)


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_or_create_dev_secret(tmp_path)
    secret_path(tmp_path).chmod(0o644)
    with pytest.raises(DevSecretError, match="readable by others"):
        read_dev_secret(tmp_path)
    secret_path(tmp_path).chmod(0o600)
    secret_path(tmp_path).write_text("short\n")
    with pytest.raises(DevSecretError, match="no usable secret"):
        read_dev_secret(tmp_path)


@pytest.mark.parametrize(
    ("http", "guessed"),
    [
        (HttpSettings(), False),
        (HttpSettings(host="0.0.0.0"), True),
        (HttpSettings(port=0), True),
        (HttpSettings(host="0.0.0.0", public_url="https://tube.example/"), False),
    ],
)
def test_the_api_refuses_to_guess_its_url(http: HttpSettings, guessed: bool) -> None:
    assert http.base_url_is_guessed is guessed
