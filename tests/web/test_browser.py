"""The marketplace clicked through in a real headless Chromium against the coordinator over
HTTP: browse and filter, share a filtered address, open a GPU, book it with a client key,
see it booked, release it and see the refund, write a review, moderate it as admin, change
a price as its provider; the API's sentence shown on failure; statuses that change live."""

from __future__ import annotations

import re
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from aitbc.cli.screenshots import SIZES, pages, take
from aitbc.web.demo import seed
from tests.support.api import ADMIN_KEY, Api
from tests.web.web_support import (
    browser,
    client_with_money,
    clock,
    half_used_gang,
    make_market,
    page,
    playwright_expect,
    sign_in,
)

__all__ = ["browser", "clock", "page"]

expect = playwright_expect()


def test_browse_filter_share_and_open_a_gpu(
    page: Any, browser: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    page.goto(live_server + "/")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(3)
    # Cheapest first by default, prices as the API wrote them.
    expect(rows.first).to_contain_text("RTX 3090")
    expect(rows.first).to_contain_text("0.300000 AITBC")

    page.fill("#f-model", "4090")
    page.fill("#f-region", "eu-west")
    page.click("text=Search")
    expect(rows).to_have_count(1)
    assert "model=4090" in page.url and "region=eu-west" in page.url
    assert "price_max" not in page.url, "empty filters stay out of the address"
    shared = page.url

    # The address alone brings the same search back, in another browser session.
    other = browser.new_context()
    try:
        fresh = other.new_page()
        fresh.goto(shared)
        expect(fresh.locator("#results tbody tr")).to_have_count(1)
        expect(fresh.locator("#f-model")).to_have_value("4090")
        expect(fresh.locator("#results")).to_contain_text("RTX 4090")
    finally:
        other.close()

    # Pages follow the API's keyset cursor.
    page.goto(live_server + "/?limit=2")
    expect(rows).to_have_count(2)
    page.click("text=Next page →")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("A100")
    assert "cursor=" in page.url

    page.goto(live_server + "/?memory_min=48&sort=memory")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("A100")

    page.goto(shared)
    page.click("#results a:text('RTX 4090')")
    expect(page).to_have_url(re.compile(f"/gpus/{market.gpu_4090}$"))
    expect(page.locator("h1")).to_have_text("RTX 4090 · 24 GB")
    expect(page.locator("#health")).to_contain_text("Uptime, 7 days")
    expect(page.locator("#health")).to_contain_text("40 %")
    expect(page.locator("#rating-summary")).to_have_text("No reviews yet.")
    expect(page.locator("#main")).to_contain_text("sign in with a client key")


def test_book_see_it_booked_release_with_the_refund_shown_first_and_review(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    key = client_with_money(api, "alice")
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    sign_in(page, live_server, key)
    expect(page).to_have_url(re.compile("/account$"))
    expect(page.locator("#balance-amount")).to_have_text("100.000000 AITBC")

    page.goto(f"{live_server}/gpus/{market.gpu_4090}")
    page.fill("#book-hours", "2")
    page.click("text=Get a quote")
    expect(page.locator("#quote-total")).to_have_text("1.000000 AITBC")
    page.click("#book-form >> text=Book")
    expect(page.locator("#booked")).to_contain_text("Booked: 1.000000 AITBC in escrow")
    expect(page.locator("#health")).to_contain_text("booked")
    # The page's header says so too, and booking now is no longer offered.
    expect(page.locator("#gpu-summary")).to_contain_text("booked")
    expect(page.locator("#book-form >> text=Get a quote")).to_be_disabled()
    expect(page.locator("#book-note")).to_contain_text("choose a start after its booking ends")
    [booking] = api.call("GET", "/v1/bookings", key).json()
    assert booking["status"] == "active" and booking["total_cost"] == "1.000000"

    api.pass_time(1800, market.miner)
    page.goto(live_server + "/account")
    row = page.locator(f"tr[data-booking='{booking['booking_id']}']")
    expect(row).to_contain_text("active")
    row.locator("text=Release…").click()
    expect(page.locator("#preview-refund")).to_have_text("0.750000 AITBC")
    page.click("#confirm-ok")
    expect(page.locator("#last-release")).to_contain_text(
        "charged 0.250000 AITBC, refunded 0.750000 AITBC"
    )
    expect(row).to_contain_text("released")
    expect(page.locator("#balance-amount")).to_have_text("99.750000 AITBC")
    released = api.call("GET", f"/v1/bookings/{booking['booking_id']}", key).json()
    assert (released["status"], released["refund"]) == ("released", "0.750000")

    # In a renter's words: the GPU by model and region, hours as written, and a statement
    # of money in and out without the escrow lines (the ledger one click away).
    expect(row.locator("td").first).to_have_text("RTX 4090 · eu-west")
    expect(row).to_contain_text("2")
    assert "2.000000" not in row.inner_text()
    order = page.locator("#orders tr", has_text=booking["order_id"])
    expect(order).to_contain_text("RTX 4090 · eu-west")
    statement = page.locator("#statement")
    expect(statement).to_contain_text("Deposit")
    expect(statement).to_contain_text("Booking on RTX 4090 · eu-west: its cost set aside")
    expect(statement).to_contain_text(
        "Refund of unused time: booking on RTX 4090 · eu-west released early"
    )
    assert "escrow" not in statement.inner_text().lower().replace("set aside", "")
    expect(page.locator("#ledger")).to_be_hidden()
    page.locator("#ledger-details summary").click()
    expect(page.locator("#ledger")).to_contain_text("escrow")

    page.goto(f"{live_server}/gpus/{market.gpu_4090}")
    page.check("#review-form input[name=rating][value='4']")
    page.fill("#review-comment", "Solid card")
    page.click("text=Post review")
    expect(page.locator("#rating-summary")).to_have_text("★ 4.00 from 1 review")
    expect(page.locator("[data-star='4']")).to_have_text("1")
    expect(page.locator("#reviews")).to_contain_text("Solid card")
    expect(page.locator("text=Edit your review")).to_be_visible()
    page.check("#review-form input[name=rating][value='5']")
    page.click("text=Save changes")
    expect(page.locator("#rating-summary")).to_have_text("★ 5.00 from 1 review")

    assert urls and not [url for url in urls if key in url], "the key never goes in an address"


def test_admin_hides_and_restores_a_flagged_review(page: Any, live_server: str, api: Api) -> None:
    market = make_market(api)
    key = client_with_money(api, "bob")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_3090}/book", key, json={"duration_hours": 1}
    )
    assert booked.status_code == 201, booked.text
    review = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_3090}/reviews", key, json={"rating": 1}
    ).json()
    flagged = api.call(
        "POST",
        f"/v1/marketplace/reviews/{review['review_id']}/flag",
        market.miner,
        json={"reason": "spam"},
    )
    assert flagged.status_code in (200, 201), flagged.text

    sign_in(page, live_server, ADMIN_KEY)
    expect(page).to_have_url(re.compile("/admin$"))
    row = page.locator(f"#flagged tr[data-review='{review['review_id']}']")
    expect(row.locator(".review-state")).to_have_text("visible")
    expect(row).to_contain_text("1: spam")
    row.locator("text=Hide").click()
    expect(row.locator(".review-state")).to_have_text("hidden")

    page.goto(f"{live_server}/gpus/{market.gpu_3090}")
    expect(page.locator("#rating-summary")).to_have_text("No reviews yet.")

    page.goto(live_server + "/admin")
    row.locator("text=Restore").click()
    expect(row.locator(".review-state")).to_have_text("visible")
    page.goto(f"{live_server}/gpus/{market.gpu_3090}")
    expect(page.locator("#rating-summary")).to_have_text("★ 1.00 from 1 review")


def test_provider_changes_a_price_and_delists(page: Any, live_server: str, api: Api) -> None:
    market = make_market(api)
    sign_in(page, live_server, market.miner)
    expect(page).to_have_url(re.compile("/provider$"))
    row = page.locator(f"#my-gpus tr[data-gpu='{market.gpu_4090}']")
    expect(row).to_contain_text("0.500000 AITBC")
    row.locator("input[inputmode=decimal]").fill("0.75")
    row.locator("text=Save price").click()
    expect(row).to_contain_text("0.750000 AITBC")
    gpu = api.call("GET", f"/v1/marketplace/gpu/{market.gpu_4090}").json()
    assert gpu["price_per_hour"] == "0.750000"
    expect(row.locator(".price-why")).to_have_count(0)  # fixed: the price is the base

    # Dynamic: the row says the base, the multiplier and the demand behind it.
    row.locator("select").select_option("dynamic")
    row.locator("text=Save price").click()
    why = row.locator(".price-why")
    expect(why).to_contain_text("Base 0.750000 AITBC \u00d7")
    expect(why).to_contain_text("online RTX 4090 GPUs booked (the target is 70 %)")

    # A price the API refuses: its sentence, as it is.
    refused = api.call(
        "PATCH",
        f"/v1/marketplace/gpu/{market.gpu_4090}",
        market.miner,
        json={"price_per_hour": "-1", "pricing_mode": "fixed"},
    )
    assert refused.status_code == 422
    row.locator("input[inputmode=decimal]").fill("-1")
    row.locator("text=Save price").click()
    expect(row.locator(".price-form [role=alert]")).to_have_text(refused.json()["detail"])

    page.locator(f"#my-gpus tr[data-gpu='{market.gpu_3090}'] >> text=Delist…").click()
    page.click("#confirm-ok")
    expect(page.locator(f"#my-gpus tr[data-gpu='{market.gpu_3090}']")).to_have_count(0)
    gpu = api.call("GET", f"/v1/marketplace/gpu/{market.gpu_3090}").json()
    assert gpu["status"] == "delisted"


def test_the_api_sentence_is_shown_as_it_is(page: Any, live_server: str, api: Api) -> None:
    market = make_market(api)
    poor = api.key("client", "carol")
    refused = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_a100}/book", poor, json={"duration_hours": "2"}
    )
    assert refused.status_code == 402
    sign_in(page, live_server, poor)
    page.goto(f"{live_server}/gpus/{market.gpu_a100}")
    page.fill("#book-hours", "2")
    page.click("text=Get a quote")
    page.click("#book-form >> text=Book")
    expect(page.locator("#book-form [role=alert]")).to_have_text(refused.json()["detail"])


def test_a_booking_that_runs_out_shows_completed_without_a_reload(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    key = client_with_money(api, "dave")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_4090}/book", key, json={"duration_hours": 1}
    )
    assert booked.status_code == 201, booked.text
    sign_in(page, live_server, key)
    row = page.locator(f"tr[data-booking='{booked.json()['booking_id']}']")
    expect(row).to_contain_text("active")
    expect(row.locator(".countdown")).to_contain_text("left")
    api.pass_time(3601, market.miner)
    # A thread of its own: Playwright's loop runs on this one.
    sweeping = threading.Thread(target=api.client.app.state.sweeper.run_once)  # type: ignore[attr-defined]
    sweeping.start()
    sweeping.join(10)
    # The sweeper's booking.completed reaches the page through its event feed, long before
    # the page's own minute-long refresh would.
    expect(row).to_contain_text("completed", timeout=8_000)


def test_screenshots_of_the_main_pages(browser: Any, live_server: str, tmp_path: Path) -> None:
    keys = seed(live_server, ADMIN_KEY)
    written = take(live_server, keys, tmp_path, browser)
    assert len(written) == len(SIZES) * len(pages(keys))
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_signing_in_goes_on_only_to_a_path_of_this_site(
    page: Any, live_server: str, api: Api
) -> None:
    key = api.key("client", "nomad")
    for sent, lands in [
        ("%2F%5Cevil.test%2F", "/account"),  # /\evil.test/: another host to a browser
        ("%2F%09%2Fevil.test%2F", "/account"),  # /<tab>/evil.test/: the tab is dropped
        ("%2F%2Fevil.test%2F", "/account"),
        ("https%3A%2F%2Fevil.test%2F", "/account"),
        ("%2Fbookings%3Fa%3D1", "/bookings?a=1"),
    ]:
        page.goto(f"{live_server}/signin?next={sent}")
        page.fill("#api-key", key)
        page.click("#main button[type=submit]")
        page.wait_for_url(lambda url: "/signin" not in url)
        assert page.url == live_server + lands, (sent, page.url)


def test_a_renter_sees_that_its_gpus_miner_is_silent(page: Any, live_server: str, api: Api) -> None:
    market = make_market(api)
    key = client_with_money(api, "carol")
    booked = api.call(
        "POST",
        f"/v1/marketplace/gpu/{market.gpu_4090}/book",
        key,
        json={"gpu_id": market.gpu_4090, "duration_hours": 2},
    )
    assert booked.status_code == 201, booked.text
    api.clock.advance(seconds=120)  # its miner is silent past the 90 s timeout
    sign_in(page, live_server, key)
    row = page.locator(f"tr[data-booking='{booked.json()['booking_id']}']")
    expect(row.locator(".warn")).to_contain_text("Its miner has been silent since")


def test_a_signed_in_page_shows_new_events_and_refreshes_what_they_changed(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    key = client_with_money(api, "erin")
    sign_in(page, live_server, key)
    page.goto(live_server + "/account")
    expect(page.locator("#notices")).to_be_visible()
    expect(page.locator("#notice-list")).to_contain_text("account deposit")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_4090}/book", key, json={"duration_hours": 1}
    )  # made elsewhere (another tab, the CLI): the page hears of it
    assert booked.status_code == 201, booked.text
    booking_id = booked.json()["booking_id"]
    expect(page.locator("#notice-count")).to_have_text("1", timeout=5_000)
    expect(page.locator("#notice-list li").first).to_contain_text(f"booking created {booking_id}")
    expect(page.locator(f"tr[data-booking='{booking_id}']")).to_contain_text(
        "active", timeout=5_000
    )
    # and so are its order and the money it moved, on the same page
    expect(page.locator("#orders")).to_contain_text(booked.json()["order_id"], timeout=5_000)
    expect(page.locator("#statement")).to_contain_text("its cost set aside", timeout=5_000)
    page.click("#notices summary")
    expect(page.locator("#notice-count")).to_have_text("")


def test_rent_interruptibly_at_the_lowest_winning_bid_and_see_the_preemption_notice(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    key = client_with_money(api, "dora")
    sign_in(page, live_server, key)
    page.goto(f"{live_server}/gpus/{market.gpu_4090}")
    # 0.5 per hour on demand; bids from 0.3 of it
    expect(page.locator(".specs").first).to_contain_text("bids from 0.150000 AITBC per hour")
    page.select_option("#book-rental", "interruptible")
    expect(page.locator("#book-bid")).to_have_value("0.150000")
    expect(page.locator("#book-form >> text=Get a quote")).to_be_disabled()
    page.fill("#book-bid", "0.2")
    page.click("#book-form >> text=Book")
    expect(page.locator("#booked")).to_contain_text("Booked")
    [booking] = api.call("GET", "/v1/bookings", key).json()
    assert (booking["rental_type"], booking["bid_per_hour"]) == ("interruptible", "0.200000")

    other = client_with_money(api, "ed")
    taking = api.call(
        "POST",
        f"/v1/marketplace/gpu/{market.gpu_4090}/book",
        other,
        json={"gpu_id": market.gpu_4090, "duration_hours": 1},
    )
    assert taking.status_code == 201, taking.text
    page.goto(live_server + "/account")
    row = page.locator(f"tr[data-booking='{booking['booking_id']}']")
    expect(row).to_contain_text("preempted")
    expect(row).to_contain_text("Interruptible, bid 0.200000 AITBC per hour")
    expect(row.locator(".preempted")).to_contain_text("Outbid: the GPU is taken at")


def test_a_gangs_bookings_say_they_go_together(page: Any, live_server: str, api: Api) -> None:
    make_market(api)
    key = client_with_money(api, "gus")
    body = {"duration_hours": 1, "count": 2, "placement": "same_miner"}
    made = api.call("POST", "/v1/marketplace/book", key, json=body)
    assert made.status_code == 201, made.text
    gang = made.json()
    sign_in(page, live_server, key)
    page.goto(live_server + "/account")
    for line in gang["lines"]:
        row = page.locator(f"tr[data-booking='{line['booking_id']}']")
        expect(row.locator(".gang")).to_contain_text(f"One of gang {gang['gang_id']}")


def test_a_one_point_chart_and_the_sort_choice_read_right(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    renter = client_with_money(api, "renter")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_4090}/book", renter, json={"duration_hours": 1}
    )
    assert booked.status_code == 201, booked.text
    # A sweep records a price point (in a thread: Playwright's loop runs in this one).
    sweeping = threading.Thread(target=api.client.app.state.sweeper.run_once)  # type: ignore[attr-defined]
    sweeping.start()
    sweeping.join()
    history = api.call("GET", "/v1/marketplace/pricing/rtx4090/history").json()
    assert len(history) == 1, history
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server + "/")
    sort = page.locator("#f-sort")
    expect(sort).to_be_visible()
    fits = sort.evaluate(
        "e => { const c = document.createElement('canvas').getContext('2d');"
        " c.font = getComputedStyle(e).font;"
        " return c.measureText(e.options[e.selectedIndex].text).width + 24 <= e.clientWidth; }"
    )
    assert fits, "the sort's choice is clipped"
    page.goto(f"{live_server}/gpus/{market.gpu_4090}")
    chart = page.locator("figure.chart", has_text="Market price")
    expect(chart).to_be_visible()
    y_labels = chart.locator("text.y-label").all_text_contents()
    x_labels = chart.locator("text.x-label").all_text_contents()
    assert len(chart.locator("circle.dot").all()) == 1
    # One label each way, at the point: no scale of ±1 around it.
    assert len(y_labels) == 1 and len(x_labels) == 1, (y_labels, x_labels)
    assert float(y_labels[0]) > 0
    page.set_viewport_size({"width": 390, "height": 844})
    size = chart.locator("text").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 18  # drawn 560 wide, shown 390: about 12 px on the phone


def test_releasing_a_gangs_booking_shows_and_gives_the_whole_gangs_refund(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    key = client_with_money(api, "gus")
    made = half_used_gang(api, market, key)
    first = made["lines"][0]["booking_id"]
    sign_in(page, live_server, key)
    page.goto(live_server + "/account")
    page.locator(f"tr[data-booking='{first}']").locator("text=Release…").click()
    expect(page.locator("dialog[open]")).to_contain_text("Release its gang's 2 bookings?")
    preview = api.call("GET", f"/web/bookings/{first}/release-preview", key).json()
    expect(page.locator("#preview-refund")).to_have_text(f"{preview['refund']} AITBC")
    page.click("#confirm-ok")
    expect(page.locator("#last-release")).to_contain_text(f"refunded {preview['refund']} AITBC")
    gang = api.call("GET", f"/v1/gangs/{made['gang_id']}", key).json()
    assert (gang["status"], gang["refund"]) == ("released", preview["refund"])


def test_a_long_model_name_needs_no_sideways_scrolling_on_a_phone(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    long_name = "NVIDIA-H100-SXM5-80GB-HBM3-" + "X" * 60  # 128 characters are allowed
    gpu = api.register_gpu(market.miner, name=long_name, memory_gb=80, price_per_hour="2")
    page.set_viewport_size({"width": 390, "height": 844})
    wide = "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
    page.goto(live_server + "/")
    expect(page.locator("#results")).to_contain_text(long_name[:20])
    assert not page.evaluate(wide)
    page.goto(f"{live_server}/gpus/{gpu}")
    expect(page.locator("h1")).to_contain_text(long_name)
    assert not page.evaluate(wide)


def test_a_provider_registers_a_gpu_and_reads_its_earnings_by_gpu_and_period(
    page: Any, live_server: str, api: Api
) -> None:
    market = make_market(api)
    sign_in(page, live_server, market.miner)
    page.fill("#reg-model", "L40S")
    page.fill("#reg-memory", "48")
    page.fill("#reg-price", "1.1")
    page.click("text=Register GPU")
    row = page.locator("#my-gpus tr", has_text="L40S")
    expect(row).to_contain_text("1.100000 AITBC")
    [made] = [g for g in api.call("GET", "/v1/marketplace/gpu/list?model=L40S").json()]
    assert (made["miner_id"], made["memory_gb"]) == ("miner-eu", 48)

    # A booking of the 4090, released after half an hour: earnings by GPU, and as CSV.
    renter = client_with_money(api, "renter")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_4090}/book", renter, json={"duration_hours": 1}
    )
    assert booked.status_code == 201, booked.text
    api.pass_time(1800, market.miner)  # its miner heartbeating all along
    released = api.call("POST", f"/v1/marketplace/gpu/{market.gpu_4090}/release", renter)
    assert released.status_code == 200, released.text
    page.click("#earn-period >> text=Show")
    line = page.locator(f"#earnings tr[data-earned='{market.gpu_4090}']")
    expect(line).to_contain_text("0.250000 AITBC")
    href = page.locator("#earnings-csv").get_attribute("href")
    assert href is not None
    csv_text = urllib.parse.unquote(href.split(",", 1)[1])
    assert f'"{market.gpu_4090}","RTX 4090","0.250000","1","AITBC"' in csv_text
    # A period before the payment: nothing paid in it.
    page.fill("#earn-to", "2000-01-01")
    page.click("#earn-period >> text=Show")
    expect(page.locator("#earnings")).to_contain_text("Nothing paid in this period.")
