"""The console in Debian's headless Chromium, driven by Playwright (its own browser download
is not needed): shared by the console tests and ``safehome bench board``."""

from __future__ import annotations

from playwright.async_api import Page

CHROMIUM = "/usr/bin/chromium"
#: a new life-safety alarm beeps with no click first, as on a center's screen
LAUNCH_ARGS = ["--autoplay-policy=no-user-gesture-required", "--no-sandbox"]


async def log_in(page: Page, url: str, token: str) -> None:
    """The console's login form with an API token; waits for the live board."""
    await page.goto(url)
    await page.click("button.use-token")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await page.wait_for_selector("main.board[data-loaded=yes]", timeout=15000)
    await page.wait_for_selector("[data-testid=connection].up", timeout=15000)
