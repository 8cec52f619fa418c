"""The deploy files (Dockerfile, .dockerignore, compose.yaml) checked where no Docker engine runs.

The static tests read the files as Docker and Compose would and hold them to helpgate's own facts: the
settings it reads, the port it serves Inngest on, the Python it needs. The last test replays the image:
the build stage's COPY and `uv sync` lines on this machine, then the image's command with compose's
environment pointed at local stand-ins, its /healthz and its HEALTHCHECK.
"""

from __future__ import annotations

import email
import os
import re
import shlex
import shutil
import signal
import smtplib
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pymongo
import pytest
import yaml  # type: ignore[import-untyped]
from aiosmtpd.controller import Controller
from packaging.specifiers import SpecifierSet
from pydantic import AliasChoices

from helpgate.core.settings import Settings
from helpgate.workflows.inngest_app import SERVE_PATH
from tests.dockerfile import Replay, Stage, context_files, excluded, exec_form, expand, ignore_rules, parse
from tests.mail_capture import free_port

ROOT = Path(__file__).resolve().parents[1]
# What the base image puts on PATH: the replayed image must find its own programs, never the project's .venv.
IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
NOT_SETTINGS = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}  # image variables helpgate does not read


# Reading the files -------------------------------------------------------------------------------------


def stages() -> list[Stage]:
    return parse((ROOT / "Dockerfile").read_text())


def final_stage() -> Stage:
    return stages()[-1]


def build_stage() -> Stage:
    """The stage the final one copies its environment from."""
    sources = {copy.flag("from") for copy in final_stage().all("COPY")}
    found = [stage for stage in stages()[:-1] if stage.name in sources]
    assert len(found) == 1, f"the final stage should copy from one build stage, copies from {sources}"
    return found[0]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml has no {name} service"
    found = services[name]
    assert isinstance(found, dict)
    return found


_INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}` and `$$`."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"] or match["bare"], match["op"], match["arg"] or ""
        current = environ.get(name)
        if op == ":-":
            return current or arg
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and not current:
            raise ValueError(f"{name}: {arg}")
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def service_env(name: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A service's environment as Compose passes it, with `environ` (default: nothing set) interpolated."""
    raw = service(name).get("environment") or {}
    pairs = dict(item.split("=", 1) for item in raw) if isinstance(raw, list) else raw
    return {str(key): interpolate(str(value), environ or {}) for key, value in pairs.items()}


def image_env() -> dict[str, str]:
    return {name: expand(value, {"PATH": IMAGE_PATH}) for name, value in final_stage().env().items()}


def setting_names() -> dict[str, str]:
    """Every environment variable Settings reads (upper case) → its field."""
    prefix = str(Settings.model_config.get("env_prefix") or "")
    names: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [alias or prefix + name]
        names |= {choice.upper(): name for choice in choices if isinstance(choice, str)}
    return names


def documented_setting_names() -> set[str]:
    """The variables named in the first column of docs/settings.md's table (generated from Settings)."""
    text = (ROOT / "docs" / "settings.md").read_text()
    section = text.split("\n| variable | default | meaning |\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}


def container_settings(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Settings:
    """Settings as helpgate reads them inside the container: only `env` is set."""
    names = setting_names()
    for key in list(os.environ):
        if key.upper() in names or key.upper().startswith("HELPGATE_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def published(name: str) -> dict[int, str]:
    """A service's published ports: container port → the host side as written."""
    ports: dict[int, str] = {}
    for entry in service(name).get("ports") or []:
        host, _, container = str(entry).rpartition(":")
        ports[int(container.split("/")[0])] = host
    return ports


def seconds(duration: str) -> float:
    """A Docker/Compose duration such as `30s`, `1m30s`, `500ms`."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(number + unit for number, unit in parts) == duration, f"not a duration: {duration}"
    return sum(float(number) * units[unit] for number, unit in parts)


# The Dockerfile ----------------------------------------------------------------------------------------


def test_dockerfile_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse(
        'FROM a AS one\nRUN --mount=type=cache,target=/c \\\n  # note\n  uv sync \\\n  --locked\nFROM a\nCMD ["x"]\n'
    )
    assert [(stage.base, stage.name) for stage in parsed] == [("a", "one"), ("a", None)]
    run = parsed[0].instructions[0]
    assert (run.keyword, run.flag("mount"), run.value) == ("RUN", "type=cache,target=/c", "uv sync --locked")
    assert parsed[1].instructions[0].argv == ["x"]
    with pytest.raises(ValueError, match="continuation"):
        parse("FROM a\nRUN x \\\n")


def test_image_is_multi_stage_and_the_final_stage_takes_only_the_environment() -> None:
    build, final = build_stage(), final_stage()
    # A venv links to its interpreter by path: it runs unchanged only on the same base image.
    assert build.base == final.base
    environment = build.env()["UV_PROJECT_ENVIRONMENT"]
    copies = [copy.value.split() for copy in final.all("COPY")]
    assert copies == [[environment, environment]], "the final stage copies the built environment, nothing else"
    assert f"{environment}/bin" in final.env()["PATH"].split(":")


def test_base_image_python_matches_requires_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = SpecifierSet(project["requires-python"])
    for stage in stages():
        match = re.fullmatch(r"(?:docker\.io/)?(?:library/)?python:(\d+)\.(\d+)(?:\.(\d+))?(?:-[\w.-]+)?", stage.base)
        assert match, f"line {stage.line}: {stage.base} is not an official python image with its version"
        version = f"{match[1]}.{match[2]}.{match[3] or 0}"
        assert required.contains(version), f"{stage.base} has Python {version}, the project needs {required}"
        assert (ROOT / ".python-version").read_text().strip() == f"{match[1]}.{match[2]}"


def test_uv_installs_the_locked_runtime_dependencies_before_the_project() -> None:
    build = build_stage()
    syncs = [run for run in build.all("RUN") if "uv sync" in run.value]
    assert len(syncs) == 2, "one sync for the dependencies (a cached layer), one for the project"
    for run in syncs:
        flags = shlex.split(run.value)
        assert "--locked" in flags and "--no-dev" in flags, f"line {run.line}: {run.value}"
    assert "--no-install-project" in syncs[0].value
    assert "--no-editable" in syncs[1].value, "an editable install would point into the build stage's /src"
    source_copy = next(copy for copy in build.all("COPY") if copy.value.split()[0] == "src")
    assert syncs[0].line < source_copy.line < syncs[1].line, "a code change must not rebuild the dependencies"
    assert build.env().get("UV_PYTHON_DOWNLOADS") == "never", "use the image's Python, never a downloaded one"


def test_final_stage_runs_as_a_non_root_user_it_creates() -> None:
    final = final_stage()
    user = final.last("USER")
    assert user is not None, "the final stage sets USER"
    name, _, group = user.value.partition(":")
    assert name not in ("root", "0") and group not in ("root", "0")
    creates = " ".join(run.value for run in final.all("RUN"))
    assert "useradd" in creates and (f"--uid {name}" in creates or f" {name}" in creates.split("useradd", 1)[1])
    assert user.line < final.last("ENTRYPOINT").line  # type: ignore[union-attr]


def test_entrypoint_runs_helpgate_serve() -> None:
    final = final_stage()
    entrypoint, command = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint is not None and command is not None
    assert entrypoint.value.startswith("[") and command.value.startswith("["), "exec form: helpgate gets SIGTERM"
    assert entrypoint.argv + command.argv == ["helpgate", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["helpgate"] == "helpgate.cli:main"


def test_healthcheck_asks_healthz_on_the_http_port() -> None:
    final, env = final_stage(), image_env()
    check = final.last("HEALTHCHECK")
    assert check is not None
    form, _, command = check.value.partition(" ")
    assert form == "CMD"
    argv = exec_form(command)
    assert argv[0] == "python", "curl is not in the slim image"
    script = argv[-1]
    assert "/healthz" in script and "127.0.0.1" in script
    assert "HELPGATE_HTTP_PORT" in script or env["HELPGATE_HTTP_PORT"] in script
    assert float(seconds(check.flag("timeout") or "30s")) > 4, "urlopen's own timeout fits in the check's"
    exposed = {int(port.split("/")[0]) for expose in final.all("EXPOSE") for port in expose.value.split()}
    assert exposed == {int(env["HELPGATE_HTTP_PORT"]), int(env["HELPGATE_SMTP_PORT"])}


def test_image_environment_is_helpgate_settings_listening_on_all_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    env, names = image_env(), setting_names()
    assert set(env) - NOT_SETTINGS <= set(names), f"not settings: {set(env) - NOT_SETTINGS - set(names)}"
    settings = container_settings(monkeypatch, {key: value for key, value in env.items() if key in names})
    assert (settings.http_host, settings.smtp_host) == ("0.0.0.0", "0.0.0.0")  # noqa: S104 - in a container
    volumes = [volume.value for volume in final_stage().all("VOLUME")]
    assert volumes == [str(settings.data_dir)]
    assert final_stage().last("WORKDIR").value == str(settings.data_dir)  # type: ignore[union-attr]


def test_dockerignore_sends_the_build_inputs_and_keeps_secrets_out() -> None:
    rules = ignore_rules((ROOT / ".dockerignore").read_text())
    for secret in (".env", ".helpgate/secret_key", ".helpgate/store.sqlite3", ".git/config", ".venv/bin/python"):
        assert excluded(secret, rules), secret
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "src/helpgate/cli/__init__.py",
        "src/helpgate/templates/x.j2",
    ):
        assert not excluded(needed, rules), needed
    assert excluded("src/helpgate/__pycache__/cli.cpython-313.pyc", rules)
    files = context_files(ROOT, rules)
    assert "src/helpgate/cli/__init__.py" in files and not any(path.startswith(("tests/", ".git/")) for path in files)


# compose.yaml ------------------------------------------------------------------------------------------


def test_every_variable_given_to_helpgate_is_a_documented_setting() -> None:
    env, names, documented = service_env("helpgate"), setting_names(), documented_setting_names()
    assert set(env) - set(names) == set(), "compose sets variables helpgate does not read"
    assert set(env) - documented == set(), "compose sets variables docs/settings.md does not list"


def test_compose_environment_makes_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = container_settings(monkeypatch, {**image_env(), **service_env("helpgate")})
    assert settings.mongodb_uri is not None and not settings.embedded_store
    assert settings.outbound_smtp_host == "mailpit" and settings.outbound_smtp_port == 1025
    assert settings.outbound_smtp_security == "none"
    # The dev server: Inngest runs the workflows, unsigned (engine.py reads INNGEST_DEV the same way).
    assert settings.uses_inngest and (settings.inngest_dev or "").lower() not in ("", "0", "false", "no", "off")
    assert settings.inngest_signing_key is None and settings.inngest_event_key is None


def test_secrets_come_from_the_environment_never_from_the_file() -> None:
    raw = service("helpgate")["environment"]
    for name in ("JWT_SECRET", "HELPGATE_SECRET_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        assert re.fullmatch(r"\$\{" + name + r"(:?[-?][^}]*)?\}", str(raw[name])), f"{name}: {raw[name]!r}"
        assert interpolate(str(raw[name]), {}) == "", f"{name} must not default to a value everyone knows"
    assert service_env("helpgate", {"JWT_SECRET": "s" * 40})["JWT_SECRET"] == "s" * 40


def test_service_graph_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, spec in services.items():
        for target, rule in (spec.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on a missing service {target}"
            assert rule["condition"] in conditions
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck to wait for"
    assert service("helpgate")["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert service("helpgate")["depends_on"]["mailpit"]["condition"] == "service_healthy"

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        nexts = set(services[start].get("depends_on") or {})
        return goal in nexts or any(reaches(n, goal, seen | {start}) for n in nexts - seen)

    assert not any(reaches(name, name) for name in services), "depends_on has a cycle"


def test_mongo_is_a_replica_set_of_one_that_the_uri_names() -> None:
    mongo = service("mongo")
    assert str(mongo["image"]).startswith("mongo:")
    command = mongo["command"] if isinstance(mongo["command"], list) else shlex.split(mongo["command"])
    replica_set = command[command.index("--replSet") + 1]
    uri = urllib.parse.urlsplit(service_env("helpgate")["MONGODB_URI"])
    assert uri.scheme == "mongodb" and urllib.parse.parse_qs(uri.query)["replicaSet"] == [replica_set]
    # The member's name is how clients reach the set after discovery: it must be the address in the URI.
    script = mongo["healthcheck"]["test"][-1]
    members = re.findall(r"host:\s*'([^']+)'", script)
    assert re.search(r"_id:\s*'" + re.escape(replica_set) + "'", script) and "rs.initiate" in script
    assert members == [uri.netloc] == ["mongo:27017"]
    assert "isWritablePrimary" in script, "healthy only once the member is primary (writes and transactions work)"
    assert any(str(volume).endswith(":/data/db") for volume in mongo["volumes"])


def test_inngest_dev_server_calls_helpgate_where_it_serves_inngest(monkeypatch: pytest.MonkeyPatch) -> None:
    inngest = service("inngest")
    assert str(inngest["image"]).split(":")[0] == "inngest/inngest"
    command = shlex.split(inngest["command"]) if isinstance(inngest["command"], str) else inngest["command"]
    assert command[:2] == ["inngest", "dev"]
    app_url = urllib.parse.urlsplit(command[command.index("-u") + 1])
    settings = container_settings(monkeypatch, {**image_env(), **service_env("helpgate")})
    assert (app_url.scheme, app_url.hostname, app_url.port, app_url.path) == (
        "http",
        "helpgate",
        settings.http_port,
        SERVE_PATH,
    )
    server = urllib.parse.urlsplit(settings.inngest_base_url or "")
    assert (server.hostname, server.port) == ("inngest", 8288) and 8288 in published("inngest")


def test_outbound_mail_goes_to_mailpit() -> None:
    mailpit = service("mailpit")
    assert str(mailpit["image"]).split(":")[0] == "axllent/mailpit"
    env = service_env("helpgate")
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_SECURITY"]) == ("mailpit", "1025", "none")
    assert 8025 in published("mailpit")


def test_ports_volumes_and_stop_are_consistent(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = container_settings(monkeypatch, {**image_env(), **service_env("helpgate")})
    assert set(published("helpgate")) == {settings.http_port, settings.smtp_port}
    hosts = [host for name in compose()["services"] for host in published(name).values()]
    assert len(hosts) == len(set(hosts)), "a host port is published twice"
    for name in ("inngest", "mailpit"):  # no login in front of these UIs: this machine only
        assert all(host.startswith("127.0.0.1:") for host in published(name).values()), name
    declared = set(compose().get("volumes") or {})
    for name, spec in compose()["services"].items():
        for volume in spec.get("volumes") or []:
            source, _, target = str(volume).partition(":")
            assert source in declared, f"{name}: volume {source} is not declared"
            if name == "helpgate":
                assert target == str(settings.data_dir)
    grace = seconds(service("helpgate")["stop_grace_period"])
    assert grace > settings.shutdown_grace_seconds, "docker would kill helpgate while it finishes in-flight mail"


# The image, replayed -----------------------------------------------------------------------------------


@dataclass
class Catcher:
    """Mailpit's part: plain SMTP on 127.0.0.1, no TLS and no login, every mail kept."""

    mails: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.mails.append(bytes(envelope.original_content or b""))
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def mailpit() -> Iterator[tuple[Catcher, int]]:
    catcher, port = Catcher(), free_port()
    controller = Controller(catcher, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    yield catcher, port
    controller.stop()


def container_env(replay_env: dict[str, str], store_uri: str, mailpit_port: int, database: str) -> dict[str, str]:
    """The image's environment with compose's, the neighbours replaced by what runs here."""
    env = {**replay_env, **service_env("helpgate")}
    env |= {
        "HELPGATE_HTTP_HOST": "127.0.0.1",
        "HELPGATE_HTTP_PORT": str(free_port()),
        "HELPGATE_SMTP_HOST": "127.0.0.1",
        "HELPGATE_SMTP_PORT": str(free_port()),
        "MONGODB_URI": store_uri,  # the test store in place of the mongo service
        "HELPGATE_MONGODB_DATABASE": database,
        "SMTP_HOST": "127.0.0.1",  # the catcher in place of mailpit (plain SMTP, as compose says)
        "SMTP_PORT": str(mailpit_port),
    }
    # No Inngest dev server can run here: without its variables the local runner runs the same workflows.
    return {key: value for key, value in env.items() if not key.startswith("INNGEST_")}


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"helpgate serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own URL
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no healthy /healthz within {timeout}s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def run_healthcheck(env: dict[str, str], cwd: Path) -> int:
    check = final_stage().last("HEALTHCHECK")
    assert check is not None
    argv = exec_form(check.value.partition(" ")[2])
    program = shutil.which(argv[0], path=env["PATH"])
    assert program is not None, argv[0]
    timeout = seconds(check.flag("timeout") or "30s")
    return subprocess.run([program, *argv[1:]], env=env, cwd=cwd, timeout=timeout, check=False).returncode


def image_python_bin() -> Path:
    """The folder of the real interpreter behind this virtual environment: python:3.13-slim has its Python
    (`python3.13`) in /usr/local/bin, on the image's PATH."""
    base = Path(sys.base_prefix) / "bin"
    assert (base / f"python{sys.version_info.major}.{sys.version_info.minor}").exists(), base
    return base


def send_first_mail(port: int) -> None:
    mail = EmailMessage()
    mail["From"] = "Jane Doe <jane@example.org>"
    mail["To"] = "support@localhost"
    mail["Subject"] = "The printer is on fire"
    mail["Message-ID"] = "<deploy-first@example.org>"
    mail.set_content("Help, it is really burning.")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(mail)


def wait_for_acknowledgement(catcher: Catcher, timeout: float) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in list(catcher.mails):
            message = email.message_from_bytes(raw, policy=policy.default)
            if "jane@example.org" in str(message["To"]) and isinstance(message, EmailMessage):
                return message
        time.sleep(0.2)
    raise AssertionError(f"no acknowledgement reached the catcher within {timeout}s ({len(catcher.mails)} mails)")


@pytest.mark.slow
def test_image_replayed_without_docker_serves_answers_its_healthcheck_and_mails(
    tmp_path: Path, store_uri: str, mailpit: tuple[Catcher, int]
) -> None:
    """The Dockerfile's build stage on this machine (its COPY lines from the .dockerignore'd context, its `uv
    sync` lines), then its ENTRYPOINT and CMD with the final stage's ENV and compose's environment, the
    neighbours (mongo, mailpit, inngest) replaced by what runs here. About 10-30 s on 2 shared cores, most
    of it `uv sync` (from uv's cache) and the gateway's start."""
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed: the Dockerfile installs helpgate with it"
    rules = ignore_rules((ROOT / ".dockerignore").read_text())
    replay = Replay(stages(), ROOT, context_files(ROOT, rules), tmp_path / "image")
    host = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV" and not key.startswith("UV_")}
    # This uv stands in for COPY --from=ghcr.io/astral-sh/uv, and the interpreter running the tests for the base
    # image's Python on its PATH: pyenv's shims outside this checkout offer only the machine's global version.
    host["PATH"] = f"{Path(uv).parent}:{image_python_bin()}:{host['PATH']}"
    # Only speed: both change how the same files are installed, not what is installed.
    replay.run(build_stage(), host, {"UV_COMPILE_BYTECODE": "0", "UV_LINK_MODE": "hardlink"})
    cwd, image = replay.run(final_stage(), {"PATH": IMAGE_PATH, "LANG": "C.UTF-8"}, {})
    assert [run.value.split()[0] for run in replay.skipped] == ["groupadd"], "only the user is not replayed"

    catcher, catcher_port = mailpit
    database = f"deploy_{uuid.uuid4().hex[:12]}"
    env = container_env(image, store_uri, catcher_port, database)
    argv = [*final_stage().last("ENTRYPOINT").argv, *final_stage().last("CMD").argv]  # type: ignore[union-attr]
    program = shutil.which(argv[0], path=env["PATH"])
    assert program is not None and Path(program).is_relative_to(replay.root), f"{argv[0]} found at {program}"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [program, *argv[1:]], cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(f"http://127.0.0.1:{env['HELPGATE_HTTP_PORT']}/healthz", process, log, timeout=90)
        assert run_healthcheck(env, cwd) == 0
        assert (Path(env["HELPGATE_DATA_DIR"]) / "jwt_secret").exists(), "an empty JWT_SECRET generates one"
        send_first_mail(int(env["HELPGATE_SMTP_PORT"]))
        acknowledgement = wait_for_acknowledgement(catcher, timeout=60)
        assert acknowledgement["Auto-Submitted"] == "auto-replied"
        assert "<deploy-first@example.org>" in str(acknowledgement["In-Reply-To"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=seconds(service("helpgate")["stop_grace_period"])) == 0, log.read_text()[-4000:]
        assert run_healthcheck(env, cwd) != 0, "with helpgate stopped the healthcheck must fail"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(store_uri)
        with client:
            client.drop_database(database)
