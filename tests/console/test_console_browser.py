"""The console in a real browser (headless Chromium): an agent logs in, sees mail arrive in the queue without
reloading, opens it by keyboard, replies (the mail reaches the capture server and the delivery shows as sent),
adds a note and solves; and hostile mail shown in the console runs nothing and loads nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from helpgate.accounts import users
from helpgate.gateway import Gateway
from helpgate.models import MessageKind, Role, TicketStatus
from helpgate.tickets import tickets
from tests.browser import Browser
from tests.conftest import PASSWORD, make_user
from tests.console.pages import base_url, ticket_numbered
from tests.mail import make_mail, send
from tests.mail_capture import CaptureServer

AGENT = "agent@example.com"


@pytest.fixture
def settings_overrides(sink: CaptureServer) -> dict[str, Any]:
    return sink.settings()


async def log_in(browser: Browser, gateway: Gateway, email: str = AGENT) -> None:
    await browser.open(f"{base_url(gateway)}/")
    await browser.type("#email", email)
    await browser.type("#password", PASSWORD)
    await browser.click("#login")
    await browser.find("#queue")


def no_alert(driver: Chrome) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False


async def test_an_agent_works_a_mailed_ticket_in_the_browser(
    gateway: Gateway, browser: Browser, sink: CaptureServer
) -> None:
    assert gateway.smtp is not None
    await make_user(AGENT, Role.AGENT)
    await log_in(browser, gateway)
    await browser.wait_text("#queue", "No tickets here.")

    # Mail sent now shows up in the open queue without a reload (the live stream's `tickets` event).
    await send(gateway.smtp.port, make_mail(subject="Printer on fire"))
    await browser.wait_text("#queue", "Printer on fire")
    await ticket_numbered(1)

    await browser.run(lambda driver: driver.find_element(By.TAG_NAME, "body").send_keys("j"))
    await browser.find("tr.selected#ticket-1")
    await browser.run(lambda driver: driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ENTER))
    await browser.wait_text("#thread h1", "#1 Printer on fire")

    await browser.type("#reply-text", "We have sent a fire extinguisher.")
    await browser.click("#send-reply")
    await browser.wait_text("#thread", "We have sent a fire extinguisher.")
    received = await sink.wait_for(1)
    body = received[0].message.get_body(("plain",))
    assert body is not None and "We have sent a fire extinguisher." in body.get_content()
    await browser.find(".message.outbound .delivery-sent")  # the page looked again while it was under way

    await browser.type("#note-text", "Replaced under warranty.")
    await browser.click("#add-note")
    await browser.find(".message.note")
    await browser.click("#solve-button")
    await browser.wait_text("#ticket-status", "solved")

    ticket, messages = await tickets.get_ticket(viewer=await make_user("a@example.com", Role.ADMIN), number=1)
    assert ticket.status is TicketStatus.SOLVED
    assert [message.kind for message in messages] == [MessageKind.EMAIL, MessageKind.EMAIL, MessageKind.NOTE]
    assert len(await sink.wait_for(1)) == 1  # the note never left
    assert await browser.console_errors() == []


@dataclass
class PixelHost:
    """A server standing in for the sender's tracking host: it records every request that reaches it."""

    address: str = ""
    requests: list[bytes] = field(default_factory=list)


@pytest.fixture
async def pixel_host() -> AsyncIterator[PixelHost]:
    host = PixelHost()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host.requests.append(await reader.readline())
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    host.address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield host


def hostile_mail(host: str) -> EmailMessage:
    message = make_mail(
        sender='"<img src=x onerror=alert(1)>" <mallory@example.net>',
        subject='<script>alert("subject")</script> Your order',
        body="Plain text <script>alert('text')</script>",
    )
    message.add_alternative(
        f"""<html><head><style>body {{ background: url(http://{host}/css.png) }}</style>
        <script>alert('script')</script></head>
        <body onload="alert('onload')"><p id="hello" onclick="alert('click')">Hello <b>there</b></p>
        <a href="javascript:alert('link')">click me</a>
        <img src="http://{host}/pixel.gif" width="1" height="1">
        <div style="background-image: url(http://{host}/inline.png)">styled</div>
        <iframe src="http://{host}/frame"></iframe><object data="http://{host}/object"></object>
        <form action="http://{host}/form"><input name="card"></form>
        <svg><script>alert('svg')</script></svg><meta http-equiv="refresh" content="0; url=http://{host}/refresh">
        </body></html>""",
        subtype="html",
    )
    return message


async def test_hostile_mail_runs_nothing_and_loads_nothing(
    gateway: Gateway, browser: Browser, pixel_host: PixelHost
) -> None:
    assert gateway.smtp is not None
    await make_user(AGENT, Role.AGENT)
    await send(gateway.smtp.port, hostile_mail(pixel_host.address), sender="mallory@example.net")
    await ticket_numbered(1)
    await log_in(browser, gateway)

    await browser.wait_text("#ticket-1", '<script>alert("subject")</script> Your order')
    await browser.click("#ticket-1 a")
    await browser.wait_text("#thread .from", "<img src=x onerror=alert(1)>")
    await browser.click(".formatted summary")
    await browser.run(lambda driver: driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, ".formatted iframe")))
    assert await browser.text("p b") == "there"  # the frame shows the mail (nh3 keeps no ids)
    await browser.click("p")
    await browser.run(lambda driver: driver.switch_to.default_content())

    assert await browser.run(no_alert)
    assert await browser.console_errors() == []
    assert pixel_host.requests == []


async def test_an_admin_adds_a_skill_and_an_agent_who_has_it(gateway: Gateway, browser: Browser) -> None:
    await make_user("admin@example.com", Role.ADMIN)
    await log_in(browser, gateway, "admin@example.com")
    await browser.click("#nav-admin")
    await browser.click("a[href='/admin/skills']")
    await browser.type("input.new-skill", "printers")
    await browser.click("#save-skills")
    await browser.find("input[name=name][value=printers]")

    await browser.click("a[href='/admin/users']")
    await browser.type("#invite-email", "sam@example.com")
    await browser.type("#invite-name", "Sam Agent")
    await browser.type("#invite-skills", "printers")
    await browser.click("#invite-button")
    await browser.find("#account-skills[value=printers]")

    sam = await users.get_by_email("sam@example.com")
    assert sam is not None and sam.role is Role.AGENT and sam.skills == ["printers"] and sam.name == "Sam Agent"
    await browser.click("a[href='/admin/audit']")
    await browser.wait_text("#audit", "user.created")
    await browser.wait_text("#audit", "skills.replaced")
    assert await browser.console_errors() == []


async def test_two_agents_on_one_ticket_see_each_other_and_who_is_writing(
    gateway: Gateway, browser: Browser, second_browser: Browser
) -> None:
    assert gateway.smtp is not None
    await make_user(AGENT, Role.AGENT)
    await make_user("kim@example.com", Role.AGENT)
    await send(gateway.smtp.port, make_mail(subject="Printer on fire"))
    await ticket_numbered(1)

    await log_in(browser, gateway)
    await browser.open(f"{base_url(gateway)}/tickets/1")
    await browser.find("#presence")
    await log_in(second_browser, gateway, "kim@example.com")
    await second_browser.open(f"{base_url(gateway)}/tickets/1")

    await second_browser.wait_text("#presence", "agent@example.com has this ticket open")  # on arriving
    await browser.wait_text("#presence", "kim@example.com has this ticket open")  # told over the live stream
    await second_browser.type("#reply-text", "Working on it")
    await browser.wait_text("#presence", "kim@example.com is writing a reply")
    assert await browser.console_errors() == [] and await second_browser.console_errors() == []


async def test_a_customer_sees_only_their_own_ticket_and_answers_it(gateway: Gateway, browser: Browser) -> None:
    assert gateway.smtp is not None
    await send(gateway.smtp.port, make_mail(subject="My parcel is late"))
    await send(
        gateway.smtp.port,
        make_mail(sender="Omar <omar@example.net>", subject="Omar's refund"),
        sender="omar@example.net",
    )
    await ticket_numbered(2)
    jane = await users.get_by_email("jane@example.org")
    assert jane is not None
    await users.set_password(jane, PASSWORD)

    await log_in(browser, gateway, "jane@example.org")
    await browser.wait_text("#queue", "My parcel is late")
    assert "Omar's refund" not in await browser.text("#queue")
    await browser.click("#queue a[href='/tickets/1']")
    await browser.type("#answer-text", "Any news?")
    await browser.click("#send-answer")
    await browser.wait_text("#thread", "Any news?")
    await browser.open(f"{base_url(gateway)}/tickets/2")
    await browser.wait_text("#error", "not found")
    assert "Omar" not in await browser.text("main")
