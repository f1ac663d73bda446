"""Child processes: started with stdout and stderr in a log file, optionally
pinned to CPU cores (taskset, so every thread the child starts inherits the
mask), stopped by PID (SIGTERM, then SIGKILL after a timeout). Every process
still running when the script exits is stopped (atexit); `exit_on_signals`
turns SIGTERM, SIGINT and SIGHUP into a normal exit so that happens on ^C
and on a `timeout` too."""
import atexit
import os
import signal
import subprocess
from pathlib import Path

_running = []  # every Proc started and not yet stopped or waited for


def cores_arg(cores):
    """taskset's core list from "1", "0, 1", 1 or [0, 1]: "1", "0,1"."""
    if isinstance(cores, int):
        return str(cores)
    if isinstance(cores, str):
        return ",".join(c.strip() for c in cores.split(",") if c.strip())
    return ",".join(str(c) for c in cores)


def pinned(argv, cores=None):
    """`argv` run on `cores` (None: wherever the scheduler likes)."""
    if cores is None or cores == "":
        return list(argv)
    return ["taskset", "-c", cores_arg(cores)] + [str(a) for a in argv]


def run(argv, cores=None, timeout=None, cwd=None):
    """Run to completion, pinned; returns the CompletedProcess with stdout and
    stderr as text (for load generators whose summary line is parsed)."""
    return subprocess.run(pinned(argv, cores), capture_output=True, text=True, timeout=timeout, cwd=cwd)


class Proc:
    """A child process with its output in a log file (None: discarded),
    stopped by its PID. `stdin=True` gives it a pipe for `send`."""

    def __init__(self, name, argv, log_path=None, cores=None, cwd=None, env=None, stdin=False):
        self.name = name
        self.log_path = Path(log_path) if log_path is not None else None
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.popen = subprocess.Popen(
            pinned(argv, cores), cwd=cwd, env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)  # own process group: a ^C of the run reaches us only
        self.pid = self.popen.pid  # taskset execs the program: the same PID
        _running.append(self)

    def alive(self):
        return self.popen.poll() is None

    @property
    def returncode(self):
        """None while it runs."""
        return self.popen.poll()

    def send(self, line):
        """One line to its stdin (ignored once it has exited)."""
        if self.popen.stdin and self.alive():
            try:
                self.popen.stdin.write(line.encode() + b"\n")
                self.popen.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def wait(self, timeout=None):
        """Wait for it to exit by itself; returns the exit code."""
        self.popen.wait(timeout)
        self._release()
        return self.popen.returncode

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signal the process by PID; SIGKILL after `timeout` s. Returns the exit code."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._release()
        return self.popen.returncode

    def _release(self):
        if self in _running:
            _running.remove(self)
        if self.log_path:
            self._log.close()
        if self.popen.stdin:
            try:
                self.popen.stdin.close()
            except OSError:
                pass

    def log_text(self):
        if not self.log_path:
            return ""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n=20):
        return self.log_text().splitlines()[-n:]


def stop_all():
    """Stop every Proc still running, newest first."""
    for p in list(reversed(_running)):
        try:
            p.stop(timeout=3)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def exit_on_signals():
    """SIGTERM, SIGINT and SIGHUP exit the script normally (exit code
    128 + signal), so `finally` blocks and `stop_all` run."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
