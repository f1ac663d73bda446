"""CPU time and memory of a process (or one of its threads) from /proc."""
import os

TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path):
    with open(path) as f:
        # The command name, in parentheses, may hold spaces: split after it.
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid, tid=None):
    """(user, system) seconds of the whole process, or of thread `tid`."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = _stat_fields(path)  # fields[0] is the state, the stat's third field
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def thread_cpu_seconds(pid):
    """{tid: (name, user s, system s)} of every thread of `pid` alive now."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            out[int(tid)] = (name,) + cpu_seconds(pid, tid)
        except (FileNotFoundError, ProcessLookupError):
            pass  # the thread exited between the listing and the read
    return out


def status_bytes(pid, key):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...) in bytes; 0 if absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


class CpuMeter:
    """User and system CPU time a process spends from now until `read`:
        m = CpuMeter(pid); ...load...; user_s, sys_s = m.read()"""

    def __init__(self, pid):
        self.pid = pid
        self.start = cpu_seconds(pid)

    def read(self):
        user, system = cpu_seconds(self.pid)
        return user - self.start[0], system - self.start[1]

    def per_response_us(self, responses):
        """(user µs, system µs) per response since the start; (None, None)
        without responses."""
        user, system = self.read()
        if not responses:
            return None, None
        return user * 1e6 / responses, system * 1e6 / responses
