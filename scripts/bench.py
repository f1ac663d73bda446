#!/usr/bin/env python3
"""riptide-udp side by side with aquatic_udp and opentracker.

Each tracker runs with one worker pinned to TRACKER_CORE; each load
generator runs pinned to LOAD_CORE. Phases per tracker:
  1. saturation, riptide-udp-load (open loop)          -> responses/s
  2. saturation, aquatic_udp_load_test (its defaults)  -> responses/s, user CPU us/response
  3. fixed offered load RATE/s, riptide-udp-load       -> user, system CPU us/response
  4. peak RSS (VmHWM) after a fill of PEERS peers      -> MiB, bytes/peer over the idle RSS
Then saturation side by side: riptide-udp (io_uring) and riptide-udp (mio),
then aquatic_udp, at the same time on TRACKER_CORE (see side_by_side).
Called by scripts/bench, which builds and installs what this needs.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from riptide import procs, udp  # noqa: E402
from riptide.cpu import CpuMeter, cpu_seconds, status_bytes  # noqa: E402
from riptide.stats import median, medians, rounds  # noqa: E402
from riptide.table import fmt, print_table, times  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
DURATION = int(os.environ.get("DURATION", "6"))
FIXED_DURATION = int(os.environ.get("FIXED_DURATION", "12"))
# aquatic_udp_load_test runs in whole 5-second reports; the first is dropped.
AQUATIC_DURATION = int(os.environ.get("AQUATIC_DURATION", "20"))
RATE = int(os.environ.get("RATE", "100000"))
REPS = int(os.environ.get("REPS", "3"))
PEERS = int(os.environ.get("PEERS", "1000000"))
TRACKER_CORE = os.environ.get("TRACKER_CORE", "1")
LOAD_CORE = os.environ.get("LOAD_CORE", "0")
PORT = 17070
TORRENTS = 10_000  # riptide-udp-load's default --torrents
FILL_TORRENTS = int(os.environ.get("FILL_TORRENTS", "100000"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Tracker:
    def __init__(self, name, argv, workdir, cores=None, port=PORT):
        self.name, self.argv, self.workdir, self.port = name, argv, workdir, port
        self.cores = cores or TRACKER_CORE
        self.whitelist_only = False
        self.proc = None

    def start(self):
        self.proc = procs.Proc(self.name, self.argv, os.path.join(self.workdir, f"log-{self.port}"),
                               cores=self.cores, cwd=self.workdir)
        if not udp.wait_ready(("127.0.0.1", self.port), 15.0):
            self.stop()
            raise RuntimeError(f"{self.name} did not answer a connect on port {self.port}")

    def stop(self):
        if self.proc:
            self.proc.stop(timeout=10.0)


def riptide(backend, workdir, workers=1, steering=True, cores=None, port=PORT):
    cfg = os.path.join(workdir, f"riptide-{backend}-{workers}-{steering}-{port}.toml")
    pin = f"[cpu_pinning]\nenabled = true\ncores = [{cores}]\n" if cores else ""
    with open(cfg, "w") as f:
        f.write(f'workers = {workers}\nbackend = "{backend}"\nlog_level = "warn"\n'
                f'[network]\naddress_ipv4 = "127.0.0.1:{port}"\naddress_ipv6 = ""\n'
                f'kernel_steering = {"true" if steering else "false"}\n'
                f'[protocol]\nmax_numwant = 50\n{pin}')
    name = f"riptide-udp ({backend})" if workers == 1 else f"riptide-udp ({backend}, {workers} workers, steering {'on' if steering else 'off'})"
    return Tracker(name, [os.path.join(REL, "riptide-udp"), "-c", cfg], workdir, port=port)


def aquatic(workdir, port=PORT):
    exe = os.environ["AQUATIC_UDP"]
    text = subprocess.run([exe, "-p"], capture_output=True, text=True, check=True).stdout
    text = re.sub(r"(?m)^socket_workers = .*$", "socket_workers = 1", text)
    text = re.sub(r'(?m)^address = .*$', f'address = "127.0.0.1:{port}"', text)
    text = re.sub(r'(?m)^max_response_peers = .*$', "max_response_peers = 50", text)
    text = re.sub(r'(?m)^log_level = .*$', 'log_level = "error"', text)
    cfg = os.path.join(workdir, f"aquatic-{port}.toml")
    with open(cfg, "w") as f:
        f.write(text)
    return Tracker("aquatic_udp", [exe, "-c", cfg], workdir, port=port)


def opentracker(workdir):
    """Debian builds opentracker as a closed tracker (WANT_ACCESSLIST_WHITE):
    it answers only whitelisted hashes, so list riptide-udp-load's torrents
    (and the fill's). Hashes it does not list get an empty 8-byte answer."""
    exe = os.environ.get("OPENTRACKER") or ""
    if not exe:
        return None
    # opentracker chroots into its -d directory (as root) before it reads
    # the list, so the path is given inside the chroot.
    os.chmod(workdir, 0o755)
    whitelist = os.path.join(workdir, "whitelist")
    hashes = subprocess.run([os.path.join(REL, "riptide-udp-load"), "--list-info-hashes", "--torrents",
                             str(max(TORRENTS, FILL_TORRENTS))], capture_output=True, text=True, check=True).stdout
    with open(whitelist, "w") as f:
        f.write(hashes)
    os.chmod(whitelist, 0o644)
    t = Tracker("opentracker", [exe, "-i", "127.0.0.1", "-P", str(PORT), "-p", str(PORT + 1), "-d", workdir,
                                "-w", "/whitelist"], workdir)
    t.whitelist_only = True
    return t


def run_riptide_load(extra, threads=1, cores=LOAD_CORE, duration=None, port=PORT):
    argv = [os.path.join(REL, "riptide-udp-load"), "--target", f"127.0.0.1:{port}",
            "--threads", str(threads), "--duration", f"{duration or DURATION}s"] + extra
    out = procs.run(argv, cores, timeout=(duration or DURATION) * 4 + 60)
    m = re.search(r"RESULT (.*)", out.stdout + out.stderr)
    if not m:
        raise RuntimeError("riptide-udp-load printed no RESULT line:\n" + out.stdout[-2000:] + out.stderr[-2000:])
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def run_aquatic_load(workdir, pid):
    """aquatic_udp_load_test with its default workload at saturation ->
    (responses/s, the tracker's user CPU µs per response). It reports every
    5 s ("Responses in: N/second" for those 5 s). The first report (start-up,
    warm-up) is left out; the rate and the CPU are taken over the others,
    from the first report to the last: 15 s with the default 20-s run, so
    that the CPU time, which Linux samples at each tick, is over enough
    ticks."""
    exe = os.environ["AQUATIC_UDP_LOAD_TEST"]
    text = subprocess.run([exe, "-p"], capture_output=True, text=True, check=True).stdout
    text = re.sub(r'(?m)^server_address = .*$', f'server_address = "127.0.0.1:{PORT}"', text)
    text = re.sub(r"(?m)^workers = .*$", "workers = 1", text)
    text = re.sub(r"(?m)^duration = .*$", f"duration = {AQUATIC_DURATION}", text)
    text = re.sub(r"(?m)^summarize_last = .*$", f"summarize_last = {max(AQUATIC_DURATION - 5, 1)}", text)
    cfg = os.path.join(workdir, "aquatic-load.toml")
    with open(cfg, "w") as f:
        f.write(text)
    proc = subprocess.Popen(procs.pinned([exe, "-c", cfg], LOAD_CORE), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    # At each report after the first: its rate, the tracker's user CPU
    # seconds and the wall time since the report before.
    lines, since, spans = [], None, []
    for line in proc.stdout:
        lines.append(line)
        m = re.search(r"[Rr]esponses in:\s*([\d.]+)", line)
        if m:
            now = (time.monotonic(), cpu_seconds(pid)[0])
            if since:
                spans.append((float(m.group(1)), now[1] - since[1], now[0] - since[0]))
            since = now
    proc.wait(timeout=AQUATIC_DURATION * 4 + 60)
    if not spans:
        raise RuntimeError("aquatic_udp_load_test printed fewer than two reports:\n" + "".join(lines)[-2000:])
    responses = sum(rate * wall_s for rate, _, wall_s in spans)
    wall = sum(wall_s for _, _, wall_s in spans)
    user = sum(user_s for _, user_s, _ in spans)
    return responses / wall, user * 1e6 / responses


def measure(tracker, workdir):
    row = {"name": tracker.name}
    tracker.start()
    try:
        row["sat_riptide_load"] = run_riptide_load(["--mix", "connect=10,announce=80,scrape=10"])["responses_per_s"]
        tracker.stop()
        tracker.start()
        # aquatic's load test uses random hashes, which a whitelist-only tracker refuses.
        aq = os.environ.get("AQUATIC_UDP_LOAD_TEST") and not tracker.whitelist_only
        row["sat_aquatic_load"], row["user_us_aquatic_load"] = run_aquatic_load(workdir, tracker.proc.pid) if aq else (None, None)
        tracker.stop()
        tracker.start()
        cpu = CpuMeter(tracker.proc.pid)
        r = run_riptide_load(["--mix", "connect=10,announce=80,scrape=10", "--rate", str(RATE)],
                             duration=FIXED_DURATION)
        row["fixed_rate"] = r["responses_per_s"]
        row["user_us"], row["sys_us"] = cpu.per_response_us(r["responses_per_s"] * FIXED_DURATION)
        tracker.stop()
        tracker.start()
        # Touch every receive and send buffer first (scrapes store nothing),
        # so the growth below is the swarm's alone.
        run_riptide_load(["--mix", "connect=1,announce=0,scrape=10"], duration=2)
        idle = status_bytes(tracker.proc.pid, "VmRSS")
        fill = run_riptide_load(["--fill-peers", str(PEERS), "--torrents", str(FILL_TORRENTS)], duration=60)
        row["peers"] = fill.get("peers_stored", PEERS)
        rss = status_bytes(tracker.proc.pid, "VmRSS")
        row["peak_rss"] = status_bytes(tracker.proc.pid, "VmHWM")
        row["bytes_per_peer"] = (rss - idle) / row["peers"] if row["peers"] else None
    finally:
        tracker.stop()
    return row


def main():
    workdir = tempfile.mkdtemp(prefix="riptide-bench-")
    kernel = os.uname().release
    probe = subprocess.run([os.path.join(REL, "riptide-udp"), "--probe"], capture_output=True, text=True).stdout.strip()
    log(f"kernel {kernel}\n{probe}")
    trackers = []
    if "can run on io_uring" in probe:
        trackers.append(riptide("io_uring", workdir))
    else:
        log("skipped riptide-udp (io_uring): the kernel lacks features (see probe)")
    trackers.append(riptide("mio", workdir))
    if os.environ.get("AQUATIC_UDP"):
        trackers.append(aquatic(workdir))
    ot = opentracker(workdir)
    if ot:
        trackers.append(ot)
    runs = {t.name: [] for t in trackers}
    # The order rotates each round so no tracker always runs first.
    for rep, t in rounds(trackers, REPS):
        log(f"==> round {rep + 1}/{REPS}: {t.name}")
        try:
            runs[t.name].append(measure(t, workdir))
        except Exception as e:  # one broken peer must not hide the others
            log(f"{t.name}: {e}")
    rows = [dict(name=t.name, **medians(runs[t.name])) for t in trackers if runs[t.name]]
    print(f"\nriptide-udp bench — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Linux {kernel}")
    print(f"tracker: 1 worker on core {TRACKER_CORE}; load generator: 1 thread on core {LOAD_CORE}; "
          f"saturation {DURATION} s (aquatic load test {AQUATIC_DURATION} s, the first 5 s left out), fixed load {RATE:,}/s for {FIXED_DURATION} s; RSS after {PEERS:,} peers "
          f"({FILL_TORRENTS:,} torrents); median of {REPS} rounds, tracker order rotated\n")
    table = [[r["name"], fmt(r.get("sat_riptide_load")), fmt(r.get("sat_aquatic_load")), fmt(r.get("user_us"), 2),
              fmt(r.get("user_us_aquatic_load"), 2), fmt(r.get("sys_us"), 2), fmt((r.get("peak_rss") or 0) / 2**20, 1),
              fmt(r.get("bytes_per_peer"), 1)]
             for r in rows]
    ours = next((r for r in rows if r["name"].startswith("riptide-udp (io_uring)")), rows[0] if rows else None)
    keys = ("sat_riptide_load", "sat_aquatic_load", "user_us", "user_us_aquatic_load", "sys_us", "peak_rss",
            "bytes_per_peer")
    table += [[f"ratio {ours['name']} / {peer['name']}"] + [times(ours.get(k), peer.get(k)) for k in keys]
              for peer in rows if not peer["name"].startswith("riptide")]
    print_table(["tracker", "resp/s (riptide-udp-load)", "resp/s (aquatic load test)", "user µs/resp",
                 "user µs/resp (aquatic load test)", "sys µs/resp", "peak RSS MiB", "bytes/peer"], table)
    if any(t.name.startswith("riptide-udp (io_uring)") for t in trackers):
        peers = [lambda port: riptide("mio", workdir, port=port)]
        if os.environ.get("AQUATIC_UDP"):
            peers.append(lambda port: aquatic(workdir, port=port))
        side_by_side(workdir, peers)
    shutil.rmtree(workdir, ignore_errors=True)


def side_by_side(workdir, peers):
    """Saturation, riptide-udp (io_uring) and one peer at the same time: both
    pinned to the tracker core, each flooded by its own riptide-udp-load on
    the load core. They split the core and share whatever else the machine
    does, so the ratio of their responses/s repeats to a few percent where
    one-after-the-other runs vary far more. Prints one row per peer."""
    mix = ["--mix", "connect=10,announce=80,scrape=10"]
    rows = []
    for make_peer in peers:
        runs = []
        for rep in range(REPS):
            ours, peer = riptide("io_uring", workdir, port=PORT), make_peer(PORT + 1)
            log(f"==> side by side {rep + 1}/{REPS}: {ours.name} and {peer.name}")
            ours.start()
            try:
                peer.start()
                try:
                    c0 = [sum(cpu_seconds(t.proc.pid)) for t in (ours, peer)]
                    with ThreadPoolExecutor(2) as pool:
                        loads = [pool.submit(run_riptide_load, mix, port=t.port) for t in (ours, peer)]
                        ra, rb = (f.result()["responses_per_s"] for f in loads)
                    c1 = [sum(cpu_seconds(t.proc.pid)) for t in (ours, peer)]
                finally:
                    peer.stop()
            finally:
                ours.stop()
            runs.append((ra, rb, ra / rb, (c1[0] - c0[0]) / max(c1[1] - c0[1], 1e-9)))
        med = [median(r[i] for r in runs) for i in range(4)]
        rows.append((peer.name, med, [r[2] for r in runs]))
    print(f"\nSaturation side by side on core {TRACKER_CORE} (each tracker with its own riptide-udp-load on core "
          f"{LOAD_CORE}, {DURATION} s, median of {REPS})\n")
    print_table(["pair", "riptide-udp (io_uring) resp/s", "peer resp/s", "ratio", "each run", "CPU time ratio"],
                [[f"riptide-udp (io_uring) and {name}", fmt(ra), fmt(rb), f"{ratio:.2f}×",
                  ", ".join(f"{x:.2f}" for x in each), f"{cpu:.2f}"]
                 for name, (ra, rb, ratio, cpu), each in rows])


def steering(reps=int(os.environ.get("REPS", "3"))):
    """riptide-udp, 2 workers pinned to cores 0 and 1, steering on vs off,
    A/B alternated; the load generator (2 threads, 4 sockets each) shares
    the same two cores."""
    workdir = tempfile.mkdtemp(prefix="riptide-steer-")
    rows = {True: [], False: []}
    for _, on in rounds((True, False), reps, rotate=False):
        t = riptide("io_uring", workdir, workers=2, steering=on, cores="0, 1")
        t.cores = "0,1"
        load = ["--mix", "connect=10,announce=80,scrape=10", "--sockets-per-target", "4"]
        t.start()
        try:
            sat = run_riptide_load(load, threads=2, cores="0,1")["responses_per_s"]
        finally:
            t.stop()
        t.start()
        try:
            cpu = CpuMeter(t.proc.pid)
            r = run_riptide_load(load + ["--rate", str(RATE)], threads=2, cores="0,1")
            user_us, sys_us = cpu.per_response_us(r["responses_per_s"] * DURATION)
        finally:
            t.stop()
        rows[on].append((sat, user_us, sys_us))
        log(f"steering {'on' if on else 'off'}: {sat:,.0f}/s, user {user_us:.3f} us, sys {sys_us:.3f} us")

    print(f"\nriptide-udp (io_uring), 2 workers on cores 0 and 1, kernel steering on vs off — {time.strftime('%Y-%m-%d')}, "
          f"Linux {os.uname().release}; load generator: 2 threads on the same cores; {DURATION} s per phase, "
          f"median of {reps} alternated runs; CPU per response at {RATE:,}/s offered\n")
    table = []
    for on in (True, False):
        sat, user, sys_ = (median(r[i] for r in rows[on]) for i in range(3))
        table.append(["on" if on else "off", f"{sat:,.0f}", f"{user:.3f}", f"{sys_:.3f}"])
    print_table(["steering", "responses/s at saturation", "user µs/resp", "sys µs/resp"], table)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    procs.exit_on_signals()
    if sys.argv[1:] == ["steering"]:
        steering()
    else:
        main()
