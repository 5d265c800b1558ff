"""A chunked video in a real browser: uploaded through the SPA to a stack of two workers,
cut into chunks that both encode, joined, then played by dash.js in Chromium across every
chunk boundary, switching rendition at each one.

The source is 60 s of 720p with audio (720p and 480p renditions): long enough for four
chunks of about 15 s (``transcode.chunk_seconds``), short enough for the suite (the
issue's 90 s case runs at low resolution in ``tests/integration/test_chunked_transcode.py``).
At each boundary the test seeks to just before it, asks dash.js for the other rendition and waits
until playback is well past the boundary: a gap, an overlap or a timestamp jump between
two chunks stalls or errors there, and renditions whose segments did not line up would
not switch cleanly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from helpers import ffmpeg, read_all
from tritontube.devstack.stack import EmbeddedStack
from tritontube.domain.events import ChunkEncoded, TranscodeChunked
from tritontube.http.auth import mint_token
from tritontube.settings import Settings, TranscodeSettings
from tritontube.streams import catalogue
from tritontube.streams.records import EventCodec

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER = "e2e-chunks"
SECONDS = 60
READY_TIMEOUT_MS = 300_000


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """60 s of 1280x720 25 fps H.264 (a keyframe every 2 s) with a 440 Hz AAC tone."""
    path = tmp_path / "lecture.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-g", "50", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path),
    )  # fmt: skip
    return path


def chunk_events(settings: Settings, codec: EventCodec, video_id: str) -> list[Any]:
    """The video's events on transcode-chunk-results (from a thread: Playwright's sync API
    owns this one's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        records = pool.submit(
            asyncio.run, read_all(settings, catalogue.TRANSCODE_CHUNK_RESULTS.name, codec)
        ).result()
    return [value for key, value in records if key == video_id]


@pytest.mark.timeout(600)
def test_dash_js_plays_and_switches_renditions_across_every_chunk_boundary(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    browser: Any,
    source: Path,
    codec: EventCodec,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        transcode=TranscodeSettings(
            scratch_dir=tmp_path / "scratch", chunk_threshold_seconds=30.0, chunk_seconds=15.0
        )
    )
    stack = stack_factory(settings, with_api=True, workers=2)
    ready = stack.wait_ready(timeout=120)
    assert ready.get("ready"), json.dumps(ready)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console: list[str] = []
    page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    try:
        page.goto(stack.public_url)
        page.get_by_label("Access token").fill(mint_token(settings.auth, USER))
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("Title").fill("A minute in chunks")
        page.get_by_label("Video file").set_input_files(str(source))
        page.get_by_role("button", name="Upload").click()
        page.wait_for_url("**/#/watch/*", timeout=60_000)
        video_id = str(page.url).rsplit("/", 1)[-1]
        page.locator("#player-box").wait_for(state="visible", timeout=READY_TIMEOUT_MS)
        page.locator("#transcode").wait_for(state="hidden", timeout=READY_TIMEOUT_MS)

        events = chunk_events(stack.settings, codec, video_id)
        plan = next(e for e in events if isinstance(e, TranscodeChunked))
        assert len(plan.chunk_seconds) >= 4
        # Both workers encoded parts (each names itself in its results).
        assert len({e.worker for e in events if isinstance(e, ChunkEncoded)}) == 2
        boundaries = list(itertools.accumulate(plan.chunk_seconds))[:-1]

        page.get_by_role("button", name="Play").click()
        page.wait_for_function("() => document.getElementById('video').currentTime > 0.5")
        ids = page.evaluate(
            """() => window.tritontube.player.getRepresentationsByType('video').map(r => r.id)"""
        )
        assert len(ids) == 2, ids  # 720p and 480p
        page.evaluate(
            """() => window.tritontube.player.updateSettings(
                   {streaming: {abr: {autoSwitchBitrate: {video: false}}}})"""
        )
        for index, boundary in enumerate(boundaries):
            wanted = ids[index % 2]
            page.evaluate(
                """([t, id]) => {
                       const p = window.tritontube.player;
                       p.setRepresentationForTypeById('video', id, true);
                       p.seek(t);
                   }""",
                [boundary - 1.0, wanted],
            )
            page.wait_for_function(
                "b => document.getElementById('video').currentTime > b + 1.5",
                arg=boundary,
                timeout=45_000,
            )
            current = page.evaluate(
                "() => window.tritontube.player.getCurrentRepresentationForType('video').id"
            )
            assert current == wanted, (boundary, current, wanted)
        quality = page.evaluate(
            """() => { const q = document.getElementById('video').getVideoPlaybackQuality();
                       return {total: q.totalVideoFrames, dropped: q.droppedVideoFrames}; }"""
        )
        assert quality["total"] > 0
        errors = [c for c in console if c.startswith(("[pageerror]", "[error]"))]
        assert not [c for c in errors if "Playback error" in c or "pageerror" in c], errors
        assert not page.get_by_text("Playback error").is_visible()
    except BaseException:
        page.screenshot(path=str(artifacts_dir / "failure.png"), full_page=True)
        (artifacts_dir / "console.log").write_text("\n".join(console) + "\n")
        raise
    finally:
        page.close()
