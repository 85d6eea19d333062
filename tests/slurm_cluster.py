"""A real single-node Slurm cluster on localhost, for tests (needs root).

Debian's ``slurm-wlm`` and ``munge``: munged, slurmctld and slurmd run in the
foreground as children of the test process, with every file they write (key,
socket, state, spool, logs, pid files, slurm.conf, gres.conf, fake GPU device
nodes) under one temporary directory, on free TCP ports, so that nothing in
``/etc`` is used and a second cluster on the same machine does not collide.
Clients (sbatch, squeue, scontrol, scancel, and Snakemake's slurm executor)
find this cluster through ``SLURM_CONF`` in :attr:`SlurmCluster.env`. Inside a job,
snakemake-executor-plugin-slurm-jobstep drops every ``SLURM_*`` variable (``SLURM_CONF``
too) before its nested ``srun``, which on a real cluster then reads
``/etc/slurm/slurm.conf``; here an ``srun`` wrapper first on ``PATH`` puts
``SLURM_CONF`` back.

The node declares two GPUs (``Gres=gpu:2``) backed by character devices made
with ``mknod`` (major 195, NVIDIA's): Slurm's gpu gres plugin needs real device
files, and then sets ``CUDA_VISIBLE_DEVICES`` in jobs that ask for a GPU.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
APT_PACKAGES = ("slurm-wlm", "munge")


def missing_tools() -> list[str]:
    return [t for t in DAEMONS + CLIENTS if shutil.which(t) is None]


def ensure_installed() -> str | None:
    """Install slurm-wlm and munge with apt-get where they are missing.

    Returns None when the tools are there, else why they cannot be (the reason a
    test skips with)."""
    if not missing_tools():
        return None
    if os.geteuid() != 0:
        return f"slurm-wlm is not installed ({', '.join(missing_tools())} missing) and not root"
    if shutil.which("apt-get") is None:
        return "slurm-wlm is not installed and there is no apt-get to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd, limit in (
        (["apt-get", "update", "-qq"], 300),
        (["apt-get", "install", "-y", "-qq", *APT_PACKAGES], 600),
    ):
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=limit, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot install slurm-wlm: {' '.join(cmd)}: {exc}"
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return f"cannot install slurm-wlm: {' '.join(cmd)} exited {proc.returncode}: {tail}"
    if missing_tools():
        return f"slurm-wlm installed but {', '.join(missing_tools())} still missing"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    """One slurmctld + one slurmd (partitions ``cpu``, default, and ``gpu``) on this host."""

    def __init__(self, root: Path, gpus: int = 2, min_job_age: int = 300):
        self.root = Path(root)
        self.gpus = gpus
        self.min_job_age = min_job_age
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "etc/slurm.conf"
        self.munge_socket = self.root / "munge/run/munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.bin = self.root / "bin"
        self.env = dict(
            os.environ,
            SLURM_CONF=str(self.conf),
            PATH=os.pathsep.join([str(self.bin), os.environ.get("PATH", "")]),
        )
        for var in [v for v in self.env if v.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
            if var != "SLURM_CONF":
                del self.env[var]

    # -- set-up ------------------------------------------------------------------
    def _node_line(self) -> str:
        """This host's CPUs and memory as slurmd sees them (``slurmd -C``)."""
        out = subprocess.run(
            ["slurmd", "-C"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        fields = dict(kv.split("=", 1) for kv in out.split("\n")[0].split() if "=" in kv)
        cpus = int(fields.get("CPUs", os.cpu_count() or 1))
        # memory is not a consumable resource here (CR_Core) and slurmd takes the
        # configured value (config_overrides): room for paper-scale mem_mb requests
        return (
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=512000 "
            f"Gres=gpu:{self.gpus} State=UNKNOWN"
        )

    def _write_files(self) -> None:
        r = self.root
        for d in ("bin", "etc", "state", "spool", "log", "run", "dev", "munge/etc", "munge/run"):
            (r / d).mkdir(parents=True, exist_ok=True)
        # munged wants its socket directory reachable by everyone, its key private
        for d in (r, r / "munge", r / "munge/run"):
            d.chmod(0o755)
        (r / "munge/etc").chmod(0o700)
        key = r / "munge/etc/munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)
        devices = []
        for i in range(self.gpus):
            dev = r / "dev" / f"nvidia{i}"
            if not dev.exists():
                os.mknod(dev, 0o666 | 0o020000, os.makedev(195, i))  # S_IFCHR
            devices.append(dev)
        self.ctld_port, self.slurmd_port = _free_port(), _free_port()
        conf = f"""\
ClusterName=fusekit-test
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
GresTypes=gpu
ReturnToService=2
MinJobAge={self.min_job_age}
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
{self._node_line()}
PartitionName=cpu Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={self.host} Default=NO MaxTime=INFINITE State=UP
"""
        self.conf.write_text(conf)
        files = str(devices[0]) if len(devices) == 1 else f"{r}/dev/nvidia[0-{len(devices) - 1}]"
        (r / "etc/gres.conf").write_text(f"NodeName={self.host} Name=gpu File={files}\n")

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")  # noqa: SIM115 (lives with the process)
        self.procs[name] = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()

    def start(self, timeout: float = 90) -> None:
        """Write the configuration, start the daemons, wait until the node is idle."""
        self._write_files()
        r = self.root
        self._spawn(
            "munged",
            [
                "munged", "-F", f"--socket={self.munge_socket}",
                f"--key-file={r}/munge/etc/munge.key", f"--pid-file={r}/munge/run/munged.pid",
                f"--seed-file={r}/munge/etc/munged.seed", f"--log-file={r}/log/munged.log",
            ],
        )  # fmt: skip
        self._wait(lambda: self.munge_socket.exists(), 30, "munged socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._wait(
            lambda: self.run("scontrol", "ping", check=False).returncode == 0, 60, "slurmctld"
        )
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.host])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.node_state()
            if state.startswith(("idle", "mix", "alloc")):
                return
            if any(s in state for s in ("inval", "drain", "down")) and "*" not in state:
                self.run("scontrol", "update", f"nodename={self.host}", "state=resume", check=False)
            time.sleep(1)
        raise RuntimeError(f"Slurm node not ready (state {self.node_state()!r})\n{self.logs()}")

    def _wait(self, ok, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if ok():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{what} not up after {timeout} s\n{self.logs()}")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.logs()}")

    # -- use ---------------------------------------------------------------------
    def run(
        self, *cmd: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run(
            list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout, check=check
        )

    def node_state(self) -> str:
        proc = self.run("sinfo", "-h", "-N", "-o", "%t", check=False)
        return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "?"

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge seconds)."""
        out = self.run("squeue", "-h", "--states=all", "-o", "%i|%j|%T|%P|%k").stdout
        keys = ("id", "name", "state", "partition", "comment")
        return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines() if line]

    def show_job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (one line, key=value)."""
        out = self.run("scontrol", "-o", "show", "job", str(job_id)).stdout
        fields: dict[str, str] = {}
        for token in out.split():
            if "=" in token:
                key, value = token.split("=", 1)
                fields.setdefault(key, value)
        return fields

    def cancel_all(self, wait: float = 30) -> None:
        """Cancel every job and wait until none is running."""
        self.run("scancel", "--user", "root", check=False)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            live = [j for j in self.jobs() if j["state"] in ("PENDING", "RUNNING", "COMPLETING")]
            if not live:
                return
            time.sleep(0.5)

    def logs(self, lines: int = 40) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    # -- tear-down ---------------------------------------------------------------
    def stop(self) -> None:
        """Cancel jobs, then stop slurmd, slurmctld and munged (in that order)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                self.cancel_all(wait=20)
            except Exception:  # noqa: BLE001 (tear-down goes on regardless)
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """slurmstepd processes of this cluster outlive slurmd; end them by pid."""
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                cmdline = (pid_dir / "cmdline").read_bytes().split(b"\0")
                environ = (pid_dir / "environ").read_bytes()
            except OSError:
                continue
            if not cmdline or not cmdline[0].endswith(b"slurmstepd"):
                continue
            if f"SLURM_CONF={self.conf}".encode() in environ or str(self.root).encode() in environ:
                try:
                    os.kill(int(pid_dir.name), signal.SIGKILL)
                except OSError:
                    pass
