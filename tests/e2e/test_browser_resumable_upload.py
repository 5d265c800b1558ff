"""A large upload through the SPA in headless Chromium, interrupted and resumed.

The file (22 MiB, parts of 5 MiB set through the settings: five parts) goes up as an S3
multipart upload straight to the embedded object store. The connection to the store drops for
every part after the second (Playwright aborts those requests), the page says so; the page is
then reloaded: the progress bar still shows what is stored, and choosing the same file again
sends only the missing parts, after which completeUpload joins them. Checked from the browser's
own network log and from the object store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import ffmpeg
from tritontube.devstack.stack import EmbeddedStack
from tritontube.http.auth import mint_token
from tritontube.settings import Settings, UploadSettings
from tritontube.storage.s3 import S3ObjectStore

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MiB = 1024**2
USER = "e2e-resumer"
PART = re.compile(r"[?&]partNumber=(\d+)")


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """A real MP4 header (what completeUpload sniffs), padded to 22 MiB."""
    clip = tmp_path / "head.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=1",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))  # fmt: skip
    data = clip.read_bytes()
    out = tmp_path / "holiday.mp4"
    out.write_bytes(data + bytes(22 * MiB - len(data)))
    return out


def part_number(url: str) -> int | None:
    match = PART.search(url)
    return int(match.group(1)) if match else None


@pytest.mark.timeout(300)
def test_an_interrupted_upload_resumes_after_a_reload_without_resending_parts(
    make_settings: Callable[..., Settings],
    stack_factory: Callable[..., EmbeddedStack],
    browser: Any,
    big_file: Path,
    artifacts_dir: Path,
) -> None:
    settings = make_settings(
        transcode_agent=False,  # the upload is what is under test, not the encode
        upload=UploadSettings(multipart_threshold_bytes=MiB, part_size_bytes=5 * MiB),
    )
    stack = stack_factory(settings, with_api=True)
    assert stack.wait_ready(timeout=90).get("ready")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sent: list[tuple[int, int]] = []  # (part number, HTTP status) of every part PUT that ended
    console: list[str] = []
    page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    page.on(
        "requestfailed",
        lambda r: console.append(f"[failed] {r.method} {r.url[:120]} {r.failure}"),
    )
    page.on(
        "requestfinished",
        lambda r: (
            sent.append((n, r.response().status))
            if r.method == "PUT" and (n := part_number(r.url)) is not None
            else None
        ),
    )
    try:
        page.goto(stack.public_url)
        page.get_by_label("Access token").fill(mint_token(settings.auth, USER))
        page.get_by_role("button", name="Sign in").click()
        playwright_api.expect(page.get_by_text(f"Signed in as {USER}")).to_be_visible()

        # 1. The connection to the store drops for every part after the second.
        page.route(
            re.compile(r".*[?&]partNumber=([3-9]|\d\d).*"),
            lambda route: route.abort("connectionreset"),
        )
        page.get_by_label("Title").fill("A long holiday video")
        page.get_by_label("Video file").set_input_files(str(big_file))
        page.get_by_role("button", name="Upload").click()
        status = page.locator("#up-status")
        playwright_api.expect(status).to_contain_text("choose the same file again", timeout=60_000)
        assert sorted(n for n, code in sent if code == 200) == [1, 2], sent
        stored = json.loads(page.evaluate("localStorage.getItem('tritontube.pendingUploads')"))
        (record,) = stored.values()
        assert sorted(int(n) for n in record["done"]) == [1, 2]
        assert record["partCount"] == 5

        # 2. A reload: the progress survives it, and the page offers to resume.
        page.unroute_all()
        page.reload()
        playwright_api.expect(page.get_by_text(f"Signed in as {USER}")).to_be_visible()
        playwright_api.expect(page.locator("#up-resume")).to_contain_text("45% stored")
        assert page.locator("#up-progress").evaluate("p => p.value") == 45  # 10 of 22 MiB
        before = len(sent)

        # 3. The same file again: only parts 3-5 are sent, then the parts are joined.
        page.get_by_label("Video file").set_input_files(str(big_file))
        page.get_by_role("button", name="Upload").click()
        page.wait_for_url("**/#/watch/*", timeout=120_000)
        resent = [n for n, _ in sent[before:]]
        assert sorted(resent) == [3, 4, 5], resent
        assert all(code == 200 for _, code in sent[before:])
        assert page.locator("#up-progress").evaluate("p => p.value") == 100
        assert page.evaluate("localStorage.getItem('tritontube.pendingUploads')") == "{}"
        video_id = str(page.url).rsplit("/", 1)[-1]
        assert video_id == record["videoId"]
        answer = page.request.get(
            f"{stack.public_url}/v1/videos/{video_id}/transcodeStatus",
            headers={"Authorization": f"Bearer {mint_token(settings.auth, USER)}"},
        ).json()
        assert answer["status"] == "PENDING_TRANSCODE", answer
    except BaseException:
        page.screenshot(path=str(artifacts_dir / "page.png"), full_page=True)
        (artifacts_dir / "console.log").write_text("\n".join(console))
        (artifacts_dir / "parts.log").write_text("\n".join(map(str, sent)))
        raise
    finally:
        context.close()
    # The joined object is the file, byte for byte (read in a thread of its own: Playwright's
    # sync API keeps an event loop running in this one).
    store = S3ObjectStore.from_settings(settings.s3)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            key = f"uploads/{video_id}/source.mp4"
            joined = pool.submit(asyncio.run, store.get_bytes(key)).result()
    finally:
        store.close()
    assert joined == big_file.read_bytes()
