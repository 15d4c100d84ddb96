"""A second Docker engine on this machine that the lab can only reach over the network: a `dockerd` in its
own network namespace, with its own data root, exec root, socket and address.

    with NamespacedEngine() as eng:          # needs root, `ip`, `nsenter`, `iptables`, `dockerd`
        eng.load_images([...])               # the stand-in bases: the new engine has no images
        subprocess.run([...], env={**os.environ, "DOCKER_HOST": eng.docker_host})

The host reaches it over a veth pair (HOST_ADDR <-> ENGINE_ADDR, a /30 of its own); its containers reach
the package index through NAT the host does for ENGINE_ADDR only (one MASQUERADE rule, two FORWARD rules
for the veth). The client never sends anything to another address: DOCKER_HOST names ENGINE_ADDR.

Everything set up is recorded as an undo step the moment it exists (contextlib.ExitStack), so leaving
the `with` block, by a failure midway or a Ctrl-C, undoes exactly what was done, newest first: the engine's
containers, then dockerd (TERM, then KILL) and every process left in the namespace, its mounts, the
iptables rules, the veth, the namespace, the data folders. `teardown_leftovers()` does the same for what a
killed earlier run left (found by the fixed names and the rule comment), and runs before each setup.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

NETNS = "annapurna-remote"
VETH_HOST = "ap-remote-h"
VETH_ENGINE = "ap-remote-e"
#: A private /30 that nothing on this machine uses (checked at setup): the host end and the engine end.
HOST_ADDR = "10.213.13.1"
ENGINE_ADDR = "10.213.13.2"
PREFIX = 30
#: The engine's own bridge (its containers), inside the namespace.
ENGINE_BIP = "10.213.14.1/24"
PORT = 2375
#: Every iptables rule added here carries this comment, so a later run finds what a killed one left.
RULE_COMMENT = "annapurna-remote-engine-test"
START_TIMEOUT_S = 90.0


def _run(argv: Sequence[str], *, check: bool = True, input_: bytes | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(list(argv), input=input_, capture_output=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout.decode(errors="replace")


def _rules() -> list[list[str]]:
    """The iptables rules (table, chain, spec) this harness adds."""
    tag = ["-m", "comment", "--comment", RULE_COMMENT]
    return [
        ["-t", "nat", "POSTROUTING", "-s", f"{ENGINE_ADDR}/32", "!", "-o", VETH_HOST, *tag, "-j", "MASQUERADE"],
        ["-t", "filter", "FORWARD", "-i", VETH_HOST, *tag, "-j", "ACCEPT"],
        ["-t", "filter", "FORWARD", "-o", VETH_HOST, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
         *tag, "-j", "ACCEPT"],
    ]


def _rule_argv(op: str, rule: list[str]) -> list[str]:
    table, chain, spec = rule[:2], rule[2], rule[3:]
    return ["iptables", *table, op, chain, *spec]


def _address_in_use(addr: str) -> bool:
    """True when `addr`'s /PREFIX network overlaps an address or route this host already has."""
    import ipaddress

    net = ipaddress.ip_network(f"{addr}/{PREFIX}", strict=False)
    for line in _run(["ip", "-4", "-o", "addr"]).splitlines() + _run(["ip", "-4", "route"]).splitlines():
        for word in line.split():
            try:
                other = ipaddress.ip_network(word, strict=False)
            except ValueError:
                continue
            if other.prefixlen > 0 and other.overlaps(net):
                return True
    return False


def _pids_in_netns() -> list[int]:
    out = _run(["ip", "netns", "pids", NETNS], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder)
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            target = line.split()[1].encode().decode("unicode_escape")
            if target == prefix or target.startswith(prefix + "/"):
                found.append(target)
    return sorted(found, key=len, reverse=True)  # deepest first


def _stop_pids(pids: list[int], grace_s: float = 20.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def teardown_leftovers(state_dir: Path) -> list[str]:
    """Undo what an earlier, killed run of this harness left: processes in the namespace, mounts and
    data under `state_dir`, the iptables rules (by their comment), the veth, the namespace. What it did."""
    done: list[str] = []
    if NETNS in _run(["ip", "netns", "list"], check=False).split():
        pids = _pids_in_netns()
        if pids:
            _stop_pids(pids)
            done.append(f"stopped {len(pids)} process(es) left in netns {NETNS}")
    for target in _mounts_under(state_dir):
        _run(["umount", "-l", target], check=False)
        done.append(f"unmounted {target}")
    for table in ("nat", "filter"):
        for line in _run(["iptables", "-t", table, "-S"], check=False).splitlines():
            if RULE_COMMENT in line and line.startswith("-A "):
                import shlex

                _run(["iptables", "-t", table, "-D", *shlex.split(line)[1:]], check=False)
                done.append(f"removed iptables rule: {line}")
    if _run(["ip", "link", "show", VETH_HOST], check=False):
        _run(["ip", "link", "del", VETH_HOST], check=False)
        done.append(f"deleted veth {VETH_HOST}")
    if NETNS in _run(["ip", "netns", "list"], check=False).split():
        _run(["ip", "netns", "del", NETNS], check=False)
        done.append(f"deleted netns {NETNS}")
    if state_dir.exists():
        shutil.rmtree(state_dir, ignore_errors=True)
        done.append(f"removed {state_dir}")
    return done


class NamespacedEngine:
    """A dockerd in network namespace NETNS at tcp://ENGINE_ADDR:PORT; see the module doc."""

    def __init__(self, state_dir: Path, log: Callable[[str], None] = print) -> None:
        self.state_dir = state_dir
        self.data_root = state_dir / "data"
        self.exec_root = state_dir / "exec"
        self.pidfile = state_dir / "dockerd.pid"
        self.logfile = state_dir / "dockerd.log"
        self.docker_host = f"tcp://{ENGINE_ADDR}:{PORT}"
        self.log = log
        self.undo = contextlib.ExitStack()
        self.proc: subprocess.Popen[bytes] | None = None
        self.timings: dict[str, float] = {}

    # -- setup -----------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        for line in teardown_leftovers(self.state_dir):
            self.log(f"leftover from an earlier run: {line}")
        try:
            self._setup()
        except BaseException:
            self.undo.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo.close()

    def _step(self, undo: Callable[[], object]) -> None:
        self.undo.callback(undo)

    def _setup(self) -> None:
        t0 = time.perf_counter()
        if _address_in_use(HOST_ADDR):
            raise RuntimeError(f"{HOST_ADDR}/{PREFIX} overlaps an address or route of this host: pick another")
        self.state_dir.mkdir(parents=True)
        self._step(lambda: shutil.rmtree(self.state_dir, ignore_errors=True))
        _run(["ip", "netns", "add", NETNS])
        self._step(lambda: _run(["ip", "netns", "del", NETNS], check=False))
        _run(["ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_ENGINE])
        self._step(lambda: _run(["ip", "link", "del", VETH_HOST], check=False))
        _run(["ip", "link", "set", VETH_ENGINE, "netns", NETNS])
        _run(["ip", "addr", "add", f"{HOST_ADDR}/{PREFIX}", "dev", VETH_HOST])
        _run(["ip", "link", "set", VETH_HOST, "up"])
        ns = ["ip", "-n", NETNS]
        _run([*ns, "addr", "add", f"{ENGINE_ADDR}/{PREFIX}", "dev", VETH_ENGINE])
        _run([*ns, "link", "set", VETH_ENGINE, "up"])
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "route", "add", "default", "via", HOST_ADDR])
        for rule in _rules():
            _run(_rule_argv("-I" if rule[2] == "FORWARD" else "-A", rule))
            self._step(lambda rule=rule: _run(_rule_argv("-D", rule), check=False))  # type: ignore[misc]
        self._step(self._unmount)
        self._start_dockerd()
        self.timings["engine start"] = time.perf_counter() - t0

    def _start_dockerd(self) -> None:
        self.exec_root.mkdir(parents=True)
        self.data_root.mkdir(parents=True)
        argv = ["nsenter", f"--net=/var/run/netns/{NETNS}", "dockerd",
                "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "--bip", ENGINE_BIP,
                "-H", self.docker_host, "-H", f"unix://{self.exec_root}/docker.sock"]
        with self.logfile.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._step(self._stop_dockerd)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}: {self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd did not answer at {self.docker_host} in {START_TIMEOUT_S:.0f} s: {self.log_tail()}")

    # -- use -------------------------------------------------------------------------------------

    def docker(self, *args: str, check: bool = True, input_: bytes | None = None, timeout: float = 600) -> str:
        """`docker ARGS` against this engine (never the host's)."""
        return _run(["docker", "-H", self.docker_host, *args], check=check, input_=input_, timeout=timeout)

    def ping(self) -> bool:
        return subprocess.run(["docker", "-H", self.docker_host, "version", "-f", "{{.Server.Version}}"],
                              capture_output=True, timeout=10, check=False).returncode == 0

    def load_images(self, refs: Sequence[str]) -> float:
        """`docker save REFS` from the host engine piped into `docker load` here; the seconds it took."""
        t0 = time.perf_counter()
        save = subprocess.Popen(["docker", "save", *refs], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", self.docker_host, "load", "-q"], stdin=save.stdout,
                              capture_output=True, timeout=900, check=False)
        assert save.stdout is not None
        save.stdout.close()
        if save.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"save | load failed: {load.stderr.decode(errors='replace')[-2000:]}")
        seconds = time.perf_counter() - t0
        self.timings["bases load"] = seconds
        return seconds

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- teardown --------------------------------------------------------------------------------

    def _stop_dockerd(self) -> None:
        # Its containers first (they are all this test's: the engine is its own), so no shim outlives it.
        if self.proc is not None and self.proc.poll() is None and self.ping():
            ids = self.docker("ps", "-aq", check=False).split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        leftover = _pids_in_netns()  # containerd and shims dockerd started: all ours
        if leftover:
            _stop_pids(leftover)

    def _unmount(self) -> None:
        for target in _mounts_under(self.state_dir):
            _run(["umount", "-l", target], check=False)
