"""The console renders in zh-CN (default) and en with no untranslated key on the board and
in a case, switches language without logging out, and fits a phone's width."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page

import protocols as p
from safehome.testing.console import log_in
from tests.console.conftest import District, page_until, watch
from tests.support.hub_gateway import ScriptedGateway

pytestmark = pytest.mark.slow

UNTRANSLATED = "⟦"


async def text_of(page: Page) -> str:
    return str(await page.evaluate("document.body.innerText + ' ' + document.title"))


async def assert_translated(page: Page, lang: str) -> str:
    text = await text_of(page)
    assert UNTRANSLATED not in text, text
    assert await page.evaluate("document.documentElement.lang") == lang
    return text


async def test_zh_cn_by_default_en_on_request_and_a_phone_width(
    district: District, browser: Browser, console_errors: list[str]
) -> None:
    # a phone: 390 px wide
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = watch(await context.new_page(), console_errors)
    await page.goto(district.url)
    await page.wait_for_selector("form.login")
    login = await assert_translated(page, "zh-CN")
    assert "访问令牌" in login
    await log_in(page, district.url, district.tokens["ws1-a"])

    gw = ScriptedGateway(district.secured, "gw-1").connect()
    try:
        ev = gw.event(p.EventKind.GAS, sensor="smoke-1")
        gw.send(ev)
        await gw.acked([ev.id])
        await page.locator("li[data-alarm]").first.wait_for(timeout=10000)
        board = await assert_translated(page, "zh-CN")
        assert "燃气泄漏" in board and "待处置报警" in board
        # nothing wider than the phone: no sideways scrolling
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        await page.locator("li[data-alarm] a").first.click()
        await page.wait_for_selector("main.case[data-state]")
        case = await assert_translated(page, "zh-CN")
        assert "确认" in case and "处置记录" in case
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        await page.select_option("header select", "en")
        await page_until(page, "document.documentElement.lang === 'en'")
        case_en = await assert_translated(page, "en")
        assert "Acknowledge" in case_en and "History" in case_en and "确认" not in case_en
        await page.click("a.back")
        board_en = await assert_translated(page, "en")
        assert "Gas leak" in board_en and "Open alarms" in board_en

        # the choice is kept for this user's browser
        await page.reload()
        await page.wait_for_selector("main.board[data-loaded=yes]")
        assert "Open alarms" in await assert_translated(page, "en")
    finally:
        gw.close()
