"""One small Dockerfile reader for the lab: stages, instructions with their line numbers, flags,
RUN mounts and COPY sources.

The part of Docker's syntax the lab needs: a line ending in `\\` continues the instruction; comment
lines (`#` first) are dropped, inside a continued instruction too; keywords are case-insensitive;
flags (`--from=builder`, `--mount=type=cache,target=/x`) come first, then the arguments. Not read:
heredocs (`RUN <<EOF`), an `# escape=` directive other than `\\`, ARG values inside FROM.
`steps.parse_stages`, `buildcache.cache_mount_specs`, `verify.copy_sources` and the verdict on a
learner's Dockerfile (basecamp.yours) all read Dockerfiles through `parse`.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

#: Instructions that copy from the build context (unless `--from=` names a stage or an image).
COPY_KEYWORDS = ("COPY", "ADD")


@dataclass(frozen=True)
class Mount:
    """One `RUN --mount=...`: its type (cache, secret, bind, tmpfs, ssh), target and options."""

    type: str
    target: str
    id: str | None
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Instruction:
    """One instruction: where it starts, its keyword, its flags, and what follows them."""

    #: 1-based line of the keyword in the file.
    line: int
    keyword: str
    #: The flags as written, e.g. ("--from=builder",) or ("--mount=type=cache,target=/tmp/c",).
    flags: tuple[str, ...]
    #: Everything after the flags, continuation lines joined with a space.
    args: str
    #: The instruction as written (continuation lines kept, comment lines dropped).
    text: str
    #: Index of its stage (0 = the first FROM); -1 for an ARG before the first FROM.
    stage: int = -1

    def flag(self, name: str) -> str | None:
        """The value of `--<name>=value` (or "" for a bare `--<name>`), None when absent."""
        for f in self.flags:
            key, eq, value = f[2:].partition("=")
            if key.lower() == name.lower():
                return value if eq else ""
        return None

    @property
    def mounts(self) -> list[Mount]:
        """The `--mount=` specs of a RUN (type defaults to bind, as in Docker)."""
        out = []
        for f in self.flags:
            key, _, spec = f[2:].partition("=")
            if key.lower() != "mount":
                continue
            opts = [kv.partition("=")[::2] for kv in spec.split(",") if kv]
            found = dict(opts)
            target = found.get("target") or found.get("dst") or found.get("destination") or ""
            out.append(Mount(type=found.get("type", "bind"), target=target, id=found.get("id") or None,
                             options=tuple(opts)))
        return out

    @property
    def words(self) -> list[str]:
        """The arguments as words: the JSON (exec) form's list, else split like a shell would."""
        if self.args.startswith("["):
            try:
                return [str(x) for x in json.loads(self.args)]
            except ValueError:
                pass
        try:
            return shlex.split(self.args)
        except ValueError:
            return self.args.split()

    @property
    def sources(self) -> list[str] | None:
        """The context paths a COPY/ADD copies (no "./", no trailing "/"; "." for all of it).

        None for other instructions and for `COPY --from=...` (it copies from a stage or an image).
        """
        if self.keyword not in COPY_KEYWORDS or self.flag("from") is not None:
            return None
        out = []
        for src in self.words[:-1]:
            while src.startswith("./"):
                src = src[2:]
            norm = src.rstrip("/")
            out.append(norm if norm not in ("", ".", "*") else ".")
        return out


@dataclass(frozen=True)
class Stage:
    """One FROM and the instructions under it."""

    index: int
    #: The image (or earlier stage) it starts from, as written.
    base: str
    name: str | None
    line: int
    instructions: tuple[Instruction, ...] = field(default=())


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: every instruction in order, and its stages."""

    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]

    def resolved_base(self, stage: Stage) -> str:
        """The image a stage starts from, following `FROM <earlier stage>` back to an image."""
        names: dict[str, str] = {}
        for st in self.stages:
            resolved = names.get(st.base.lower(), st.base)
            if st.name:
                names[st.name.lower()] = resolved
            if st.index == stage.index:
                return resolved
        return stage.base

    def stage(self, target: str | None = None) -> Stage | None:
        """The stage named `target` (case-insensitive), else the last; None when there is none."""
        if target is None:
            return self.stages[-1] if self.stages else None
        return next((st for st in self.stages if st.name and st.name.lower() == target.lower()), None)


def _split_flags(rest: str) -> tuple[tuple[str, ...], str]:
    flags = []
    rest = rest.strip()
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    return tuple(flags), rest


def parse(text: str) -> Dockerfile:
    """Read a Dockerfile's text (or a single instruction, as BuildKit's log prints it)."""
    units: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue  # Docker drops comment lines, inside a continued instruction too
        if not current:
            start = number
        current.append(raw.rstrip())
        if not stripped.endswith("\\"):
            units.append((start, current))
            current = []
    if current:
        units.append((start, current))
    instructions: list[Instruction] = []
    stage = -1
    for line, lines in units:
        joined = " ".join(part.strip().removesuffix("\\") for part in lines)
        keyword, _, rest = joined.replace("\t", " ").partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        flags, args = _split_flags(rest)
        instructions.append(Instruction(line=line, keyword=keyword, flags=flags, args=args,
                                        text="\n".join(lines), stage=stage))
    stages = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        words = ins.args.split()
        name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
        stages.append(Stage(index=ins.stage, base=words[0] if words else "", name=name, line=ins.line,
                            instructions=tuple(i for i in instructions if i.stage == ins.stage)))
    return Dockerfile(instructions=tuple(instructions), stages=tuple(stages))
