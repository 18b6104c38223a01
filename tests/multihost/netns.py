"""Namespaced hosts for test_multihost.py and bench/distributed.py: a context manager around
scripts/netns-hosts.sh (always torn down, also on SIGTERM / SIGINT / SIGHUP), its veth counters,
and mpirun plain or across the hosts (scripts/netns-mpirun.sh). Standard library only; needs root."""
import fcntl
import json
import os
import signal
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTS_SH = os.path.join(ROOT, "scripts", "netns-hosts.sh")
MPIRUN_SH = os.path.join(ROOT, "scripts", "netns-mpirun.sh")
LOCK = "/tmp/lamina-netns.lock"  # one set of namespaced hosts on a machine at a time

# Plain mpirun on this machine (shared memory) with the settings the issue asks for.
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_mpi_yield_when_idle": "1"}


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the `with`, so the hosts come down


for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _raise_exit)


class Hosts:
    """with Hosts(4, rate="1gbit") as h: ... h.counters() ... ; scripts/netns-hosts.sh down at exit."""

    def __init__(self, n, rate=None, mtu=None):
        self.n, self.rate, self.mtu = n, rate, mtu
        self._lock = None

    def __enter__(self):
        if os.geteuid() != 0:
            raise SystemExit("namespaced hosts need root (ip netns, ip link, tc)")
        self._lock = open(LOCK, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        subprocess.run([HOSTS_SH, "down"], check=True)  # a previous run's leftovers, if any
        try:
            cmd = [HOSTS_SH, "up", str(self.n)]
            if self.rate:
                cmd += ["--rate", self.rate]
            if self.mtu:
                cmd += ["--mtu", str(self.mtu)]
            subprocess.run(cmd, check=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_):
        subprocess.run([HOSTS_SH, "down"], check=False)
        if self._lock:
            self._lock.close()
            self._lock = None
        return False

    def counters(self):
        """{namespace: (tx_bytes, rx_bytes)} as each host sees its eth0."""
        out = subprocess.run([HOSTS_SH, "counters"], check=True, capture_output=True, text=True).stdout
        return {f[0]: (int(f[2]), int(f[3])) for f in (line.split() for line in out.splitlines())}


def delta(after, before):
    return {ns: (after[ns][0] - before[ns][0], after[ns][1] - before[ns][1]) for ns in after}


def run(cmd, timeout=300, env=None, check=True):
    """Runs cmd in its own process group; on timeout kills the group. Returns CompletedProcess."""
    full_env = dict(os.environ, **MPI_ENV, **(env or {}))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise RuntimeError(f"timed out after {timeout} s: {' '.join(cmd)}\n{err[-3000:]}")
    except BaseException:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    if check and p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(cmd)}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def mpirun(np_, argv, where, timeout=300, env=None):
    """where: "shm" (plain mpirun -np on this machine) or "netns" (across the namespaced hosts)."""
    if where == "netns":
        cmd = [MPIRUN_SH, "-np", str(np_)] + argv
    else:
        cmd = ["mpirun", "-np", str(np_), "--bind-to", "none"] + argv
    return run(cmd, timeout=timeout, env=env)


def allreduce(binary, np_, where, sizes, iters, warmup=0, timeout=300):
    """mpi_allreduce's JSON."""
    argv = [binary, "--bytes", ",".join(str(s) for s in sizes), "--iters", str(iters), "--warmup", str(warmup)]
    out = mpirun(np_, argv, where, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def ring_bytes(n, g):
    """Bytes a rank sends (and receives) in one ring allreduce of g bytes over n ranks."""
    return 2 * (n - 1) / n * g


def lamina_has_distributed(lamina):
    """True when `lamina train --help` offers --bucket-mb (the data-parallel CLI of issue 19)."""
    if not os.path.exists(lamina):
        return False
    p = subprocess.run([lamina, "train", "--help"], capture_output=True, text=True)
    return "--bucket-mb" in p.stdout + p.stderr


def log(msg):
    print(msg, flush=True)
