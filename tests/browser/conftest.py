"""Browser tests: Debian's chromium driven by Playwright's Python package — no browser download.

The chromium is the system one (`/usr/bin/chromium`, or $ANNAPURNA_CHROMIUM); a missing one FAILS
the tests with the fix in the message. Screenshots go to $ANNAPURNA_ARTIFACTS/screenshots/
(default `.lab/artifacts/screenshots/`) and are listed at the end of the pytest run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

CHROMIUM_ENV = "ANNAPURNA_CHROMIUM"
ARTIFACTS_ENV = "ANNAPURNA_ARTIFACTS"


def chromium_path() -> str:
    """The system chromium, or a test failure that says how to install it."""
    wanted = os.environ.get(CHROMIUM_ENV)
    found = wanted if wanted and os.access(wanted, os.X_OK) else shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        where = f"${CHROMIUM_ENV}={wanted!r} is not executable" if wanted else "no `chromium` on PATH"
        pytest.fail(f"the browser tests need Debian's chromium ({where}): run `apt-get install -y chromium` "
                    f"as root (.ci/run does) or set ${CHROMIUM_ENV} to a Chromium binary")
    return found


def artifacts_dir() -> Path:
    from basecamp import config

    return Path(os.environ.get(ARTIFACTS_ENV) or config.REPO_ROOT / ".lab" / "artifacts")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as pw:
        # root (CI, containers) cannot use Chromium's sandbox
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = pw.chromium.launch(executable_path=path, args=args)
        yield b
        b.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """`screenshot(page_or_locator, "name")` saves `<artifacts>/screenshots/name.png` and lists it."""
    folder = artifacts_dir() / "screenshots"

    def take(target: Any, name: str, **kwargs: Any) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        target.screenshot(path=str(path), **kwargs)
        assert path.stat().st_size > 1000, f"screenshot {path} is empty"
        request.config.annapurna_artifacts.append(f"screenshot: {path}")  # type: ignore[attr-defined]
        print(f"saved {path}")
        return path

    return take


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """A line for the end of the pytest run (timings the tests measured)."""

    def add(line: str) -> None:
        request.config.annapurna_artifacts.append(line)  # type: ignore[attr-defined]
        print(line)

    return add


@dataclass
class OfflinePage:
    """A browser page that may load only addresses starting with `allowed`; the rest is aborted."""

    page: Any
    #: Every request outside `allowed` the page made (each one aborted), in order.
    blocked: list[str]


@pytest.fixture
def offline_page(browser: Any) -> Callable[[str, int, int], OfflinePage]:
    """`offline_page(allowed, width, height)`: a new page in its own context, offline but for `allowed`."""

    def open_page(allowed: str, width: int, height: int) -> OfflinePage:
        context = browser.new_context(viewport={"width": width, "height": height})
        blocked: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith(allowed):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        return OfflinePage(context.new_page(), blocked)

    return open_page
