"""The README path in a real browser: sign in, upload through the page, watch it transcode, play.

Headless Debian Chromium driven by Playwright against the embedded stack (object store, broker,
worker, API) on free loopback ports. The clip goes browser -> object store (pre-signed POST)
-> completeUpload -> video-state agent -> transcode agent -> READY; dash.js then plays the
signed manifest and follows the signed segment URLs. On failure a screenshot, the page's
console and the network log are kept in the test's artifacts folder (service logs too).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tritontube.devstack.stack import EmbeddedStack
from tritontube.http.auth import mint_token
from tritontube.settings import Settings

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

READY_TIMEOUT_MS = 240_000
USER = "e2e-alice"


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 4 s 320x240 H.264/AAC MP4 with a moving test pattern and a tone."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path / "clip.mp4"
    subprocess.run(
        [
            ffmpeg, "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(out),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return out


class Evidence:
    """What the page did, kept for assertions and, on failure, as artifacts."""

    def __init__(self) -> None:
        self.console: list[str] = []
        self.network: list[str] = []
        self.transcode_statuses: list[str] = []
        self.media: list[tuple[int, str]] = []
        self.watch_events: list[dict[str, Any]] = []
        self.watch_answers: list[int] = []

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))
        page.on("requestfailed", lambda r: self.network.append(f"FAILED {r.method} {r.url}"))
        page.on("response", self._response)
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/watchEvents"):
            self.watch_events.append(request.post_data_json)

    def _response(self, response: Any) -> None:
        url, status = response.url, response.status
        self.network.append(f"{status} {response.request.method} {url}")
        if "/media/" in url:
            self.media.append((status, url))
        elif url.endswith("/transcodeStatus") and status == 200:
            with contextlib.suppress(Exception):  # the page may have navigated meanwhile
                self.transcode_statuses.append(response.json()["status"])
        elif url.endswith("/watchEvents"):
            self.watch_answers.append(status)

    def save(self, page: Any, folder: Path) -> None:
        with contextlib.suppress(playwright_api.Error):
            page.screenshot(path=str(folder / "failure.png"), full_page=True)
        (folder / "console.log").write_text("\n".join(self.console) + "\n")
        (folder / "network.log").write_text("\n".join(self.network) + "\n")


@contextlib.contextmanager
def kept_on_failure(page: Any, evidence: Evidence, folder: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        evidence.save(page, folder)
        raise


def sign_in(page: Any, token: str) -> None:
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    playwright_api.expect(page.get_by_text(f"Signed in as {USER}")).to_be_visible()


def upload(page: Any, clip: Path) -> str:
    """Upload through the form; the page then opens the video's watch page."""
    page.get_by_label("Title").fill("Browser test pattern")
    page.get_by_label("Description").fill("Uploaded by the end-to-end test")
    page.get_by_label("Tags").fill("e2e, pattern")
    page.get_by_label("Video file").set_input_files(str(clip))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/#/watch/*", timeout=60_000)
    assert page.locator("#up-progress").evaluate("p => p.value") == 100
    return str(page.url).rsplit("/", 1)[-1]


def wait_until_playable(page: Any, evidence: Evidence) -> None:
    try:
        page.locator("#player-box").wait_for(state="visible", timeout=READY_TIMEOUT_MS)
        page.locator("#transcode").wait_for(state="hidden", timeout=READY_TIMEOUT_MS)
    except playwright_api.TimeoutError:
        seen = list(dict.fromkeys(evidence.transcode_statuses))
        raise AssertionError(
            f"not READY within {READY_TIMEOUT_MS // 1000} s; statuses seen: {seen} "
            "(is the transcode agent running? see logs/worker.log)"
        ) from None


def play(page: Any) -> dict[str, Any]:
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(
        "() => document.getElementById('video').currentTime > 1.5", timeout=60_000
    )
    representation: dict[str, Any] = page.evaluate(
        """() => {
            const r = window.tritontube.player.getCurrentRepresentationForType('video');
            return r && {id: r.id, width: r.width, height: r.height, bandwidth: r.bandwidth};
        }"""
    )
    return representation


@pytest.mark.timeout(420)
def test_upload_transcode_and_play_in_a_real_browser(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    browser: Any,
    clip: Path,
    artifacts_dir: Path,
) -> None:
    settings = make_settings()
    stack = stack_factory(settings, with_api=True)
    ready = stack.wait_ready(timeout=90)
    assert ready.get("ready"), json.dumps(ready)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    evidence = Evidence()
    evidence.attach(page)
    try:
        with kept_on_failure(page, evidence, artifacts_dir):
            page.goto(stack.public_url)
            sign_in(page, mint_token(settings.auth, USER))
            video_id = upload(page, clip)
            wait_until_playable(page, evidence)
            assert evidence.transcode_statuses[-1] == "READY", evidence.transcode_statuses
            representation = play(page)

            # dash.js selected a rendition the API announced, and played it.
            info = page.request.get(
                f"{stack.public_url}/v1/videos/{video_id}/playbackInfo",
                headers={"Authorization": f"Bearer {mint_token(settings.auth, USER)}"},
            ).json()
            assert representation is not None
            announced = {(r["width"], r["height"]) for r in info["renditions"]}
            assert (representation["width"], representation["height"]) in announced
            assert page.locator("#quality").inner_text().startswith("Quality: ")

            # The player followed signed segment URLs; nothing under /media/ was refused.
            segments = [u for s, u in evidence.media if u.endswith(".m4s")]
            assert segments and all(s in (200, 206, 304) for s, _ in evidence.media)
            assert all(f"/{video_id}/dash/" in u for u in segments)
            tampered = info["manifestUrl"].replace(f"/{video_id}/", "/someone-else/")
            assert page.request.get(tampered).status == 403

            # Watch events: a PLAY with a unique id was sent and accepted (or the endpoint
            # is absent, which the page tolerates).
            page.get_by_role("button", name="Pause").click()
            page.wait_for_function("() => window.tritontube.watchEvents.length >= 2")
            kinds = [e["kind"] for e in evidence.watch_events]
            assert kinds[:2] == ["PLAY", "PAUSE"], kinds
            ids = [e["eventId"] for e in evidence.watch_events]
            assert len(set(ids)) == len(ids)
            page.wait_for_timeout(500)
            assert set(evidence.watch_answers) <= {202, 404}, evidence.watch_answers
            assert not [c for c in evidence.console if c.startswith("[pageerror]")]
    finally:
        context.close()
