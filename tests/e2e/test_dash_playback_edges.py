"""Odd sources whose DASH output dash.js refused in Chromium, played to the end there.

Each clip goes through the real FfmpegTranscoder (probe, plan, one-pass DASH); the output
folder is served over loopback HTTP with the SPA's vendored dash.js, and the test waits for
the video element's ``ended`` event. Before the fixes these failed in the browser only:
a one-frame clip got ``mediaPresentationDuration="PT0.0S"`` (dash.js error 31, "Must have
@mediaPresentationDuration"), and a 128x96 source was labelled H.264 level 1b, which
Chromium's MediaCapabilities rejects (dash.js error 32, "No streams to play"). A clip whose
audio outlasts its video was cut at the video's end; it now plays to the audio's end.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from helpers import ffmpeg
from tritontube.domain.media import LADDER, plan_renditions
from tritontube.media.ffmpeg import FfmpegTranscoder

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DASH_JS = Path(__file__).parents[2] / "src/tritontube/http/static/vendor/dash.all.min.js"
PAGE = """<!doctype html>
<html><body><video id="video" muted playsinline></video>
<script src="dash.all.min.js"></script>
<script>
  window.seen = {events: [], errors: []};
  const video = document.getElementById("video");
  for (const name of ["playing", "ended", "error"]) {
    video.addEventListener(name, () => window.seen.events.push(name));
  }
  const player = dashjs.MediaPlayer().create();
  player.on(dashjs.MediaPlayer.events.ERROR,
            e => window.seen.errors.push(JSON.stringify(e.error || e).slice(0, 300)));
  player.initialize(video, new URLSearchParams(location.search).get("mpd"), true);
</script></body></html>
"""
#: name -> (lavfi video, further ffmpeg arguments, seconds the package plays)
CLIPS = {
    # One frame at 30 fps: 33 ms of video.
    "one_frame": ("testsrc2=size=320x240:rate=30", ("-frames:v", "1"), 1 / 30),
    # 8x6 macroblocks at 30 fps: within level 1b's limits at the source-sized bitrate.
    "thumbnail_size": ("testsrc2=size=128x96:rate=30:duration=2", (), 2.0),
    # 1 s of video, 3 s of audio: the last picture is held while the audio plays on.
    "long_audio": (
        "testsrc2=size=320x240:rate=30:duration=1",
        ("-f", "lavfi", "-i", "sine=frequency=440:duration=3"),
        3.0,
    ),
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served on a free loopback port: (folder, base URL)."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.copy(DASH_JS, root / DASH_JS.name)
    (root / "index.html").write_text(PAGE)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def package(source: Path, out_dir: Path) -> None:
    transcoder = FfmpegTranscoder(preset="veryfast", timeout_seconds=60)  # High profile
    probe = await transcoder.probe(source)
    await transcoder.transcode(source, out_dir, plan_renditions(probe, LADDER), probe)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_dash_js_plays_the_package_to_the_end(
    clip: str, site: tuple[Path, str], browser: Any, tmp_path: Path
) -> None:
    root, base = site
    lavfi, extra, seconds = CLIPS[clip]
    source = tmp_path / f"{clip}.mp4"
    ffmpeg("-f", "lavfi", "-i", lavfi, *extra, "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(source))  # fmt: skip
    # Playwright's sync API runs an event loop in this thread: encode from another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, package(source, root / clip)).result()

    page = browser.new_page()
    try:
        page.goto(f"{base}/index.html?mpd=/{clip}/manifest.mpd")
        page.wait_for_function(
            "() => window.seen.events.includes('ended') || window.seen.errors.length > 0",
            timeout=30_000,
        )
        seen = page.evaluate("window.seen")
        position = page.evaluate("document.getElementById('video').currentTime")
    finally:
        page.close()
    assert seen["errors"] == []
    assert "ended" in seen["events"], seen
    assert position == pytest.approx(seconds, abs=0.05)
