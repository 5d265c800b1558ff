"""The example consumer says what it needs: without it, it stops with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tritontube.streams.codec import schema_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "analytics_consumer.py"


@pytest.mark.parametrize("blocked", ["aiokafka", "fastavro"])
def test_a_missing_dependency_is_named_not_a_traceback(blocked: str) -> None:
    # sys.modules[name] = None makes "import name" fail as if the package were not installed.
    run = (
        f"import sys, runpy; sys.modules[{blocked!r}] = None; "
        f"sys.argv = ['analytics_consumer.py', {str(schema_dir())!r}]; "
        f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", run], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "analytics_consumer needs aiokafka and fastavro" in result.stderr
    assert "pip install aiokafka fastavro" in result.stderr
    assert "Traceback" not in result.stderr
