"""Reading a Dockerfile and a .dockerignore as Docker does, and replaying a build where no Docker engine runs.

The parser knows what helpgate's Dockerfile uses: line continuations, comment lines (also inside a
continuation), leading `--flags`, the exec (JSON) and shell forms, `ENV key=value` pairs and `$VAR`
expansion. The replay runs a stage on this machine: COPY from the build context (as .dockerignore filters
it) or from an earlier stage, WORKDIR, ENV, and RUN lines that are `uv` commands, with every path the image
owns (its WORKDIR, VOLUME and COPY destinations) moved below a temporary root.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_FLAG = re.compile(r"--([a-z][a-z-]*)(?:=(\S*))?\s+")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    flags: tuple[tuple[str, str], ...]  # the leading --name=value options, in order
    value: str  # the rest of the logical line
    line: int

    def flag(self, name: str) -> str | None:
        return next((value for key, value in self.flags if key == name), None)

    @property
    def argv(self) -> list[str]:
        """The command: the exec form's list, or the shell form as Docker runs it."""
        return exec_form(self.value)


def exec_form(value: str) -> list[str]:
    if not value.startswith("["):
        return ["/bin/sh", "-c", value]
    parsed = json.loads(value)
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        raise ValueError(f"not a JSON list of strings: {value}")
    return [str(item) for item in parsed]


@dataclass
class Stage:
    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The stage's ENV values, unexpanded, later ones winning."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(env_pairs(instruction.value))
        return values


def env_pairs(value: str) -> dict[str, str]:
    """`ENV a=1 b="x y"`, or the legacy `ENV name value with spaces`."""
    tokens = shlex.split(value)
    if tokens and all("=" in token for token in tokens):
        return dict(token.split("=", 1) for token in tokens)
    name, _, rest = value.strip().partition(" ")
    return {name: rest.strip()}


def expand(value: str, env: Mapping[str, str]) -> str:
    """`$NAME` and `${NAME}` from `env` (unset: empty), as Docker expands ENV values."""
    return _VARIABLE.sub(lambda match: env.get(match[1] or match[2], ""), value)


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile, each with its instructions (ARG before the first FROM is dropped)."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):  # Docker drops these, also inside a continuation
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        instruction = _instruction(pending + stripped, start)
        pending = ""
        if instruction.keyword == "FROM":
            parts = re.split(r"\s+", instruction.value)
            image = parts[0]
            name = parts[2] if len(parts) == 3 and parts[1].lower() == "as" else None
            stages.append(Stage(base=image, name=name, line=start))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword != "ARG":
            raise ValueError(f"line {start}: {instruction.keyword} before the first FROM")
    if pending:
        raise ValueError("the Dockerfile ends inside a line continuation")
    return stages


def _instruction(text: str, line: int) -> Instruction:
    keyword, _, rest = text.strip().partition(" ")
    rest = rest.strip() + " "
    flags: list[tuple[str, str]] = []
    while match := _FLAG.match(rest):
        flags.append((match[1], match[2] or ""))
        rest = rest[match.end() :]
    return Instruction(keyword=keyword.upper(), flags=tuple(flags), value=rest.strip(), line=line)


# .dockerignore ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    text: str
    pattern: re.Pattern[str]
    negated: bool


def ignore_rules(text: str) -> list[IgnoreRule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath(line.removeprefix("!").lstrip("/")))
        rules.append(IgnoreRule(text=line, pattern=_translate(pattern), negated=negated))
    return rules


def _translate(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match plus `**` (any number of directories), as Docker reads .dockerignore."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def excluded(path: str, rules: list[IgnoreRule]) -> bool:
    """A rule matching the path or one of its parents decides; the last such rule wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    verdict = False
    for rule in rules:
        if any(rule.pattern.fullmatch(candidate) for candidate in candidates):
            verdict = not rule.negated
    return verdict


def context_files(directory: Path, rules: list[IgnoreRule]) -> list[str]:
    """The files Docker sends as the build context: relative POSIX paths, sorted."""
    negations = [rule.text.removeprefix("!").lstrip("/") for rule in rules if rule.negated]
    files = []
    for current, dirnames, filenames in os.walk(directory):
        relative = Path(current).relative_to(directory)
        kept = []
        for name in dirnames:
            path = (relative / name).as_posix()
            # Skip a whole excluded directory unless a negated rule could bring back something inside it.
            if excluded(path, rules) and not any(negation.startswith(path + "/") for negation in negations):
                continue
            kept.append(name)
        dirnames[:] = kept
        files += [
            (relative / name).as_posix() for name in filenames if not excluded((relative / name).as_posix(), rules)
        ]
    return sorted(files)


# Replay -----------------------------------------------------------------------------------------------


@dataclass
class Replay:
    """Stages replayed under `root`; `skipped` lists the RUN lines that were not (not `uv` commands)."""

    stages: list[Stage]
    context: Path
    context_list: list[str]
    root: Path
    skipped: list[Instruction] = field(default_factory=list)

    def owned(self) -> set[str]:
        """First components of the absolute paths the image itself makes: those move below `root`."""
        paths = [i.value for s in self.stages for i in s.instructions if i.keyword in ("WORKDIR", "VOLUME")]
        paths += [i.value.split()[-1] for s in self.stages for i in s.all("COPY") if self._stage_or_context(i)]
        return {PurePosixPath(path).parts[1] for path in paths if path.startswith("/")}

    def _stage_or_context(self, instruction: Instruction) -> bool:
        source = instruction.flag("from")
        return source is None or any(stage.name == source for stage in self.stages)

    def path(self, value: str, cwd: Path) -> Path:
        return self.root / value.lstrip("/") if value.startswith("/") else cwd / value

    def env_value(self, value: str, env: Mapping[str, str]) -> str:
        """Moves owned absolute paths (also in a `:` list such as PATH) below root, then expands `$VARS`."""
        owned = self.owned()
        parts = [
            str(self.root / part.lstrip("/"))
            if part.startswith("/") and PurePosixPath(part).parts[1:2] and PurePosixPath(part).parts[1] in owned
            else part
            for part in value.split(":")
        ]
        return expand(":".join(parts), env)

    def run(self, stage: Stage, env: dict[str, str], overrides: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
        """Replay `stage` starting from `env`; `overrides` win over its ENV. Returns the final WORKDIR and env."""
        cwd = self.root
        env = {**env, **overrides}
        for instruction in stage.instructions:
            if instruction.keyword == "ENV":
                for name, value in env_pairs(instruction.value).items():
                    env[name] = self.env_value(value, env)
                env.update(overrides)
            elif instruction.keyword == "WORKDIR":
                cwd = self.path(instruction.value, cwd)
                cwd.mkdir(parents=True, exist_ok=True)
            elif instruction.keyword == "COPY":
                self._copy(instruction, cwd)
            elif instruction.keyword == "RUN":
                self._run(instruction, cwd, env)
        return cwd, env

    def _copy(self, instruction: Instruction, cwd: Path) -> None:
        *sources, target = instruction.value.split()
        source_stage = instruction.flag("from")
        if source_stage is not None and not any(stage.name == source_stage for stage in self.stages):
            return  # from another image (uv's): the caller provides its stand-in
        destination = self.path(target, cwd)
        into_directory = target.endswith("/") or len(sources) > 1
        for source in sources:
            if source_stage is not None:
                origin = self.path(source, cwd)
                if origin != destination:
                    shutil.copytree(origin, destination, symlinks=True, dirs_exist_ok=True)
                continue
            prefix = source.strip("/").removeprefix("./")
            matched = [path for path in self.context_list if path == prefix or path.startswith(prefix + "/")]
            if not matched:
                raise AssertionError(f"line {instruction.line}: COPY {source}: not in the build context")
            for path in matched:
                if path == prefix:
                    target_path = destination / PurePosixPath(path).name if into_directory else destination
                else:
                    target_path = destination / PurePosixPath(path).relative_to(prefix)
                target_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.context / path, target_path)

    def _run(self, instruction: Instruction, cwd: Path, env: Mapping[str, str]) -> None:
        command = instruction.value
        if command.split()[:1] != ["uv"]:
            self.skipped.append(instruction)
            return
        done = subprocess.run(
            ["/bin/sh", "-c", command], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=900, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"line {instruction.line}: RUN {command} failed:\n{done.stdout}\n{done.stderr}")
