"""How often one measurement reads and parses its Dockerfile and asks the engine for its disk usage (engine).

Issue 14: a step is resolved once (basecamp.steps.ResolvedStep), so a measurement parses its
Dockerfile once; `build()` tracks the build cache once, so a build costs at most two disk-usage
queries (one before, one after). The counts are taken on a real `measure_step` by wrapping
`dockerparse`'s model, `Path.read_text` and `buildcache.disk_usage`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from basecamp import buildcache, config, dockerparse, measure, steps

#: The module (the package's `build` attribute is the facade's function).
build_module = importlib.import_module("basecamp.build")


@dataclass
class Counts:
    """What one measurement did, in order: "parse", "read", "df", "build", "build-end"."""

    events: list[str] = field(default_factory=list)
    #: For each event, the `buildcache.track` call it happened in (its generator frame, kept alive), or None.
    tracks: list[Any] = field(default_factory=list)

    def add(self, kind: str, track: Any = None) -> None:
        self.events.append(kind)
        self.tracks.append(track)

    def count(self, kind: str, *, before_first_build: bool = False) -> int:
        events = self.events
        if before_first_build and "build" in events:
            events = events[:events.index("build")]
        return sum(1 for e in events if e == kind)

    @property
    def builds(self) -> int:
        return self.count("build")

    def df_per_build(self) -> list[int]:
        """For each build, the disk-usage queries of every `track()` call wrapped around it (nested ones too)."""
        per = []
        starts = [i for i, e in enumerate(self.events) if e == "build"]
        ends = [i for i, e in enumerate(self.events) if e == "build-end"]
        for start, end in zip(starts, ends, strict=True):
            frames = {id(t): t for t in self.tracks if t is not None}
            wrapping = [key for key in frames
                        if min(i for i, t in enumerate(self.tracks) if id(t) == key) < start
                        and max(i for i, t in enumerate(self.tracks) if id(t) == key) > end]
            per.append(sum(1 for e, t in zip(self.events, self.tracks, strict=True)
                           if e == "df" and t is not None and id(t) in wrapping))
        return per

    def summary(self) -> str:
        return (f"Dockerfile parses before the first build: {self.count('parse', before_first_build=True)}, "
                f"in total: {self.count('parse')}; reads before the first build: "
                f"{self.count('read', before_first_build=True)}, in total: {self.count('read')}; "
                f"located (steps.dockerfile) before the first build: {self.count('locate', before_first_build=True)}, "
                f"in total: {self.count('locate')}; "
                f"builds: {self.builds}; disk-usage queries: {self.count('df')} in total, "
                f"per build (the track() calls around it): {self.df_per_build()}")


def _current_track() -> Any | None:
    """The frame of the `buildcache.track` call running now (a generator: only one runs at a time), else None."""
    found = [f.frame for f in inspect.stack(0)[2:] if f.function == "track" and f.filename == buildcache.__file__]
    return found[0] if found else None


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """Count parses of the measured Dockerfile, reads of it, disk-usage queries and builds."""
    counts = Counts()
    path = steps.dockerfile("05").resolve()
    whole = dockerparse.parse(path.read_text()).instructions

    class Counted(dockerparse.Dockerfile):
        """The model `parse` returns: its construction is one parse (however a module imported `parse`)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self.instructions == whole:
                counts.add("parse")

    monkeypatch.setattr(dockerparse, "Dockerfile", Counted)
    real_read = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.resolve() == path:
            counts.add("read")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    real_glob = Path.glob

    def glob(self: Path, pattern: str, *args: Any, **kwargs: Any) -> Any:
        if self == config.DOCKERFILES_DIR and pattern == "*.Dockerfile":
            counts.add("locate")  # steps.dockerfile: a step's Dockerfile looked up by its number
        return real_glob(self, pattern, *args, **kwargs)

    monkeypatch.setattr(Path, "glob", glob)
    real_df = buildcache.disk_usage

    def disk_usage(client: Any = None) -> dict[str, Any]:
        counts.add("df", _current_track())
        return real_df(client)

    monkeypatch.setattr(buildcache, "disk_usage", disk_usage)
    real_cli = build_module._build_cli

    def build_cli(*args: Any, **kwargs: Any) -> Any:
        counts.add("build")
        try:
            return real_cli(*args, **kwargs)
        finally:
            counts.add("build-end")

    monkeypatch.setattr(build_module, "_build_cli", build_cli)
    yield counts


@pytest.mark.engine
def test_a_measurement_parses_its_dockerfile_once_and_asks_for_disk_usage_twice_per_build(
        docker_client: Any, tmp_path: Path, counted: Counts) -> None:
    m = measure.measure_step("05", scenarios=["cold", "code-change"], repeats=1, results_path=tmp_path / "r.jsonl",
                             log=None, display="none")
    assert m.step == "05-multi-stage" and m.target == "runtime"
    print(counted.summary())
    print(" ".join(counted.events))
    assert counted.builds == 3, "cold, the warm-up, the code change"
    assert counted.count("parse") == 1, counted.summary()
    assert counted.count("read") == 1, counted.summary()
    assert max(counted.df_per_build()) <= 2, counted.summary()
