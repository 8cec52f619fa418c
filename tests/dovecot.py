"""A real Dovecot (Debian dovecot-imapd) for IMAP tests, configured in a temp dir and run in its own session.

Recipe from docs/architecture.md: config under /tmp (pytest's tmp_path has a 0700 parent that breaks auth),
mail owned by uid 8, started with `dovecot -F -c CONF`, stopped with SIGTERM to its process group.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USERS = ("test", "other", "broken")
PASSWORD = "secret"
FULL_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS "
    "THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED "
    "I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE "
    "SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE"
)


def quoted(folder: str) -> str:
    """`folder` (already in modified UTF-7) as an IMAP quoted string: imaplib sends mailbox names as given."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dovecot:
    def __init__(self, *, capabilities_without: tuple[str, ...] = (), introspection_url: str | None = None) -> None:
        """`introspection_url`: also accept XOAUTH2 and OAUTHBEARER, asking that URL whether a token is valid
        (RFC 7662, as a fake identity provider answers: tests/fake_idp.py); Dovecot checks tokens at login only."""
        self.capabilities_without = capabilities_without
        self.introspection_url = introspection_url
        self.root = Path(tempfile.mkdtemp(prefix="helpgate-dovecot-", dir="/tmp"))
        self.imap_port = _free_port()
        self.imaps_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        root = self.root
        (root / "mail").mkdir()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip
        users = "".join(f"{user}:{{PLAIN}}{PASSWORD}:8:8::{root}/mail/{user}::\n" for user in USERS)
        (root / "users").write_text(users)
        (root / "dovecot.conf").write_text(
            f"""
instance_name = helpgate-test-{root.name}
base_dir = {root}/run
state_dir = {root}/state
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 8
mail_location = maildir:~/Maildir
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.introspection_url else ""}
auth_failure_delay = 0
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
{self._oauth_passdb()}passdb {{
  driver = passwd-file
  args = {root}/users
}}
userdb {{
  driver = passwd-file
  args = {root}/users
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
  }}
}}
"""
        )
        subprocess.run(["chown", "-R", "8:8", str(root / "mail")], check=True)
        if self.capabilities_without:
            # What Dovecot announces after login, less the named capabilities (to test fallbacks).
            announced = [c for c in FULL_CAPABILITIES.split() if c not in self.capabilities_without]
            with (root / "dovecot.conf").open("a") as conf:
                conf.write(f"imap_capability = {' '.join(announced)}\n")
        root.chmod(0o755)

    def _oauth_passdb(self) -> str:
        if self.introspection_url is None:
            return ""
        settings = (
            "introspection_mode = post",
            f"introspection_url = {self.introspection_url}",
            "username_attribute = email",
            "active_attribute = active",
            "active_value = true",
        )
        (self.root / "oauth2.conf.ext").write_text("".join(f"{line}\n" for line in settings))
        args = self.root / "oauth2.conf.ext"
        return f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {args}\n}}\n"

    def kick(self, user: str = "test") -> None:
        """End the user's IMAP sessions, as an admin's `doveadm kick` does (a token that expired meanwhile is asked
        for again only at the next login)."""
        config = str(self.root / "dovecot.conf")
        subprocess.run(["doveadm", "-c", config, "kick", user], check=True, capture_output=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.imap_port), 0.2):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"dovecot did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(15)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text() if path.exists() else ""

    def client(self, user: str = "test") -> imaplib.IMAP4:
        """A stdlib client to put test mail in place (APPEND), as another mail client would."""
        client = imaplib.IMAP4("127.0.0.1", self.imap_port)
        client.login(user, PASSWORD)
        return client

    def append(self, messages: list[bytes], *, user: str = "test", folder: str = "INBOX", seen: bool = False) -> None:
        client = self.client(user)
        try:
            if folder != "INBOX":
                client.create(quoted(folder))
            for message in messages:
                typ, data = client.append(quoted(folder), "(\\Seen)" if seen else "", None, message)
                assert typ == "OK", data
        finally:
            client.logout()

    def folder_state(self, *, user: str = "test", folder: str = "INBOX") -> tuple[int, int]:
        """(messages, unseen) in a folder."""
        client = self.client(user)
        try:
            typ, data = client.status(quoted(folder), "(MESSAGES UNSEEN)")
            assert typ == "OK", data
            text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
            numbers = [int(part) for part in text.replace("(", " ").replace(")", " ").split() if part.isdigit()]
            return numbers[-2], numbers[-1]
        finally:
            client.logout()

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root / "cert.pem"))
