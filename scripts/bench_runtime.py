#!/usr/bin/env python3
"""The UDP echo part of scripts/bench-runtime (which builds the examples,
runs this, then the mesh micro-benchmark; what each phase measures is
described there). Env: SECS, REPS, RATE, SBS_RATE, PEERS, PORT, BATCH_WAIT_US."""
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from riptide.procs import Proc, exit_on_signals, run  # noqa: E402
from riptide.stats import Samples, ratio  # noqa: E402
from riptide.table import print_table, times  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ECHO = str(ROOT / "target" / "release" / "examples" / "udp_echo")
SECS = int(os.environ.get("SECS", "5"))
REPS = int(os.environ.get("REPS", "3"))
RATE = int(os.environ.get("RATE", "100000"))
SBS_RATE = int(os.environ.get("SBS_RATE", "50000"))
PEERS = int(os.environ.get("PEERS", "64"))
PORT = int(os.environ.get("PORT", "17171"))
BATCH_WAIT_US = int(os.environ.get("BATCH_WAIT_US", "200"))
SERVER_CORE, SENDER_CORE = 1, 0
PAIRS = [("uring", "plain"), ("uring", "epoll"), ("uring-batched", "plain"), ("uring-batched", "epoll")]
KINDS = ["uring", "uring-batched", "plain", "epoll"]


def server_args(kind):
    """udp_echo server options of a server kind."""
    if kind == "uring-batched":
        return ["--server", "uring", "--batch-wait-us", str(BATCH_WAIT_US)]
    return ["--server", kind]


def field(name, text):
    """The number after the last `name=` in udp_echo's output, or None."""
    found = re.findall(re.escape(name) + r"=([0-9.]+)", text)
    return float(found[-1]) if found else None


def relay(text, result_key):
    """A sender's warnings (everything but its result line) to stderr."""
    for line in text.splitlines():
        if result_key not in line:
            print(line, file=sys.stderr, flush=True)


def server(kind, port, log_path):
    return Proc(f"udp_echo server {kind}", [ECHO, "server", *server_args(kind), "--bind", f"127.0.0.1:{port}",
                                            "--secs", str(SECS + 1)], log_path, cores=SERVER_CORE)


def sender(port, rate, peers, log_path):
    return Proc(f"udp_echo send :{port}", [ECHO, "send", "--target", f"127.0.0.1:{port}", "--rate", str(rate),
                                          "--secs", str(SECS), "--clients", "2", "--peers", str(peers)],
                log_path, cores=SENDER_CORE)


def pair(ours, base, rate=0, peers=0):
    """Both servers on the server core at once, each fed by its own sender
    on the sender core; (uring resp/s, base resp/s, uring CPU µs/response,
    base CPU µs/response)."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        servers = [server(ours, PORT, d / "su"), server(base, PORT + 1, d / "sb")]
        spin = [Proc("spin", [ECHO, "spin", "--secs", str(SECS + 1)], cores=SERVER_CORE)] if peers > 0 else []
        time.sleep(0.3)
        senders = [sender(PORT, rate, peers, d / "cu"), sender(PORT + 1, rate, peers, d / "cb")]
        for p in senders + servers + spin:
            p.wait(SECS + 60)
        for s in senders:
            relay(s.log_text(), "responses/s=")
        ru, rb = (field("responses/s", s.log_text()) for s in senders)
        cu, cb = (field("server_cpu_us/response", s.log_text()) for s in servers)
    return ru, rb, cu, cb


def fixed(kind):
    """Server CPU µs/response of `kind` alone on the server core at RATE."""
    with tempfile.TemporaryDirectory() as d:
        s = server(kind, PORT, Path(d) / "s")
        time.sleep(0.3)
        out = run([ECHO, "send", "--target", f"127.0.0.1:{PORT}", "--rate", str(RATE), "--secs", str(SECS),
                   "--clients", "2"], SENDER_CORE, timeout=SECS + 60)
        relay(out.stderr, "responses/s=")
        s.wait(SECS + 60)
        return field("server_cpu_us/response", s.log_text())


def main():
    exit_on_signals()
    runs = {p: Samples() for p in PAIRS}
    cpu = {k: Samples() for k in KINDS}
    for _ in range(REPS):
        for p in PAIRS:
            ru, rb, cu, cb = pair(*p)
            runs[p].add(thr_u=ru, thr_b=rb, ratio=ratio(ru, rb), cpu_u=cu, cpu_b=cb)
            ru, rb, cu, cb = pair(*p, 0, PEERS)
            runs[p].add(peer_u=ru, peer_b=rb, peer_ratio=ratio(ru, rb), peer_cu=cu, peer_cb=cb)
            _, _, cu, cb = pair(*p, SBS_RATE)
            runs[p].add(fix_u=cu, fix_b=cb, fix_ratio=ratio(cu, cb))
        for k in KINDS:
            cpu[k].add(us=fixed(k))
    med = {p: runs[p].medians() for p in PAIRS}

    sat_header = ["uring-rt vs baseline", "uring-rt responses/s", "baseline responses/s",
                  "throughput ratio (median of per-run ratios)", "uring-rt CPU µs/response",
                  "baseline CPU µs/response"]
    print()
    print(f"Saturation, side by side on core 1 (senders on core 0); {SECS}s runs, median of {REPS}")
    print_table(sat_header, [[f"{u} vs {b}", f"{m['thr_u']:.0f}", f"{m['thr_b']:.0f}", f"{m['ratio']:.3f}×",
                              f"{m['cpu_u']:.3f}", f"{m['cpu_b']:.3f}"] for (u, b), m in med.items()])
    print()
    print(f"Saturation from {PEERS} peers, side by side on core 1 with a busy loop; {SECS}s runs, median of {REPS}")
    print_table(sat_header, [[f"{u} vs {b}", f"{m['peer_u']:.0f}", f"{m['peer_b']:.0f}", f"{m['peer_ratio']:.3f}×",
                              f"{m['peer_cu']:.3f}", f"{m['peer_cb']:.3f}"] for (u, b), m in med.items()])
    print()
    print(f"Fixed rate, side by side on core 1: {SBS_RATE} requests/s to each server; {SECS}s runs, median of {REPS}")
    print_table(["uring-rt vs baseline", "uring-rt CPU µs/response", "baseline CPU µs/response",
                 "CPU ratio (median of per-run ratios)"],
                [[f"{u} vs {b}", f"{m['fix_u']:.3f}", f"{m['fix_b']:.3f}", f"{m['fix_ratio']:.2f}×"]
                 for (u, b), m in med.items()])
    print()
    print(f"Fixed rate, {RATE} requests/s, each server alone on core 1; median of {REPS} alternated runs")
    c = {k: cpu[k].median("us") for k in KINDS}
    print_table(["server", "server CPU µs/response", "vs plain", "vs epoll"],
                [[k, f"{c[k]:.3f}", times(c[k], c["plain"]), times(c[k], c["epoll"])] for k in KINDS])


if __name__ == "__main__":
    main()
