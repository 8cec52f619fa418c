"""Settings come from the names docs/settings.md documents, and from no other environment variable."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from helpgate import cli
from helpgate.core.settings import Settings, SmtpSecurity, TriageProvider
from tests.test_deploy_files import documented_setting_names

SENTINEL = "undocumented"
DOCUMENTED = {  # every name with an alias, and a few with the prefix, set to a value other than the default
    "MONGODB_URI": "mongodb://db.example:27017",
    "JWT_SECRET": "j" * 32,
    "HELPGATE_SECRET_KEY": "k" * 32,
    "HELPGATE_MONGODB_DATABASE": "support",
    "SMTP_HOST": "relay.example",
    "SMTP_PORT": "2526",
    "SMTP_USERNAME": "relay-user",
    "SMTP_PASSWORD": "relay-password",
    "SMTP_SECURITY": "tls",
    "SMTP_CA_FILE": "/etc/relay-ca.pem",
    "GEMINI_API_KEY": "gemini-key",
    "GEMINI_MODEL": "gemini-x",
    "GEMINI_BASE_URL": "http://gemini.example",
    "OPENAI_BASE_URL": "http://ollama.example:11434/v1",
    "OPENAI_API_KEY": "openai-key",
    "OPENAI_MODEL": "llama-x",
    "HELPGATE_TRIAGE_PROVIDER": "openai",
    "INNGEST_DEV": "1",
    "INNGEST_BASE_URL": "http://inngest.example",
    "INNGEST_EVENT_KEY": "event-key",
    "INNGEST_SIGNING_KEY": "signing-key",
}


def undocumented_names() -> set[str]:
    """Each field's bare name and prefixed name, where docs/settings.md documents neither."""
    names = {candidate for field in Settings.model_fields for candidate in (field.upper(), f"HELPGATE_{field.upper()}")}
    return names - documented_setting_names()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No variable Settings could read is set, and the working directory has no `.env`."""
    readable = undocumented_names() | documented_setting_names()
    for key in list(os.environ):
        if key.upper() in readable or key.upper().startswith("HELPGATE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _values(settings: Settings) -> dict[str, str]:
    return {
        name: value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in ((name, getattr(settings, name)) for name in Settings.model_fields)
    }


def _assert_documented_values(settings: Settings) -> None:
    assert settings.mongodb_uri == "mongodb://db.example:27017" and settings.mongodb_database == "support"
    assert settings.jwt_secret == "j" * 32 and settings.secret_key == "k" * 32
    assert (settings.outbound_smtp_host, settings.outbound_smtp_port) == ("relay.example", 2526)
    assert settings.outbound_smtp_username == "relay-user" and settings.outbound_smtp_security is SmtpSecurity.TLS
    assert settings.outbound_smtp_password is not None
    assert settings.outbound_smtp_password.get_secret_value() == "relay-password"
    assert settings.outbound_smtp_ca_file == Path("/etc/relay-ca.pem")
    assert settings.gemini_api_key is not None and settings.gemini_api_key.get_secret_value() == "gemini-key"
    assert (settings.gemini_model, settings.gemini_base_url) == ("gemini-x", "http://gemini.example")
    assert (settings.openai_base_url, settings.openai_model) == ("http://ollama.example:11434/v1", "llama-x")
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "openai-key"
    assert settings.triage_by is TriageProvider.OPENAI
    assert (settings.inngest_dev, settings.inngest_base_url) == ("1", "http://inngest.example")
    assert settings.inngest_event_key is not None and settings.inngest_event_key.get_secret_value() == "event-key"
    assert settings.inngest_signing_key is not None
    assert settings.inngest_signing_key.get_secret_value() == "signing-key"


def test_undocumented_names_include_the_generic_ones_a_platform_sets() -> None:
    names = undocumented_names()
    assert {"SECRET_KEY", "OUTBOUND_SMTP_HOST", "HELPGATE_OUTBOUND_SMTP_HOST", "HELPGATE_MONGODB_URI"} <= names
    assert {"MONGODB_DATABASE", "JWT_ISSUER", "HELPGATE_JWT_SECRET", "DATA_DIR"} <= names
    assert not {"MONGODB_URI", "HELPGATE_SECRET_KEY", "SMTP_HOST"} & names


def test_undocumented_names_in_the_environment_are_ignored(environment: pytest.MonkeyPatch) -> None:
    for name in undocumented_names():
        environment.setenv(name, SENTINEL)
    settings = Settings(_env_file=None)  # an int or list field reading the sentinel would fail validation
    assert SENTINEL not in _values(settings).values()
    assert settings.secret_key is None and settings.outbound_smtp_host is None and settings.mongodb_uri is None


def test_undocumented_names_in_a_dotenv_file_are_ignored(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("".join(f"{name}={SENTINEL}\n" for name in sorted(undocumented_names())))
    settings = Settings()
    assert SENTINEL not in _values(settings).values()
    assert settings.secret_key is None and settings.outbound_smtp_host is None


def test_documented_names_in_the_environment_are_read(environment: pytest.MonkeyPatch) -> None:
    for name, value in DOCUMENTED.items():
        environment.setenv(name, value)
    _assert_documented_values(Settings(_env_file=None))


def test_documented_names_in_a_dotenv_file_are_read(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("".join(f"{name}={value}\n" for name, value in DOCUMENTED.items()))
    _assert_documented_values(Settings())


def test_documented_name_wins_over_an_undocumented_one(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment.setenv("OUTBOUND_SMTP_HOST", SENTINEL)
    environment.setenv("SMTP_HOST", "relay.example")
    (tmp_path / ".env").write_text(f"SECRET_KEY={SENTINEL}\nHELPGATE_SECRET_KEY={'k' * 32}\n")
    settings = Settings()
    assert settings.outbound_smtp_host == "relay.example" and settings.secret_key == "k" * 32


def test_code_builds_settings_by_field_name(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("SMTP_HOST", "from-the-environment")
    settings = Settings(
        _env_file=None,
        outbound_smtp_host="relay.example",
        outbound_smtp_port=2526,
        secret_key="k" * 32,
        mongodb_uri="mongodb://db.example:27017",
        gemini_api_key="gemini-key",
    )
    assert (settings.outbound_smtp_host, settings.outbound_smtp_port) == ("relay.example", 2526)
    assert settings.secret_key == "k" * 32 and settings.mongodb_uri == "mongodb://db.example:27017"
    assert settings.gemini_api_key is not None and settings.gemini_api_key.get_secret_value() == "gemini-key"


def test_smtp_host_name_defaults_to_the_machine_fqdn(environment: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).smtp_hostname == socket.getfqdn()
    environment.setenv("HELPGATE_SMTP_HOSTNAME", "mx.example.com")
    assert Settings(_env_file=None).smtp_hostname == "mx.example.com"


@pytest.mark.parametrize("only", ["HELPGATE_SMTP_TLS_CERT", "HELPGATE_SMTP_TLS_KEY"])
def test_smtp_tls_certificate_and_key_come_together(environment: pytest.MonkeyPatch, only: str) -> None:
    environment.setenv(only, "/etc/helpgate/tls.pem")
    with pytest.raises(ValidationError, match="set both HELPGATE_SMTP_TLS_CERT and HELPGATE_SMTP_TLS_KEY"):
        Settings(_env_file=None)
    other = {"HELPGATE_SMTP_TLS_CERT": "HELPGATE_SMTP_TLS_KEY", "HELPGATE_SMTP_TLS_KEY": "HELPGATE_SMTP_TLS_CERT"}
    environment.setenv(other[only], "/etc/helpgate/tls.key")
    settings = Settings(_env_file=None)
    assert settings.smtp_tls_cert is not None and settings.smtp_tls_key is not None


@pytest.mark.parametrize(
    ("variables", "chosen"),
    [
        ({}, TriageProvider.HEURISTIC),
        ({"GEMINI_API_KEY": "g"}, TriageProvider.GEMINI),
        ({"OPENAI_BASE_URL": "http://localhost:11434/v1"}, TriageProvider.OPENAI),
        ({"GEMINI_API_KEY": "g", "OPENAI_BASE_URL": "http://localhost:11434/v1"}, TriageProvider.GEMINI),
        ({"OPENAI_API_KEY": "sk-for-another-tool"}, TriageProvider.HEURISTIC),  # a key alone sends no mail out
        ({"GEMINI_API_KEY": "", "OPENAI_BASE_URL": ""}, TriageProvider.HEURISTIC),  # compose's `${VAR:-}`
        ({"HELPGATE_TRIAGE_PROVIDER": "heuristic", "GEMINI_API_KEY": "g"}, TriageProvider.HEURISTIC),
        ({"HELPGATE_TRIAGE_PROVIDER": "OpenAI", "OPENAI_API_KEY": "sk"}, TriageProvider.OPENAI),
        ({"HELPGATE_TRIAGE_PROVIDER": "openai", "GEMINI_API_KEY": "g", "OPENAI_API_KEY": "sk"}, TriageProvider.OPENAI),
        ({"HELPGATE_TRIAGE_PROVIDER": "", "OPENAI_BASE_URL": "http://vllm:8000/v1"}, TriageProvider.OPENAI),
    ],
)
def test_the_triage_provider_is_named_or_follows_what_is_configured(
    environment: pytest.MonkeyPatch, variables: dict[str, str], chosen: TriageProvider
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    assert Settings(_env_file=None).triage_by is chosen


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"HELPGATE_TRIAGE_PROVIDER": "gemini"}, "HELPGATE_TRIAGE_PROVIDER=gemini needs GEMINI_API_KEY"),
        ({"HELPGATE_TRIAGE_PROVIDER": "openai"}, "HELPGATE_TRIAGE_PROVIDER=openai needs OPENAI_BASE_URL"),
        ({"HELPGATE_TRIAGE_PROVIDER": "openai", "OPENAI_API_KEY": ""}, "HELPGATE_TRIAGE_PROVIDER=openai needs"),
        ({"HELPGATE_TRIAGE_PROVIDER": "claude"}, "triage_provider"),
        ({"OPENAI_BASE_URL": "localhost:11434"}, "OPENAI_BASE_URL"),
    ],
)
def test_a_provider_named_but_not_configured_is_refused(
    environment: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        environment.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None)


def test_start_up_stops_with_the_reason(environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    async def serve(settings: Settings) -> int:
        raise AssertionError("helpgate started")

    environment.setattr(cli.serve, "run", serve)
    environment.setenv("HELPGATE_TRIAGE_PROVIDER", "openai")
    assert cli.main(["serve"]) == 2
    assert "HELPGATE_TRIAGE_PROVIDER=openai needs OPENAI_BASE_URL" in capsys.readouterr().err


def test_the_openai_key_is_never_shown(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("OPENAI_API_KEY", "sk-very-secret")
    settings = Settings(_env_file=None)
    assert "sk-very-secret" not in repr(settings) and "sk-very-secret" not in settings.model_dump_json()
