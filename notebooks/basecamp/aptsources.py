"""This machine's apt sources and options: where a stand-in base bootstraps Debian from.

Both file formats (one-line `sources.list`, deb822 `.sources`), the Debian archive to bootstrap a
suite from, and the host apt options a stand-in inherits (`apt-config dump`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from basecamp import config, process
from basecamp.errors import LabError

#: Host apt options a stand-in inherits (a snapshot mirror needs the date checks off, for instance).
INHERITED_APT_OPTIONS = ("Acquire::Check-Valid-Until", "Acquire::Check-Date")


@dataclass
class AptSource:
    """One apt source entry (either file format)."""

    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]
    options: dict[str, str] = field(default_factory=dict)
    enabled: bool = True


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822 `.sources` file (stanzas separated by blank lines, `#` comments)."""
    entries: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and last:
                fields[last] += " " + line.strip()
                continue
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip().lower()
                fields[last] = value.strip()
        if not fields.get("uris"):
            continue
        known = {"types", "uris", "suites", "components", "enabled"}
        entries.append(
            AptSource(
                types=fields.get("types", "").split(),
                uris=fields.get("uris", "").split(),
                suites=fields.get("suites", "").split(),
                components=fields.get("components", "").split(),
                options={k: v for k, v in fields.items() if k not in known},
                enabled=fields.get("enabled", "yes").lower() not in ("no", "false", "0"),
            )
        )
    return entries


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a one-line `sources.list` (`deb [opts] uri suite comp...`)."""
    entries: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options: dict[str, str] = {}
        match = re.match(r"^(\S+)\s+\[([^\]]*)\]\s+(.*)$", line)
        if match:
            kind, opts, rest = match.groups()
            for opt in opts.split():
                key, _, value = opt.partition("=")
                options[key.lower()] = value
        else:
            kind, _, rest = line.partition(" ")
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            continue
        entries.append(AptSource(types=[kind], uris=[words[0]], suites=[words[1]], components=words[2:], options=options))
    return entries


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every enabled apt source of this machine, from both file formats."""
    entries: list[AptSource] = []
    files = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            entries += parse_one_line(path.read_text(errors="replace"))
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        entries += parse_deb822(path.read_text(errors="replace"))
    return [e for e in entries if e.enabled]


DEBIAN_SUITES = {
    "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
    "oldoldstable", "oldstable", "stable", "testing", "unstable",
}  # fmt: skip


@dataclass(frozen=True)
class DebianMirror:
    """A Debian archive URL and the suite to bootstrap from it."""

    url: str
    suite: str


def debian_mirror(sources: Iterable[AptSource], suite: str) -> DebianMirror:
    """The host's Debian archive (an entry with a plain Debian release suite), to bootstrap `suite` from."""
    ranked: list[tuple[int, str]] = []
    for entry in sources:
        if "deb" not in entry.types or "main" not in entry.components:
            continue
        for uri in entry.uris:
            if not uri.startswith(("http://", "https://")):
                continue
            if suite in entry.suites:
                ranked.append((0, uri))
            elif set(entry.suites) & DEBIAN_SUITES:
                ranked.append((1, uri))
    if not ranked:
        raise LabError(
            f"No Debian archive in this machine's apt sources (/etc/apt/sources.list, "
            f"/etc/apt/sources.list.d/): cannot bootstrap Debian {suite} for a stand-in base. "
            "Pull the real images instead (`docker pull " + config.SLIM_BASE + "`)."
        )
    return DebianMirror(url=min(ranked)[1].rstrip("/"), suite=suite)


def parse_apt_config_dump(text: str, names: Iterable[str] = INHERITED_APT_OPTIONS) -> dict[str, str]:
    """The given options from `apt-config dump` output (`Name "value";` lines)."""
    wanted = set(names)
    options: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r'^(\S+)\s+"(.*)";$', line.strip())
        if match and match.group(1) in wanted:
            options[match.group(1)] = match.group(2)
    return options


def host_apt_options(names: Iterable[str] = INHERITED_APT_OPTIONS) -> dict[str, str]:
    """The given apt options as `apt-config dump` reports them on this machine (empty without apt)."""
    proc = process.attempt(["apt-config", "dump"], timeout=30)
    if proc is None:
        return {}
    return parse_apt_config_dump(proc.stdout, names)
