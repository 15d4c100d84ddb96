"""`python -m basecamp prepare | check | clean | poetry-env | bench | report` — what `./lab` runs under the hood."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from basecamp.errors import LabError
from basecamp.runs import SCENARIOS

# Each command imports what it needs inside its own function, on purpose: `python -m basecamp poetry-env` runs on
# the host's bare Python before the lab's environment (the docker SDK, plotly, nbconvert) is installed.


def prepare() -> None:
    """Engine up, base images present (pulled or stand-ins), BuildKit found. Idempotent."""
    from basecamp import bases, engine
    from basecamp.units import fmt_bytes

    started = time.perf_counter()
    status = engine.ensure_engine()
    print(f"engine: Docker {status.server_version} ({status.how}), data in {status.root_dir}")
    for b in bases.ensure_bases(progress=lambda msg: print(f"  {msg}", flush=True)):
        print(f"base: {b.tag} — {b.source}, {fmt_bytes(b.size_bytes)} ({b.seconds:.1f} s)")
    runtime = bases.ensure_distroless(progress=lambda msg: print(f"  {msg}", flush=True))
    print(f"base: {runtime.tag} — {runtime.source}, {fmt_bytes(runtime.size_bytes)} ({runtime.seconds:.1f} s)")
    cli = engine.buildkit_cli()
    print(f"builder: {cli.description if cli else 'classic builder (no BuildKit CLI found)'}")
    print(f"prepared in {time.perf_counter() - started:.1f} s")


def bundle(out: str | None) -> None:
    """The workshop bundle (basecamp/bundlemake.py): one file with the bases, the wheels and the step builds' index."""
    from pathlib import Path

    from basecamp import bundlemake
    from basecamp.baserecipes import python_of
    from basecamp.config import SLIM_BASE
    from basecamp.index import configured_index_url
    from basecamp.scratch import DEPENDENCY

    made = bundlemake.make_bundle(Path(out) if out else None, dependency=DEPENDENCY, python_version=python_of(SLIM_BASE),
                                  index_url=configured_index_url())
    for line in made.lines():
        print(line)


def load_bundle() -> None:
    """`docker load` of the bases of the bundle `./lab prepare --bundle` unpacked (basecamp/bundle.py)."""
    from urllib.parse import urlsplit

    from basecamp import bundle as workshop
    from basecamp import engine
    from basecamp.index import configured_index_url

    engine.ensure_engine()
    workshop.load_images(index_host=urlsplit(configured_index_url()).hostname)


def check() -> int:
    from basecamp import checks

    return 0 if checks.report(checks.run_checks()) else 1


def clean(include_bases: bool, dry_run: bool = False) -> None:
    from basecamp.cleanup import cleanup

    rep = cleanup(include_bases=include_bases, dry_run=dry_run)
    print(rep.summary())
    if dry_run:
        for name in [*rep.containers, *rep.images]:
            print(f"  {name}")
    elif rep.kept_bases:
        print("(use --bases to remove the stand-in bases too)")


def poetry_env() -> None:
    """Print `export` lines for the host's Poetry (index mirror, CA bundle) for `eval` in ./lab."""
    from basecamp import index

    for key, value in index.poetry_env(index.index_settings()).items():
        print(f"export {key}={shlex.quote(value)}")


def bench(steps: str | None, repeats: int | None, out: str | None, scenarios: str | None) -> int:
    """The measurement protocol for every step (basecamp/bench.py): a table, then CSV + JSON files."""
    from pathlib import Path

    from basecamp.bench import bench as run_bench  # imported here: it needs the Docker SDK
    from basecamp.units import fmt_seconds

    chosen = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    wanted = [s.strip() for s in scenarios.split(",") if s.strip()] if scenarios else SCENARIOS
    report = run_bench(chosen, repeats=repeats, scenarios=wanted, out=Path(out) if out else None)
    print()
    print(report.table)
    if report.lab_time_table:
        print("\nwhere the time went: the builds, and the lab's own work around them (sizing, edits, tracking)")
        print(report.lab_time_table)
    for name, why in report.failures.items():
        print(f"FAILED {name}: {why}")
    print(f"wrote {report.csv_path} and {report.json_path}")
    print(f"bench finished in {fmt_seconds(report.wall_s)}")
    return 1 if report.failures else 0


def report(notebooks: list[str] | None, out: str | None, timeout: int, folder: str | None = None) -> int:
    """Execute the series headless and write the static site (basecamp/book.py); 1 when a notebook fails."""
    from pathlib import Path

    from basecamp import book
    from basecamp.units import fmt_seconds

    chosen = [n for arg in notebooks or [] for n in arg.split(",") if n.strip()]
    result = book.build_book(book.discover(chosen, Path(folder) if folder else None), Path(out) if out else None, timeout=timeout)
    print()
    for run in result.runs:
        print(f"{'passed' if run.ok else 'FAILED':6}  {run.name:28} {fmt_seconds(run.seconds):>10}")
    for run in result.failures:
        print(f"FAILED {run.name}.ipynb at {run.failure.describe() if run.failure else '?'}", file=sys.stderr)
    print(f"wrote {result.index} ({len(result.runs)} pages, plotly.js once) in {fmt_seconds(result.wall_s)}")
    return 1 if result.failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m basecamp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="start the engine and make sure the base images exist")
    sub.add_parser("check", help="print the setup checks")
    bundle_p = sub.add_parser("bundle", help="write the workshop bundle: bases, wheels, the step builds' index")
    bundle_p.add_argument("--out", help="the bundle file (default: .lab/workshop-bundle.tar)")
    sub.add_parser("load-bundle", help="load the bases of the bundle unpacked in .lab/bundle/")
    clean_p = sub.add_parser("clean", help="remove the lab's containers and images, and nothing else")
    clean_p.add_argument("--bases", action="store_true", help="remove the stand-in base images too")
    clean_p.add_argument("--dry-run", action="store_true", help="remove nothing, list what would go")
    sub.add_parser("poetry-env", help="print the environment the host's Poetry needs, as export lines")
    bench_p = sub.add_parser("bench", help="measure every step: " + ", ".join(SCENARIOS))
    bench_p.add_argument("--steps", help="comma-separated steps, e.g. 01,04,06 (default: every step)")
    bench_p.add_argument("--repeats", type=int, help="runs per scenario (default: $ANNAPURNA_REPEATS, else 2)")
    bench_p.add_argument("--scenarios", help="comma-separated, default: " + ",".join(SCENARIOS))
    bench_p.add_argument("--out", help="folder for the CSV and JSON files (default: .lab/bench/)")
    report_p = sub.add_parser("report", help="execute every notebook headless and write a static HTML site")
    report_p.add_argument("--out", help="folder for the site (default: .lab/report/)")
    report_p.add_argument("--notebooks", nargs="+", metavar="NB",
                          help="only these notebooks, by prefix: 01 15_summary (default: every NN_*.ipynb)")
    report_p.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default: 1800)")
    report_p.add_argument("--notebooks-dir", help="folder of the series (default: notebooks/)")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare()
        elif args.command == "bundle":
            bundle(args.out)
        elif args.command == "load-bundle":
            load_bundle()
        elif args.command == "check":
            return check()
        elif args.command == "clean":
            clean(args.bases, args.dry_run)
        elif args.command == "bench":
            return bench(args.steps, args.repeats, args.out, args.scenarios)
        elif args.command == "report":
            return report(args.notebooks, args.out, args.timeout, args.notebooks_dir)
        else:
            poetry_env()
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The build and smoke-test helpers already stopped their subprocess / removed their container.
        print("interrupted: the running build was cancelled and its containers removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
