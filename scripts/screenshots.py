"""Screenshots of the console for docs/console.md: the queue, a ticket and the dashboard, in headless Chromium.

A gateway runs in process on a temporary embedded store with the workflows on (the built-in heuristic triages,
acknowledgements are written as files); customers mail a few tickets over SMTP, an agent answers one, and the
pages are captured at 1280x900 into docs/images/. The tests never write into the repository; this script does,
when run by hand after the console changes:

    uv run python -m scripts.screenshots [--out docs/images]
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import tempfile
from email.message import EmailMessage
from pathlib import Path

from bench.events import SUPPORT_ADDRESS, gateway_settings
from tests.browser import Browser

from helpgate.accounts import users
from helpgate.gateway import Gateway
from helpgate.models import Role, Ticket

PASSWORD = "screenshots-password-7"  # noqa: S105 - a throwaway account in a temp store
MAILS = (
    ("Jane Doe <jane@example.org>", "The printer on floor 3 is on fire", "Smoke is coming out of the paper tray."),
    ("Omar Haddad <omar@example.net>", "Invoice 2041 charged twice", "My card was charged twice for March."),
    ("Li Wei <li@example.com>", "Cannot log in after password reset", "The reset link says it expired."),
    ("Ana Souza <ana@example.org>", "Refund for order 7731", "The parcel never arrived; please refund me."),
    ("Tom Berg <tom@example.com>", "Feature request: export to CSV", "We would like to export tickets to CSV."),
)


def mail(port: int, sender: str, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, SUPPORT_ADDRESS, subject
    message.set_content(text)
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(message)


async def stage(gateway: Gateway) -> None:
    assert gateway.smtp is not None
    await users.create(actor=None, email="admin@example.com", role=Role.ADMIN, password=PASSWORD, name="Ada Admin")
    await users.create(actor=None, email="sam@example.com", role=Role.AGENT, password=PASSWORD, name="Sam Agent")
    for sender, subject, text in MAILS:
        await asyncio.to_thread(mail, gateway.smtp.port, sender, subject, text)
    await gateway.worker.idle()
    async with asyncio.timeout(30):  # triage and assignment run in the workflows
        while any(ticket.triage is None for ticket in await Ticket.find().to_list()):  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def capture(base: str, out: Path) -> list[Path]:
    browser = await Browser.start()
    try:
        await browser.open(f"{base}/login")
        await browser.type("#email", "admin@example.com")
        await browser.type("#password", PASSWORD)
        await browser.click("#login")
        await browser.find("#queue")
        await browser.wait_text("#queue", "Refund for order 7731")
        shots = [await browser.screenshot(out / "console-queue.png")]
        await browser.open(f"{base}/tickets/2")  # answered and noted through the console's own forms
        await browser.type("#reply-text", "Sorry about that: the second charge is refunded today.")
        await browser.click("#send-reply")
        await browser.type("#note-text", "Card processor confirmed the duplicate.")
        await browser.click("#add-note")
        await browser.find("#thread .message.note")
        shots.append(await browser.screenshot(out / "console-ticket.png"))
        await browser.open(f"{base}/dashboard?days=7")
        await browser.find("#per-day")
        shots.append(await browser.screenshot(out / "console-dashboard.png"))
        return shots
    finally:
        await browser.close()


async def run(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="helpgate-screenshots-") as directory:
        gateway = Gateway(gateway_settings(Path(directory)))
        await gateway.start()
        try:
            await stage(gateway)
            shots = await capture(f"http://127.0.0.1:{gateway.http_port}", out)
        finally:
            await gateway.stop()
    for shot in shots:
        print(f"wrote {shot} ({shot.stat().st_size // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="where the PNG files go")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.out))


if __name__ == "__main__":
    main()
