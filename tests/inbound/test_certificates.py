"""RenewingContext on its own: a clear error at start, a renewal picked up, a broken renewal survived."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from helpgate.core.errors import ConfigurationError
from helpgate.inbound.certificates import CertificateFiles, RenewingContext
from tests.mail_capture import Certificate, make_certificate


def certificate_in(directory: Path) -> Certificate:
    directory.mkdir()
    return make_certificate(directory)


@pytest.fixture
def context(tmp_path: Path) -> RenewingContext:
    certificate = certificate_in(tmp_path / "first")
    renewing = RenewingContext(CertificateFiles(cert=certificate.cert, key=certificate.key))
    renewing.load()
    return renewing


def test_files_that_do_not_load_at_start_name_the_files_and_the_settings(tmp_path: Path) -> None:
    certificate = certificate_in(tmp_path / "first")
    other = certificate_in(tmp_path / "other")
    with pytest.raises(ConfigurationError, match=r"sink\.crt.*HELPGATE_SMTP_TLS_CERT and HELPGATE_SMTP_TLS_KEY"):
        RenewingContext(CertificateFiles(cert=certificate.cert, key=other.key)).load()
    with pytest.raises(ConfigurationError, match=r"missing\.pem"):
        RenewingContext(CertificateFiles(cert=tmp_path / "missing.pem", key=certificate.key)).load()


def test_unchanged_files_keep_the_same_context(context: RenewingContext) -> None:
    assert context.current() is context.current()


def test_renewed_files_give_a_new_context(context: RenewingContext, tmp_path: Path) -> None:
    first = context.current()
    renewed = certificate_in(tmp_path / "renewed")
    shutil.copyfile(renewed.cert, context.files.cert)
    shutil.copyfile(renewed.key, context.files.key)
    assert context.current() is not first


def test_a_renewal_that_does_not_load_keeps_the_old_context_and_is_logged_once(
    context: RenewingContext, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = context.current()
    renewed = certificate_in(tmp_path / "renewed")
    shutil.copyfile(renewed.cert, context.files.cert)  # the key is not written yet
    with caplog.at_level(logging.WARNING, logger="helpgate.inbound.certificates"):
        assert context.current() is first and context.current() is first
    assert [record.message.split()[0] for record in caplog.records] == ["smtp.tls_not_renewed"]

    shutil.copyfile(renewed.key, context.files.key)
    assert context.current() is not first
