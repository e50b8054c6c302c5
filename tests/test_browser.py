"""The admin pages in a real browser: Playwright drives Debian's Chromium against ``sigverify serve``.

The server is the real ``sigverify serve`` (waitress) with the fast fake model. Every step saves a
screenshot under ``test-artifacts/browser/``. ``make test`` installs Chromium through apt when it is
missing; outside CI the test is skipped, saying why, on a machine without it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from siamese.preprocess import CANVAS_WIDTH
from tests.conftest import REPO_ROOT, write_signature
from tests.web import serving

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
ADMIN_PASSWORD = "browser-admin-password"
# Headless, and none of the browser's own network traffic (updates, metrics, safe browsing, sync).
CHROMIUM_ARGS = [
    "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
    "--disable-sync", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--dns-prefetch-disable", "--no-pings", "--no-first-run", "--metrics-recording-only",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
]


def chromium_or_skip() -> Path:
    """The Chromium binary; skip (outside CI) or fail (in CI) when it is not installed."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is not installed (make test installs it with apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def page(tmp_path: Path, fake_model_file: Path):  # type: ignore[no-untyped-def]
    """A Chromium page and the URL of a fresh ``sigverify serve``; collects console errors."""
    from playwright.sync_api import sync_playwright

    executable = chromium_or_skip()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {"SIGVERIFY_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with serving(tmp_path / "var", fake_model_file, env) as served, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=served.url)
        opened = context.new_page()
        opened.set_default_timeout(15_000)
        errors: list[str] = []
        opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        opened.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield opened, errors
        finally:
            context.close()
            browser.close()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Save a full-page screenshot of this step."""
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def verify(page, customer: str, image: Path) -> tuple[str, float, float]:  # type: ignore[no-untyped-def]
    """Submit the verify form; returns the decision text, score and threshold read from the page."""
    page.get_by_role("link", name="Verify", exact=True).first.click()
    page.fill("input[name=customer_id]", customer)
    page.set_input_files("input[name=image]", str(image))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_selector("#decision")
    overlay = page.locator("img[alt=overlay]")
    assert overlay.evaluate("img => img.complete && img.naturalWidth") == CANVAS_WIDTH  # the image loaded
    return (page.inner_text("#decision").strip(), float(page.inner_text("#score")),
            float(page.inner_text("#threshold")))


def test_enroll_verify_and_delete_in_a_browser(page, tmp_path: Path):  # type: ignore[no-untyped-def]
    page, errors = page
    images = tmp_path / "images"
    references = [write_signature(images, 3, sample) for sample in range(3)]
    genuine = write_signature(images, 3, 5)
    forged = write_signature(images, 3, 5, forgery=True)

    page.goto("/")
    assert page.url.endswith("/login?next=%2F")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    shot(page, "01-login")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_selector("text=Recent verifications")
    shot(page, "02-dashboard")

    page.get_by_role("link", name="Enroll", exact=True).first.click()
    page.fill("input[name=customer_id]", "cust-042")
    page.fill("input[name=display_name]", "Ada Example")
    page.set_input_files("input[name=images]", [str(path) for path in references])
    page.wait_for_function("document.querySelectorAll('#preview-images img').length === 3")
    shot(page, "03-enroll-form")
    page.get_by_role("button", name="Enroll").click()
    page.wait_for_selector("#enroll-result")
    assert "Created customer" in page.inner_text("#enroll-result")
    assert page.locator("table img").count() == 3
    shot(page, "04-enrolled")

    decision, score, threshold = verify(page, "cust-042", genuine)
    assert decision == "MATCH" and score >= threshold
    assert page.locator("#reference-scores tbody tr").count() == 3
    shot(page, "05-verify-genuine")
    decision, score, threshold = verify(page, "cust-042", forged)
    assert decision == "NO MATCH" and score < threshold
    shot(page, "06-verify-forged")
    page.set_viewport_size({"width": 768, "height": 1024})  # a tablet held upright
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "06-verify-forged-tablet")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_load_state()  # the click waits for the new page to start loading, not to be parsed
    assert "1 accepted, 1 rejected" in page.inner_text("main")
    assert page.locator("svg.histogram rect").count() == 10
    shot(page, "07-dashboard")

    page.get_by_role("link", name="cust-042").first.click()
    page.wait_for_load_state()
    assert page.locator(".gallery img").count() == 3
    assert re.search(r"2 verifications", page.inner_text("main"))
    page.get_by_role("link", name="Delete customer").click()
    page.fill("input[name=confirm_id]", "cust-042")
    shot(page, "08-delete-confirm")
    page.get_by_role("button", name="Delete for good").click()
    page.wait_for_selector("text=Deleted customer cust-042")
    assert "No customer" in page.inner_text("main")
    shot(page, "09-deleted")
    assert errors == []  # no script error, no resource blocked by the content security policy
