"""The committed Python code of ``proto/web.proto`` is what ``make proto`` writes today.

A proto edit without ``make proto`` (or generated code edited by hand) fails here, with the
command that fixes it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "src" / "tritontube" / "v1"


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_proto.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    fresh = tmp_path / "tritontube" / "v1"
    names = sorted(p.name for p in fresh.iterdir())
    assert names == ["web_pb2.py", "web_pb2.pyi", "web_pb2_grpc.py"]
    stale = [n for n in names if (fresh / n).read_bytes() != (GENERATED / n).read_bytes()]
    assert not stale, f"{stale} differ from proto/web.proto: run `make proto` and commit"


def test_the_generated_module_describes_the_proto_service() -> None:
    from tritontube.v1 import web_pb2

    service = web_pb2.DESCRIPTOR.services_by_name["Web"]
    assert service.full_name == "tritontube.v1.Web"
    assert web_pb2.DESCRIPTOR.name == "tritontube/v1/web.proto"
    # The six RPCs of the design are there by name.
    assert {
        "CreateUploadURL",
        "CompleteUpload",
        "GetTranscodeStatus",
        "GetPlaybackInfo",
        "RecommendVideos",
        "SearchVideos",
    } <= set(service.methods_by_name)
