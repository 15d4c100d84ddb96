"""The one way the lab runs a throwaway container: `with throwaway(image, ...) as container:`.

Every container the lab creates (a probe, a smoke test, a timed run) comes from here, so two things
hold everywhere: it carries the made label (`config.made_labels()`), which `./lab clean` selects on,
and it is removed (forced) when the `with` block ends, whether it ends normally, by an exception or
by Ctrl-C / a kernel interrupt. A kernel killed outright (SIGKILL) runs no cleanup at all: the label
is what lets `./lab clean` find what it left (tests/basecamp/test_containers.py kills one).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import docker.errors

from basecamp import config, engine
from basecamp.errors import InputError, LabError


def create(dk: Any, image: str, labels: Mapping[str, str] | None = None, **options: Any) -> Any:
    """`docker create` of `image` with the made label (plus `labels`); `options`: the SDK's create keywords."""
    return dk.containers.create(image, labels=config.made_labels(**dict(labels or {})), **options)


def remove(container: Any) -> None:
    """Remove `container` (forced: it may still run); one that is gone already is fine."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass


@contextmanager
def throwaway(image: str, *, start: bool = False, what: str = "", client: Any = None,
              labels: Mapping[str, str] | None = None, **options: Any) -> Iterator[Any]:
    """A container of `image`, made-labelled, started when `start`; removed (forced) when the block ends.

    `options` are the docker SDK's `containers.create` keywords (command, entrypoint, ports, user, ...).
    `what` names the caller in errors: with it, a missing image is an InputError and an engine that
    refuses to create or start the container a LabError; without it, the SDK's errors pass unchanged.
    `labels`: labels added to the made label. `client`: a docker client (default `engine.client()`).
    """
    dk = client if client is not None else engine.client()
    try:
        container = create(dk, image, labels, **options)
    except docker.errors.ImageNotFound as exc:
        if what:
            raise InputError(f"{what}: no image {image!r} in the engine: build it first") from exc
        raise
    except docker.errors.APIError as exc:
        if what:
            raise LabError(f"{what}: the engine could not create a container of {image}: {exc}") from exc
        raise
    try:
        if start:
            _start(container, image, what)
        yield container
    finally:  # also on KeyboardInterrupt and GeneratorExit
        remove(container)


def _start(container: Any, image: str, what: str) -> None:
    try:
        container.start()
    except docker.errors.APIError as exc:
        if what:
            raise LabError(f"{what}: the engine could not start {image}: {exc}") from exc
        raise
