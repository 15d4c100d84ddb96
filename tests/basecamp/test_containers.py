"""basecamp.containers: the one throwaway container: made label always, removed always; what a killed kernel leaves,
`./lab clean`'s container part removes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import types
import uuid
from typing import Any

import docker.errors
import pytest
from basecamp import config, containers
from basecamp.cleanup import cleanup, remove_lab_containers
from basecamp.errors import InputError, LabError


class _FakeContainer:
    def __init__(self, fail_start: bool = False) -> None:
        self.started = self.removed = False
        self.fail_start = fail_start
        self.id = "c0ffee"

    def start(self) -> None:
        if self.fail_start:
            raise docker.errors.APIError("exec: no such file")
        self.started = True

    def remove(self, force: bool) -> None:
        assert force, "a throwaway container is removed forced: it may still run"
        if self.removed:
            raise docker.errors.NotFound("gone")
        self.removed = True


def _client(container: _FakeContainer, created: list[tuple[str, dict[str, Any]]], error: Exception | None = None) -> Any:
    def create(image: str, **kwargs: Any) -> _FakeContainer:
        if error is not None:
            raise error
        created.append((image, kwargs))
        return container

    return types.SimpleNamespace(containers=types.SimpleNamespace(create=create))


def test_a_throwaway_carries_the_made_label_and_is_removed() -> None:
    box, created = _FakeContainer(), []
    with containers.throwaway("img", start=True, client=_client(box, created), labels={"x.y": "1"},
                              network_disabled=True) as c:
        assert c is box and box.started and not box.removed
    (image, kwargs), = created
    assert image == "img" and kwargs["network_disabled"] is True
    assert kwargs["labels"] == config.made_labels(**{"x.y": "1"})
    assert box.removed


@pytest.mark.parametrize("raised", [RuntimeError("a bug in the caller"), KeyboardInterrupt()])
def test_an_exception_or_an_interrupt_in_the_block_still_removes_it(raised: BaseException) -> None:
    box = _FakeContainer()
    with pytest.raises(type(raised)), containers.throwaway("img", client=_client(box, [])):
        raise raised
    assert box.removed


def test_a_container_that_cannot_start_is_removed_and_named() -> None:
    box = _FakeContainer(fail_start=True)
    with pytest.raises(LabError, match="probe: the engine could not start img"), \
            containers.throwaway("img", start=True, what="probe", client=_client(box, [])):
        pytest.fail("the block must not run")
    assert box.removed
    raw = _FakeContainer(fail_start=True)
    with pytest.raises(docker.errors.APIError), containers.throwaway("img", start=True, client=_client(raw, [])):
        pass
    assert raw.removed


def test_a_missing_image_is_the_callers_input_error_when_named() -> None:
    missing = docker.errors.ImageNotFound("no such image")
    with pytest.raises(InputError, match="smoke test: no image 'img'"), \
            containers.throwaway("img", what="smoke test", client=_client(_FakeContainer(), [], missing)):
        pass
    with pytest.raises(docker.errors.ImageNotFound), containers.throwaway("img", client=_client(_FakeContainer(), [], missing)):
        pass


def test_removing_a_container_that_is_gone_is_fine() -> None:
    box = _FakeContainer()
    containers.remove(box)
    containers.remove(box)  # NotFound the second time
    assert box.removed


# --- a kernel killed mid-probe ------------------------------------------------------------------

#: A kernel in the middle of a probe: a throwaway container that sleeps; says its id, then waits to be killed.
KERNEL = """
import signal, sys, time
from basecamp.containers import throwaway
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as a kernel gets it, even in the background
with throwaway(sys.argv[1], start=True, labels={sys.argv[2]: sys.argv[3]}, command=["sleep", "600"],
               network_disabled=True) as container:
    print(container.id, flush=True)
    time.sleep(600)
"""
RUN_LABEL = "org.annapurna.test.kernel-kill"


def _kernel_with_a_container(run_id: str) -> tuple[subprocess.Popen[str], str]:
    """A Python process standing in for a kernel, inside `throwaway`; it and its running container's id."""
    proc = subprocess.Popen([sys.executable, "-c", KERNEL, config.SLIM_BASE, RUN_LABEL, run_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(config.NOTEBOOKS_DIR)})
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(120)
    if not (line and line[0].strip()):
        proc.kill()
        pytest.fail(f"the kernel never started its container: {proc.communicate(timeout=30)[1][-2000:]}")
    return proc, line[0].strip()


@pytest.mark.engine
def test_a_container_left_by_a_killed_kernel_is_removed_by_the_labs_cleanup(docker_client) -> None:
    run_id = uuid.uuid4().hex
    proc, cid = _kernel_with_a_container(run_id)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        left = docker_client.containers.get(cid)  # SIGKILL skipped the `finally`: the container is still there
        assert left.status == "running"
        # `./lab clean --dry-run` selects it (a dry run removes nothing: other sessions share this engine) ...
        assert left.name in cleanup(dry_run=True).containers
        assert docker_client.containers.get(cid).status == "running", "a dry run removes nothing"
        # ... and `./lab clean`'s container part removes it, narrowed to this run's label for the same reason
        assert remove_lab_containers(docker_client, also={RUN_LABEL: run_id}) == [left.name]
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(cid)
    finally:
        proc.kill()
        for c in docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
            c.remove(force=True)


@pytest.mark.engine
def test_an_interrupted_kernel_removes_its_container_itself(docker_client) -> None:
    run_id = uuid.uuid4().hex
    proc, cid = _kernel_with_a_container(run_id)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0 and "KeyboardInterrupt" in err
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(cid)
    finally:
        proc.kill()
        for c in docker_client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
            c.remove(force=True)
