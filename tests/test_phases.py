"""tests/phases.py: a run's JUnit XML summed into the README's phases (no engine)."""

from __future__ import annotations

from pathlib import Path

from tests.phases import builds_by_phase, from_reports, phases, table

XML = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.basecamp.test_units" name="a" time="0.5"/>
<testcase classname="tests.basecamp.test_build" name="b" time="10.0">
  <properties><property name="marker" value="engine"/></properties></testcase>
<testcase classname="notebooks.01_naive.ipynb" name="Cell 0" time="1.0"/>
<testcase classname="notebooks.01_naive.ipynb" name="Cell 2" time="40.0"/>
<testcase classname="tests.remote.test_remote_engine" name="r" time="100.0"/>
<testcase classname="tests.basecamp.test_cleanup" name="c" time="20.0"/>
</testsuite></testsuites>"""


def test_a_run_is_summed_by_phase(tmp_path: Path) -> None:
    path = tmp_path / "run.xml"
    path.write_text(XML)
    found = phases(path)
    assert found == {"unit tests (no engine)": (0.5, 1), "engine tests of the lab": (10.0, 1),
                     "notebook 01_naive": (41.0, 2), "remote-engine test": (100.0, 1),
                     "cleanup tests (incl. the cleanup after the run)": (20.0, 1)}
    lines = table(found).splitlines()
    assert lines[2] == "| remote-engine test | 100.0 | 1 |"  # largest first
    assert lines[-2] == "| all notebooks | 41.0 | |" and lines[-1] == "| **all of pytest** | **171.5** | 6 |"


def test_the_runs_own_reports_give_the_same_phases_as_its_xml(tmp_path: Path) -> None:
    """What `./lab test` prints at its end: its reports summed like the JUnit XML (setup + call + teardown)."""
    from types import SimpleNamespace

    def rep(nodeid: str, when: str, s: float, engine: bool = False) -> SimpleNamespace:
        return SimpleNamespace(nodeid=nodeid, when=when, duration=s, user_properties=[("marker", "engine")] if engine else [])

    reports = [rep("tests/basecamp/test_units.py::test_a", "call", 0.5),
               rep("tests/basecamp/test_build.py::test_b", "setup", 4.0, engine=True),
               rep("tests/basecamp/test_build.py::test_b", "call", 6.0, engine=True),
               rep("notebooks/01_naive.ipynb::Cell 0", "call", 1.0),
               rep("notebooks/01_naive.ipynb::Cell 2", "call", 40.0),
               rep("tests/remote/test_remote_engine.py::test_r", "call", 100.0),
               rep("tests/basecamp/test_cleanup.py::test_c", "call", 19.5),
               rep("tests/basecamp/test_cleanup.py::test_c", "teardown", 0.5),
               SimpleNamespace(nodeid="tests/x.py", when=None, duration=3.0, user_properties=[])]  # a collect report
    path = tmp_path / "run.xml"
    path.write_text(XML)
    assert from_reports(reports) == phases(path)


def test_each_build_counts_in_the_phase_of_the_test_running_when_it_started() -> None:
    """The summary's `docker build` column: a build belongs to the test whose setup, call or teardown was running
    when it started (a notebook's kernel and a subprocess write the same file); before any test, "outside tests"."""
    from types import SimpleNamespace

    def rep(nodeid: str, when: str, start: float, stop: float, engine: bool = False) -> SimpleNamespace:
        return SimpleNamespace(nodeid=nodeid, when=when, start=start, stop=stop, duration=stop - start,
                               user_properties=[("marker", "engine")] if engine else [])

    reports = [rep("tests/basecamp/test_build.py::test_b", "setup", 100.0, 104.0, engine=True),
               rep("tests/basecamp/test_build.py::test_b", "call", 104.0, 110.0, engine=True),
               rep("notebooks/01_naive.ipynb::Cell 0", "call", 110.0, 111.0),
               rep("notebooks/01_naive.ipynb::Cell 2", "call", 111.0, 151.0),
               rep("tests/remote/test_remote_engine.py::test_r", "call", 151.0, 251.0)]
    builds = [{"start": 101.0, "wall_s": 2.5}, {"start": 105.0, "wall_s": 4.0},  # engine test: setup, call
              {"start": 112.0, "wall_s": 10.0}, {"start": 130.0, "wall_s": 12.0},  # two in one notebook cell
              {"start": 148.0, "wall_s": 5.0},  # started in the cell, ended after it: still the notebook's
              {"start": 160.0, "wall_s": 30.0},  # a subprocess of the remote-engine test
              {"start": 50.0, "wall_s": 1.0}]  # before any test
    found = builds_by_phase(reports, builds)
    assert found == {"engine tests of the lab": 6.5, "notebook 01_naive": 27.0, "remote-engine test": 30.0,
                     "outside tests": 1.0}
    lines = table(from_reports(reports), found).splitlines()
    assert lines[0] == "| phase | s | of it docker build s | cases |"
    assert lines[2] == "| remote-engine test | 100.0 | 30.0 | 1 |"
    assert "| outside tests | | 1.0 | |" in lines
    assert lines[-2] == "| all notebooks | 41.0 | 27.0 | |" and lines[-1] == "| **all of pytest** | **151.0** | **64.5** | 4 |"
