"""Run the Apache Avro Java reference implementation (Debian ``libavro-java``) from tests.

``examples/DecodeWithAvsc.java`` is an outside consumer's decoder: it uses nothing but the Avro
jars and the ``.avsc`` files. ``tools/install-system-deps.sh`` installs the jars (and a JDK when
``javac`` is missing); Java runs the single source file directly, so nothing is built.
Import as ``from java_avro import ...`` (this folder is on ``sys.path``, see helpers.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DECODER = ROOT / "examples" / "DecodeWithAvsc.java"
JARS = Path("/usr/share/java")
#: Avro 1.8 and what it needs at run time (Jackson 1, SLF4J with its no-op binding).
CLASSPATH = [
    JARS / name
    for name in (
        "avro.jar",
        "jackson-core-asl.jar",
        "jackson-mapper-asl.jar",
        "slf4j-api.jar",
        "slf4j-nop.jar",
    )
]
#: A short-lived JVM starts about a third faster with only the first JIT tier and serial GC.
FAST_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
INSTALL_HINT = "run tools/install-system-deps.sh (Debian libavro-java and a JDK)"


def classpath() -> str:
    missing = [str(p) for p in CLASSPATH if not p.is_file()]
    java = shutil.which("java")
    assert java and not missing, f"Avro Java unavailable ({missing or 'no java'}): {INSTALL_HINT}"
    return ":".join(str(p) for p in CLASSPATH)


def java_decode(
    schema_dir: Path, messages: Iterable[tuple[str, bytes]], timeout: float = 120
) -> tuple[list[dict[str, Any]], str]:
    """Decode ``(label, message)`` pairs with Avro Java: one result per message, and stderr.

    A result is ``{"label", "record", "legacy", "value"}`` with the value in Avro's JSON
    encoding, or ``{"label", "error"}``.
    """
    lines = "".join(f"{label}\t{data.hex()}\n" for label, data in messages)
    result = subprocess.run(
        ["java", *FAST_START, "-cp", classpath(), str(DECODER), str(schema_dir)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr
