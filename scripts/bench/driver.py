#!/usr/bin/env python3
"""heapgate benchmark driver: native vs heapgate vs heaptrack vs valgrind memcheck.

Called by scripts/bench.sh once the workloads are built and the inputs generated;
standard library only. Every workload runs under every tool, interleaved
(native heapgate heaptrack valgrind native heapgate ...) so drift of the machine hits
all alike, BENCH_RUNS times each. Each run goes through build/bench/measure
(scripts/bench/measure.c: fork, exec, wait4), which reports what /usr/bin/time -f
'%e %U %S %M' does (wall, user, sys, max RSS of the largest process of the tree) with a
nanosecond clock. The median of the runs is reported.

Environment (all optional):
  BENCH_RUNS=N             runs per tool and workload (default 5, 1 with BENCH_QUICK)
  BENCH_PAIRED_RUNS=N      rounds of native and heapgate (default 15, at least BENCH_RUNS):
                           after the BENCH_RUNS rounds of every tool, the two go on alone,
                           still interleaved, so that heapgate's ratio to native, the figure
                           the targets are about, rests on more rounds than this noisy
                           machine's spread needs (the 10 M-block heap keeps BENCH_RUNS)
  BENCH_QUICK=1            smoke pass: 1 run, inputs about 10x smaller
  BENCH_SKIP_VALGRIND=1    no valgrind on the big workloads (jq, sqlite3, Rust, Swift)
  BENCH_BIG_ALL=1          also run heaptrack and valgrind on the 10 M-block heap (off by default)
  BENCH_ONLY=a,b           only these workload ids (see --list)
  BENCH_TOOLS=a,b          only these tools (native is always run: it is the reference)
  BENCH_TIMEOUT=S          per-run limit in seconds (default 600); a tool that times
                           out or fails is reported n/a and not run again on that workload
  BENCH_RESULTS=FILE       where to write the Markdown results (default bench/results.md)
  BENCH_JSON=FILE          raw per-run data (default build/bench/results.json)

Usage: driver.py [--list]
"""
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
BENCH_BUILD = os.path.join(BUILD, "bench")
HEAPGATE = os.path.join(BUILD, "bin", "heapgate")
SHIM = os.path.join(BUILD, "lib", "libheapgate.so")
CHURN = os.path.join(BUILD, "fixtures", "churn")
THREAD_CHURN = os.path.join(BUILD, "fixtures", "thread_churn")
NEIGHBOUR = os.path.join(BENCH_BUILD, "neighbour")

TOOLS = ["native", "heapgate", "heaptrack", "valgrind"]
JQ_FILTER = "[.[] | select(.active) | {id, name, tags: (.tags | length)}] | length"


def env_flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "no", "false")


QUICK = env_flag("BENCH_QUICK")
RUNS = int(os.environ.get("BENCH_RUNS") or (1 if QUICK else 5))
PAIRED_RUNS = max(RUNS, int(os.environ.get("BENCH_PAIRED_RUNS") or (RUNS if QUICK else 15)))
SKIP_VALGRIND = env_flag("BENCH_SKIP_VALGRIND")
BIG_ALL = env_flag("BENCH_BIG_ALL")
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT") or 600)
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").replace(" ", ",").split(",") if w]
SELECTED_TOOLS = [t for t in os.environ.get("BENCH_TOOLS", "").replace(" ", ",").split(",") if t] or TOOLS
RESULTS_MD = os.environ.get("BENCH_RESULTS") or os.path.join(ROOT, "bench", "results.md")
RESULTS_JSON = os.environ.get("BENCH_JSON") or os.path.join(BENCH_BUILD, "results.json")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------
# Workloads


class Workload:
    def __init__(self, wid, title, argv, *, stdin=None, big=False, tools=None, note=""):
        self.id = wid
        self.title = title
        self.argv = argv
        self.stdin = stdin
        self.big = big
        self.tools = tools or list(TOOLS)
        self.note = note


def scale(full, quick):
    return quick if QUICK else full


def workloads():
    json_input = os.path.join(BENCH_BUILD, f"data-{scale(60000, 6000)}.json")
    sql = os.path.join(BENCH_BUILD, f"sqlite-{scale(200000, 20000)}.sql")
    it = scale(2000000, 200000)
    per_thread = scale(250000, 25000)
    blocks = scale(10000000, 1000000)
    big_tools = list(TOOLS) if BIG_ALL else ["native", "heapgate"]
    return [
        Workload("churn-d2", f"C churn, {it:,} malloc/free, depth 2", [CHURN, str(it), "2"]),
        Workload("churn-d30", f"C churn, {it:,} malloc/free, depth 30", [CHURN, str(it), "30"]),
        Workload("churn-8t", f"C churn, 8 threads x {per_thread:,}, cross-thread frees",
                 [CHURN, str(per_thread), "2", "threads", "8"]),
        Workload("threads-short", "C, 2,000 threads made and joined one after another, 10 malloc/free each",
                 [THREAD_CHURN]),
        Workload("startup", "`true`: what each tool adds to any run, whatever the program does",
                 [shutil.which("true") or "/bin/true"]),
        Workload("forks", f"bash running `true` {scale(200, 20)} times (fork + exec each)",
                 ["bash", "-c", f"for i in $(seq {scale(200, 20)}); do {shutil.which('true') or '/bin/true'}; done"],
                 note="valgrind follows no child (no --trace-children), so it traces bash alone"),
        Workload("jq", f"jq filter over {os.path.getsize(json_input) / 1e6 if os.path.exists(json_input) else 0:.1f} MB JSON "
                 f"({scale(60000, 6000):,} objects)", ["jq", JQ_FILTER, json_input], big=True),
        Workload("sqlite3", f"sqlite3 :memory:, {scale(200000, 20000):,} rows + index + queries",
                 ["sqlite3", ":memory:"], stdin=sql, big=True),
        Workload("rust", f"Rust BTreeMap/HashMap of Strings, n={scale(100000, 10000):,}",
                 [os.path.join(BENCH_BUILD, "alloc_rust"), str(scale(100000, 10000))], big=True),
        Workload("swift", f"Swift classes/arrays/dictionaries, n={scale(100000, 10000):,}",
                 [os.path.join(BENCH_BUILD, "alloc_swift"), str(scale(100000, 10000))], big=True),
        Workload("bigheap", f"{blocks / 1e6:g} M live blocks (~{blocks * 100 / 1e9:g} GB) at exit",
                 [os.path.join(BENCH_BUILD, "bigheap"), str(blocks)], tools=big_tools,
                 note="heaptrack and valgrind skipped unless BENCH_BIG_ALL=1"),
    ]


# ----------------------------------------------------------------------------------------
# Measuring one command


class Killer:
    """Kills the child's process group when the time limit passes, but only while the
    child is not yet reaped (so the group id cannot have been reused)."""

    def __init__(self, pid):
        self.pid = pid
        self.lock = threading.Lock()
        self.reaped = False
        self.fired = False

    def kill(self):
        with self.lock:
            if self.reaped:
                return
            self.fired = True
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


CURRENT = {}  # the Killer of the child being measured, for the signal handler


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("HEAPGATE_") and k != "DEBUGINFOD_URLS"}
    env.update(extra or {})
    return env


MEASURE = os.path.join(BENCH_BUILD, "measure")
SCRATCH = {}  # "dir": the run's scratch directory


def measure(argv, *, stdin=None, child_env=None, timeout=TIMEOUT, log_path=None):
    """Runs argv to completion; returns wall/user/sys seconds, peak RSS (KB), exit status.

    Through build/bench/measure (fork + exec + wait4, like /usr/bin/time) when it is
    there, so the max RSS does not start at Python's ~17 MB; the whole process group
    is killed when the time limit passes. child_env: variables for the measured program
    only (not for the helper: LD_PRELOAD must not trace it)."""
    res = {"argv": argv, "ok": False}
    helper = os.access(MEASURE, os.X_OK)
    fd, numbers = tempfile.mkstemp(prefix="measure.", dir=SCRATCH.get("dir"))
    os.close(fd)
    stdin_f = open(stdin, "rb") if stdin else subprocess.DEVNULL
    log_f = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        t0 = time.monotonic()
        try:
            if helper:
                cmd = [MEASURE, numbers]
                for k, v in (child_env or {}).items():
                    cmd += ["-e", f"{k}={v}"]
                cmd += argv
                env = clean_env()
            else:
                cmd, env = argv, clean_env(child_env)
            p = subprocess.Popen(cmd, stdin=stdin_f, stdout=subprocess.DEVNULL, stderr=log_f,
                                 env=env, start_new_session=True)
        except OSError as e:
            res["error"] = f"cannot start {argv[0]}: {e}"
            return res
        killer = Killer(p.pid)
        CURRENT["killer"] = killer
        timer = threading.Timer(timeout, killer.kill)
        timer.daemon = True
        timer.start()
        try:
            # Wait without reaping, then reap with the lock held: the timer can only kill
            # a group whose leader still exists.
            os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
            t1 = time.monotonic()
            with killer.lock:
                _, status, ru = os.wait4(p.pid, 0)
                killer.reaped = True
        finally:
            timer.cancel()
            CURRENT.pop("killer", None)
        p.returncode = os.waitstatus_to_exitcode(status)
        code = p.returncode if p.returncode >= 0 else 128 - p.returncode
        wall, user, sys_, rss = t1 - t0, ru.ru_utime, ru.ru_stime, ru.ru_maxrss
        if helper and not killer.fired:
            try:
                with open(numbers) as f:
                    fields = f.read().split()
                wall, user, sys_ = (float(x) for x in fields[:3])
                rss, code = int(fields[3]), int(fields[4])
            except (OSError, ValueError, IndexError):
                res["error"] = "measure helper wrote no numbers"
                return res
        res.update(wall=wall, user=user, sys=sys_, cpu=user + sys_, maxrss_kb=rss, status=code,
                   timed_out=killer.fired)
        if killer.fired:
            res["error"] = f"timed out after {timeout:g} s"
        elif code != 0:
            res["error"] = f"exit status {code}"
        else:
            res["ok"] = True
        return res
    finally:
        if stdin:
            stdin_f.close()
        if log_path:
            log_f.close()
        try:
            os.unlink(numbers)
        except OSError:
            pass


def tail(path, lines=6):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4000))
            text = f.read().decode("utf-8", "replace")
        return "\n".join("      " + l for l in text.strip().splitlines()[-lines:])
    except OSError:
        return ""


def dir_size(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, name))
            except OSError:
                pass
    return total


# ----------------------------------------------------------------------------------------
# heapgate traces


FOOTER_MAGIC = b"HGSNAPSH"


def read_uv(buf, i):
    value, shift = 0, 0
    while i < len(buf):
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i
        if shift > 63:
            return None, i
    return None, i


def trace_stats(path):
    """The STATS record (events, ring-full waits, events lost) of a complete trace.

    The records end with STATS (0x30 uv uv uv, and since format 5 a fourth uv: allocations
    without a stack) and END (0x7f uv), optionally followed by a 16-byte footer (u64 snapshot
    offset + "HGSNAPSH"); records are not self-delimiting backwards, so try each 0x30 in the
    last bytes, with four fields and with three, and keep the one that parses exactly up to
    END's end."""
    try:
        with open(path, "rb") as f:
            size = os.path.getsize(path)
            f.seek(max(0, size - 96))
            buf = f.read()
    except OSError:
        return None
    if buf.endswith(FOOTER_MAGIC) and len(buf) >= 16:
        buf = buf[:-16]
    for start in range(len(buf)):
        if buf[start] != 0x30:
            continue
        for fields in (4, 3):
            i = start + 1
            vals = []
            for _ in range(fields):
                v, i = read_uv(buf, i)
                if v is None:
                    break
                vals.append(v)
            if len(vals) != fields or i >= len(buf) or buf[i] != 0x7F:
                continue
            status, j = read_uv(buf, i + 1)
            if status is not None and j == len(buf):
                return {"events": vals[0], "waits": vals[1], "lost": vals[2]}
    return None


def heapgate_post(res, trace_dir, scratch, timeout):
    """Trace size and STATS of a heapgate run, then the timed `heapgate summary` on it."""
    traces = sorted(os.path.join(trace_dir, f) for f in os.listdir(trace_dir) if f.endswith(".trace")) \
        if os.path.isdir(trace_dir) else []
    res["trace_files"] = len(traces)
    res["trace_bytes"] = sum(os.path.getsize(t) for t in traces)
    events = waits = lost = 0
    have_stats = bool(traces)
    for t in traces:
        st = trace_stats(t)
        if st is None:
            have_stats = False
            continue
        events += st["events"]
        waits += st["waits"]
        lost += st["lost"]
    if not traces:
        return
    json_path = os.path.join(scratch, "summary.json")
    s = measure([HEAPGATE, "summary", "--json", json_path, trace_dir], timeout=timeout,
                log_path=os.path.join(scratch, "summary.log"))
    if s["ok"]:
        res["summary_wall"] = s["wall"]
        res["summary_cpu"] = s["cpu"]
        res["summary_maxrss_kb"] = s["maxrss_kb"]
        try:
            with open(json_path) as f:
                report = json.load(f)
            heap = [p["heap"] for p in report.get("processes", [])]
            res["allocs"] = sum(h.get("allocs", 0) for h in heap)
            res["frees"] = sum(h.get("frees", 0) for h in heap)
            # The exit-time leak scan ran inside the traced process(es); the report carries its time.
            res["scan_s"] = sum(p.get("statistics", {}).get("leakScanSeconds", 0)
                                for p in report.get("processes", []))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    else:
        res["summary_error"] = s.get("error", "failed")
        res["summary_log"] = tail(os.path.join(scratch, "summary.log"), 3)
    # The same report as on a machine's first run: no kept frames, no uncompressed debug copies.
    cold = measure([HEAPGATE, "summary", trace_dir], child_env={"HEAPGATE_CACHE": "off"}, timeout=timeout,
                   log_path=os.path.join(scratch, "summary-cold.log"))
    if cold["ok"]:
        res["summary_cold_wall"] = cold["wall"]
    if have_stats:
        res.update(events=events, waits=waits, lost=lost, ring_events=events)
    # The program's allocations and frees, from the report: since format 6 the pairs a threaded
    # program frees before they reach the ring are counted (ELIDED) but are not ring events.
    if "allocs" in res:
        res["events"] = res["allocs"] + res["frees"]


# ----------------------------------------------------------------------------------------
# One run of one tool on one workload


def tool_available(tool):
    if tool == "native":
        return True, ""
    if tool == "heapgate":
        missing = [p for p in (HEAPGATE, SHIM) if not os.access(p, os.X_OK if p == HEAPGATE else os.R_OK)]
        return (not missing), ("missing " + ", ".join(os.path.relpath(p, ROOT) for p in missing)) if missing else ""
    path = shutil.which(tool)
    return (path is not None), ("" if path else f"{tool} not installed")


def run_tool(tool, wl, scratch, trace_figures=True):
    """One timed run. For heapgate, trace_figures: also an untimed run that keeps its traces,
    for the trace's size and STATS and the timed `heapgate summary` on it."""
    work = tempfile.mkdtemp(prefix=f"{tool}.", dir=scratch)
    logp = os.path.join(work, "stderr.log")
    try:
        if tool == "native":
            res = measure(wl.argv, stdin=wl.stdin, log_path=logp)
        elif tool == "heapgate":
            # Timed: the everyday form, as the README has it (its traces go to a temporary
            # directory that it removes at the end; the program's environment is the native
            # run's, TMPDIR included).
            res = measure([HEAPGATE, "run", "--", *wl.argv], stdin=wl.stdin, log_path=logp)
            if res["ok"] and trace_figures:
                # The trace's figures come from a second, untimed run of the same command
                # that keeps its traces (--trace-dir).
                tdir = os.path.join(work, "traces")
                kept = measure([HEAPGATE, "run", "--trace-dir", tdir, "--", *wl.argv], stdin=wl.stdin,
                               log_path=os.path.join(work, "kept.log"))
                if kept["ok"]:
                    heapgate_post(res, tdir, work, TIMEOUT)
                if not res.get("trace_files"):
                    res["ok"] = False
                    res["error"] = "no trace written"
        elif tool == "heaptrack":
            hdir = os.path.join(work, "out")
            os.mkdir(hdir)
            res = measure(["heaptrack", "-o", os.path.join(hdir, "heaptrack.out"), *wl.argv],
                          stdin=wl.stdin, log_path=logp)
            res["output_bytes"] = dir_size(hdir)
            if res["ok"] and res["output_bytes"] == 0:
                res["ok"] = False
                res["error"] = "no heaptrack output"
            try:
                with open(logp, errors="replace") as f:
                    m = re.search(r"allocations:\s+(\d+)", f.read())
                if m:
                    res["allocs"] = int(m.group(1))
            except OSError:
                pass
        elif tool == "valgrind":
            vlog = os.path.join(work, "memcheck.log")
            res = measure(["valgrind", "--leak-check=full", f"--log-file={vlog}", *wl.argv],
                          stdin=wl.stdin, log_path=logp)
            try:
                with open(vlog, errors="replace") as f:
                    text = f.read()
                m = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees", text)
                if m:
                    res["allocs"] = int(m.group(1).replace(",", ""))
                    res["frees"] = int(m.group(2).replace(",", ""))
                if res["ok"] and "ERROR SUMMARY" not in text:
                    res["ok"] = False
                    res["error"] = "memcheck did not finish its report"
            except OSError:
                if res["ok"]:
                    res["ok"] = False
                    res["error"] = "no memcheck log"
        else:
            raise ValueError(tool)
        if not res["ok"]:
            res["log_tail"] = tail(logp)
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------------------
# Aggregation and tables


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def paired_rounds(native, own, repeats):
    """(the tool's wall time, the median of the same round's `repeats` native runs) for each
    round where both ran. Runs of one round follow each other, so a slow phase of the machine
    moves both sides of a round, where it moves only one median of the two."""
    pairs = []
    for i, r in enumerate(own):
        group = [n["wall"] for n in native[i * repeats:(i + 1) * repeats] if n.get("ok")]
        if r.get("ok") and group and med(group) > 0:
            pairs.append((r["wall"], med(group)))
    return pairs


def paired_wall_ratio(native, own, repeats):
    """Median over rounds of a tool's wall time over the same round's native one, with the
    quartiles of those ratios (how far the machine moved them) and the 95 % interval of the
    median. None without rounds."""
    pairs = paired_rounds(native, own, repeats)
    return ratio_spread([wall / base for wall, base in pairs]) if pairs else None


def paired_wall_added(native, own, repeats):
    """Median over rounds of a tool's wall time minus the same round's native one: what the
    tool adds. On this project's VM it stays put while the program's own time moves with the
    host (the Rust benchmark: 0.10-0.11 s added over native runs of 0.24-0.34 s), so it says
    what a change of heapgate did where the ratio also says what the machine did."""
    pairs = paired_rounds(native, own, repeats)
    return med([wall - base for wall, base in pairs]) if pairs else None


def ratio_spread(ratios):
    """Median of per-round ratios, their quartiles, and the 95 % interval of the median."""
    lo, hi = median_interval(ratios)
    if len(ratios) < 2:
        return ratios[0], ratios[0], ratios[0], lo, hi
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return med(ratios), q1, q3, lo, hi


def median_interval(values, confidence=0.95):
    """A distribution-free interval for the median of what the values sample: order statistics
    k and n+1-k, with k the largest whose binomial tail (n draws, one half) is at most half of
    1 - confidence. With 15 rounds it is the 4th to the 12th value, a 96.5 % interval. The whole
    range when there are too few values for any narrower one."""
    ordered = sorted(values)
    n = len(ordered)
    k, below = 0, 0.0
    while k < n:
        below += math.comb(n, k) / 2 ** n  # P(X <= k) for X ~ Binomial(n, 1/2)
        if below > (1 - confidence) / 2:
            break
        k += 1
    k = max(k, 1)  # 1-based order statistic
    return ordered[k - 1], ordered[n - k]


def summarize(runs):
    ok = [r for r in runs if r.get("ok")]
    s = {"runs": len(runs), "ok": len(ok)}
    if not ok:
        errs = [r.get("error") for r in runs if r.get("error")]
        s["error"] = errs[0] if errs else "not run"
        return s
    for key in ("wall", "cpu", "maxrss_kb", "trace_bytes", "output_bytes", "events", "waits", "lost",
                "summary_wall", "summary_cpu", "summary_maxrss_kb", "summary_cold_wall", "allocs", "frees", "scan_s"):
        v = med([r.get(key) for r in ok])
        if v is not None:
            s[key] = v
    if "events" in s:
        s["events_per_s"] = med([r["events"] / r["wall"] for r in ok if r.get("events") and r["wall"] > 0])
        if s.get("trace_bytes"):
            s["bytes_per_event"] = med([r["trace_bytes"] / r["events"] for r in ok if r.get("events")])
    if len(ok) < len(runs):
        s["error"] = next(r.get("error") for r in runs if not r.get("ok"))
    return s


def fmt_s(v):
    if v is None:
        return "n/a"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def fmt_x(v, ref):
    if v is None or not ref:
        return "n/a"
    r = v / ref
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×" if r < 100 else f"{r:.0f}×"


def fmt_mb(kb_or_bytes, is_kb=True):
    if kb_or_bytes is None:
        return "n/a"
    mb = kb_or_bytes / 1024 if is_kb else kb_or_bytes / 1e6
    return f"{mb:.1f}" if mb < 100 else f"{mb:.0f}"


def fmt_int(v):
    return "n/a" if v is None else f"{int(round(v)):,}"


def fmt_rate(v):
    if v is None:
        return "n/a"
    return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"


def main_table(results, wls):
    rows = ["| workload | tool | wall (s) | × native | × native, per round | CPU (s) | × native | peak RSS (MB) | × native "
            "| output (MB) | runs ok |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for wl in wls:
        per = results.get(wl.id)
        if not per:
            continue
        nat = per.get("native", {})
        for tool in TOOLS:
            s = per.get(tool)
            if s is None:
                continue
            if s.get("skipped"):
                rows.append(f"| {wl.id} | {tool} | n/a | | | n/a | | n/a | | | skipped: {s['skipped']} |")
                continue
            if not s.get("ok"):
                rows.append(f"| {wl.id} | {tool} | n/a | | | n/a | | n/a | | | 0/{s['runs']}: {s.get('error', 'failed')} |")
                continue
            out = s.get("trace_bytes", s.get("output_bytes"))
            okcol = f"{s['ok']}/{s['runs']}" + (f" ({s['error']})" if s.get("error") else "")
            ratio = tool != "native"
            paired = s.get("paired_wall_x")  # set with its quartiles, paired_wall_q1 and _q3
            per_round = (f"{fmt_x(paired, 1.0)} ({s['paired_wall_q1']:.2f}–{s['paired_wall_q3']:.2f})"
                         if ratio and paired is not None else "")
            rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                wl.id, tool, fmt_s(s.get("wall")), fmt_x(s.get("wall"), nat.get("wall")) if ratio else "1×",
                per_round,
                fmt_s(s.get("cpu")), fmt_x(s.get("cpu"), nat.get("cpu")) if ratio else "1×",
                fmt_mb(s.get("maxrss_kb")), fmt_x(s.get("maxrss_kb"), nat.get("maxrss_kb")) if ratio else "1×",
                fmt_mb(out, is_kb=False) if out is not None else "", okcol))
    return "\n".join(rows)


def heapgate_table(results, wls):
    rows = ["| workload | added wall time, per round (s) | events | trace (MB) | bytes/event | events/s "
            "| ring-full waits | events lost | exit-time leak scan (s) | exit-time processing (s) | its CPU (s) "
            "| its peak RSS (MB) | same, caches off (s) |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for wl in wls:
        s = results.get(wl.id, {}).get("heapgate")
        if not s or not s.get("ok"):
            continue
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            wl.id, fmt_s(s.get("paired_added_s")), fmt_int(s.get("events")), fmt_mb(s.get("trace_bytes"), is_kb=False),
            f"{s['bytes_per_event']:.2f}" if s.get("bytes_per_event") else "n/a",
            fmt_rate(s.get("events_per_s")), fmt_int(s.get("waits")), fmt_int(s.get("lost")),
            fmt_s(s.get("scan_s")), fmt_s(s.get("summary_wall")), fmt_s(s.get("summary_cpu")), fmt_mb(s.get("summary_maxrss_kb")),
            fmt_s(s.get("summary_cold_wall"))))
    return "\n".join(rows)


def summary_table(big):
    if not big:
        return ""
    rows = ["| trace | how it is read | events | trace (MB) | bytes/event | runs ok | wall (s) | CPU (s) "
            "| peak RSS (MB) | events/s |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    gen = big.get("trace", {})
    ev = gen.get("events")
    variants = big.get("variants") or [{"label": "as written", "summary": big.get("summary", {})}]
    for v in variants:
        s = v.get("summary", {})
        rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            big["title"], v["label"], fmt_int(ev), fmt_mb(v.get("trace_bytes", gen.get("trace_bytes")), is_kb=False),
            f"{gen['trace_bytes'] / ev:.2f}" if ev and gen.get("trace_bytes") else "n/a",
            f"{s.get('ok', 0)}/{s.get('runs', 0)}" + (f" ({s['error']})" if s.get("error") else ""),
            fmt_s(s.get("wall")), fmt_s(s.get("cpu")), fmt_mb(s.get("maxrss_kb")),
            fmt_rate(ev / s["wall"] if ev and s.get("wall") else None)))
    return "\n".join(rows)


def targets_table(results, big, scaling=None):
    """Issue 4's targets against this run's figures. A ratio to native is judged on the median
    of the per-round ratios (the paired figure of the main table), with the ratio of the medians
    beside it; a line without figures (its workload not run) says so."""
    rows = ["| target | measured | verdict |", "|---|---|---|"]

    def ran(wid, tool):
        s = results.get(wid, {}).get(tool)
        return s if s and s.get("ok") else None

    def hg(wid):
        return ran(wid, "heapgate")

    def nat(wid):
        return ran(wid, "native")

    big_heap = hg("bigheap")

    def verdict(value, limit):
        return "n/a" if value is None else ("met" if value <= limit else "**not met**")

    def near(value, limit):
        """Two decimals, or as many as it takes (up to four) to tell a value near its limit from it."""
        for digits in (2, 3, 4):
            if abs(value - limit) >= 0.5 * 10 ** -digits:
                break
        return f"{value:.{digits}f}"

    def verdict_of_median(median, lo, hi, limit, unit):
        judged = verdict(median, limit)
        if lo <= limit < hi:
            judged += f" (within this machine's noise: the 95 % interval of the median, {lo:.2f}–{hi:.2f}, spans {limit:g}{unit})"
        return judged

    def ratio_row(label, wids, limit):
        for wid in wids:
            s, n = hg(wid), nat(wid)
            if not s or not n or s.get("paired_wall_x") is None:
                rows.append(f"| {wid}: {label} | not run | n/a |")
                continue
            per_round = s["paired_wall_x"]
            judged = verdict_of_median(per_round, s["paired_wall_lo"], s["paired_wall_hi"], limit, "×")
            rows.append(f"| {wid}: {label} | {near(per_round, limit)}× per round ({s['paired_wall_q1']:.2f}–{s['paired_wall_q3']:.2f}), "
                        f"{s['wall'] / n['wall']:.2f}× of the medians | {judged} |")

    ratio_row("wall ≤ 1.3× native", ["jq", "sqlite3", "rust", "swift"], 1.3)
    ratio_row("wall ≤ 5× native", ["churn-d2"], 5.0)
    ratio_row("wall ≤ 10× native", ["churn-d30"], 10.0)
    one, eight, n1, n8 = hg("churn-d2"), hg("churn-8t"), nat("churn-d2"), nat("churn-8t")
    if one and eight and n1 and n8 and one["wall"] > n1["wall"]:
        extra = (eight["wall"] - n8["wall"]) / (one["wall"] - n1["wall"])
        ratios = (f"; ratio to native {eight['wall'] / n8['wall']:.2f}× against {one['wall'] / n1['wall']:.2f}×, "
                  f"{(eight['wall'] / n8['wall']) / (one['wall'] / n1['wall']):.2f} times")
        if eight.get("paired_wall_x") and one.get("paired_wall_x"):
            ratios += f" ({eight['paired_wall_x'] / one['paired_wall_x']:.2f} per round)"
        label = ("| 8 threads: heapgate's added wall time (heapgate − native) for the same 2 M malloc/free "
                 "split over 8 threads ≤ 1.5× the 1-thread figure")
        apart = f"{eight['wall'] - n8['wall']:.3f} s against {one['wall'] - n1['wall']:.3f} s: {extra:.2f}×{ratios}"
        if scaling:
            judged = verdict_of_median(scaling["ratio"], scaling["lo"], scaling["hi"], 1.5, "")
            rows.append(f"{label} | {near(scaling['ratio'], 1.5)} per round ({scaling['q1']:.2f}–{scaling['q3']:.2f}) over "
                        f"{len(scaling['rounds'])} rounds that alternate the two churns ({scaling['added_8']:.3f} s "
                        f"against {scaling['added_1']:.3f} s, medians); in CPU time, which counts the drain "
                        f"thread's work in both, {scaling['cpu_ratio']:.2f} per round ({scaling['cpu_8']:.3f} s "
                        f"against {scaling['cpu_1']:.3f} s); from the workloads' own rounds, run apart, "
                        f"{apart} | {judged} |")
        else:
            rows.append(f"{label} | {apart} | {verdict(extra, 1.5)} |")
    else:
        rows.append("| 8 threads ≤ 1.5× the 1-thread overhead | not run | n/a |")
    for wid in ("jq", "sqlite3"):
        s, n = hg(wid), nat(wid)
        if s and n and s.get("maxrss_kb") and n.get("maxrss_kb"):
            extra_mb = (s["maxrss_kb"] - n["maxrss_kb"]) / 1024
            rows.append(f"| {wid}: peak RSS ≤ native + 64 MB | +{extra_mb:.0f} MB | {verdict(extra_mb, 64)} |")
    # bigheap is reported apart; the few events of startup and forks (per process) are mostly
    # each trace's header and module map.
    traced = [hg(wid) for wid in results if wid not in ("bigheap", "startup", "forks") and hg(wid)]
    traced = [s for s in traced if s.get("trace_bytes") and s.get("events")]
    if traced:
        mean = sum(s["trace_bytes"] for s in traced) / sum(s["events"] for s in traced)
        worst = max(s["trace_bytes"] / s["events"] for s in traced)
        big_note = (f"; bigheap {big_heap['trace_bytes'] / big_heap['events']:.2f}, most of it the exit snapshot of its "
                    "10 M blocks in use" if big_heap and big_heap.get("trace_bytes") and big_heap.get("events") else "")
        rows.append(f"| trace ≤ 8 bytes per event on average | {mean:.2f} over the other workloads' events "
                    f"(at most {worst:.2f}){big_note} | {verdict(mean, 8)} |")
    scan = big_heap.get("scan_s") if big_heap else None
    rows.append(f"| exit-time classification of 10 M live blocks (~1 GB) ≤ 2 s | "
                f"{'n/a' if scan is None else f'{scan:.2f} s'} | {verdict(scan, 2.0)} |")
    if big and big.get("variants"):
        s = big["variants"][0].get("summary", {})
        wall = s.get("wall") if s.get("ok") else None
        rss = f", peak RSS {fmt_mb(s.get('maxrss_kb'))} MB" if s.get("maxrss_kb") else ""
        rows.append(f"| `heapgate summary` of a 10 M-event trace ≤ 3 s | {fmt_s(wall)} s{rss} | {verdict(wall, 3.0)} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------
# Machine description


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=clean_env())
        text = (out.stdout or out.stderr).strip()
        return text.splitlines()[0].strip() if text else "n/a"
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def file_id(path):
    """sha256 prefix and mtime of a build product, to tell builds apart."""
    import hashlib
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        mtime = datetime.fromtimestamp(os.path.getmtime(path), timezone.utc).strftime("%H:%M:%S UTC")
        return f"{digest} (built {mtime})"
    except OSError:
        return "missing"


def build_identity():
    commit = first_line(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "CShim", "Sources"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return {"commit": commit + (" + uncommitted changes in CShim/ or Sources/" if dirty else ""),
            "shim": file_id(SHIM), "cli": file_id(HEAPGATE)}


def machine(load_at_start, build_at_start, neighbour):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    u = os.uname()
    b = build_at_start
    end = build_identity()
    changed = [k for k in ("shim", "cli") if end[k] != b[k]]
    rows = [
        ("date", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPUs (nproc)", first_line(["nproc"])),
        ("CPU model", cpu),
        ("memory", mem),
        ("kernel", f"{u.sysname} {u.release} {u.machine}"),
        ("load average (1/5/15 min)", f"{load_at_start} at start, {loadavg()} at end "
         "(other work on the machine inflates wall times; CPU times suffer less)"),
        ("a busy neighbour", " at start, ".join(f"{x:.2f}×" if x is not None else "n/a" for x in neighbour)
         + f" at end (median of {NEIGHBOUR_ROUNDS} alternated rounds; see the notes)"),
        ("glibc", first_line(["ldd", "--version"])),
        ("heapgate", first_line([HEAPGATE, "--version"]) + f", git {b['commit']}"),
        ("libheapgate.so", b["shim"]),
        ("heapgate CLI", b["cli"]),
        ("heaptrack", first_line(["heaptrack", "--version"])),
        ("valgrind", first_line(["valgrind", "--version"])),
        ("jq", first_line(["jq", "--version"])),
        ("sqlite3", first_line(["sqlite3", "--version"])),
        ("cc", first_line(["cc", "--version"])),
        ("rustc", first_line(["rustc", "--version"])),
        ("swiftc", first_line([os.environ.get("SWIFTC") or shutil.which("swiftc") or "/opt/swift/usr/bin/swiftc", "--version"])),
    ]
    if changed:
        rows.append(("**warning**", "rebuilt during the benchmark, so the numbers mix builds: "
                     + "; ".join(f"{k} now {end[k]}" for k in changed)
                     + (f"; git now {end['commit']}" if end["commit"] != b["commit"] else "")))
    return rows


# ----------------------------------------------------------------------------------------


def write_results(results, wls, big, scaling, info, started, finished):
    settings = (f"{RUNS} run(s) per tool and workload, medians; "
                f"{f'native and heapgate {PAIRED_RUNS} rounds (the 10 M-block heap {RUNS}); ' if PAIRED_RUNS > RUNS else ''}"
                f"{'BENCH_QUICK=1 (smoke pass, small inputs); ' if QUICK else ''}"
                f"{'BENCH_SKIP_VALGRIND=1; ' if SKIP_VALGRIND else ''}"
                f"{'BENCH_BIG_ALL=1; ' if BIG_ALL else ''}"
                f"{'BENCH_ONLY=' + ','.join(ONLY) + '; ' if ONLY else ''}"
                f"per-run limit {TIMEOUT:g} s; whole run took {(finished - started) / 60:.1f} min")
    lines = ["# heapgate benchmarks", "",
             "Written by `make bench` (scripts/bench.sh); overwritten on every run. "
             "Numbers are from the machine below and the heapgate build at the time.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info]
    lines += ["", f"Settings: {settings}.", "", "## Workloads", ""]
    for wl in wls:
        if wl.id in results:
            cmd = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else (f"'{a}'" if " " in a else a) for a in wl.argv)
            if wl.stdin:
                cmd += " < " + os.path.relpath(wl.stdin, ROOT)
            lines.append(f"- **{wl.id}**: {wl.title}: `{cmd}`" + (f" ({wl.note})" if wl.note else ""))
    if big:
        lines.append(f"- **summary**: {big['title']}: `{big['cmd']}`")
    lines += ["", "## Time, CPU and memory per tool", "",
              "Median over the runs; × native is the ratio of the medians to the same program run natively; "
              "× native, per round is the median over the rounds of the tool's wall time over the native "
              "one of the same round, which a busy phase of the machine moves less (it slows both runs of "
              "a round, where it moves only one of the two medians); in brackets, the quartiles of those "
              "per-round ratios, the middle half of the rounds: how much the machine moved them. "
              "Wall time of heapgate is the whole `heapgate run -- prog` (program + exit-time report, "
              "its traces in a temporary directory that it removes); its trace figures (output, and the "
              "details below) come from an untimed run of the same command with `--trace-dir`, which keeps them; "
              "heaptrack's is the `heaptrack -o FILE prog` run (recording and compression, no heaptrack_print); "
              "valgrind's is `valgrind --leak-check=full prog`. "
              "CPU is user+sys of the whole process tree; peak RSS is of its largest single process "
              "(wait4 in a small fork+exec helper, build/bench/measure, as /usr/bin/time reports them). Output is the trace (heapgate) or the compressed "
              "heaptrack file.", "", main_table(results, wls), "",
              "## heapgate details", "",
              "Added wall time = the median over the rounds of heapgate's wall time minus the same round's "
              "native one: what heapgate adds, which on a shared machine moves less than the ratio (the "
              "program's own time moves with the host, the added time much less). "
              "Events and ring-full waits come from the trace's STATS record (events = allocations + frees, "
              "including the few the runtime makes before `main`); bytes/event = trace size / events; "
              "events/s = events / wall time of the whole `heapgate run`; exit-time leak scan = the classification inside the traced process at exit (`statistics.leakScanSeconds`); exit-time processing = "
              "`heapgate summary --json` on the kept trace (reader + symbolizer + report), which is also "
              "the part of `heapgate run`'s wall time spent after the program exits; \"caches off\" is the "
              "same with `HEAPGATE_CACHE=off`, as on a machine's first run (no frames kept from earlier "
              "reports, no uncompressed copies of debug files).", "",
              heapgate_table(results, wls), "",
              "## Against the targets", "",
              "The overhead targets (README.md, \"Benchmarks\"), with this run's figures. "
              "On this shared 2-CPU machine the per-round ratios of one workload spread by a third "
              "(the quartiles above), so a ratio near its limit can be met in one run and missed in the next. "
              "A ratio is judged on the median of its per-round ratios; when the limit lies inside the "
              "interval that holds the median with 95 % confidence (order statistics of the rounds, "
              "distribution-free), the verdict says that this run cannot tell."
              + (" BENCH_QUICK: inputs about ten times smaller than the targets are about; "
                 "the verdicts do not apply." if QUICK else ""), "",
              targets_table(results, big, scaling), ""]
    if big:
        lines += ["## `heapgate summary` on a large trace", "",
                  "The trace is recorded once (`LD_PRELOAD=libheapgate.so HEAPGATE_OUT=DIR`), then "
                  "`heapgate summary` is timed on it; when the trace ends with the snapshot footer, also on "
                  "a copy without the footer, which the reader has to replay event by event "
                  "(events/s = trace events / wall time).", "", summary_table(big), ""]
    lines += ["## Notes", "",
              "- Runs are interleaved per workload (native, heapgate, heaptrack, valgrind, native, …) after "
              "one untimed native warm-up run, so drift of the machine hits every tool alike. After the rounds "
              "of every tool, native and heapgate go on alone for more rounds (BENCH_PAIRED_RUNS), still "
              "interleaved: the per-round ratios of this machine spread by a third, and heapgate's ratio to "
              "native is the one the targets are about. A workload whose "
              "native run takes under 0.1 s (the churns) gets three native runs per round, so its native median, "
              "which every ratio divides by, is taken over three times as many runs. heapgate also gets "
              "one untimed run per workload: a machine's first `heapgate run` or `heapgate summary` keeps "
              "uncompressed copies of the compressed debug files it read (libc's, from libc6-dbg: about 0.1 s, "
              "once; see docs/architecture.md, \"Uncompressed copies of debug files\") and the frames its "
              "report resolved (\"Frames kept across runs\"), and the table shows the runs after that, as "
              "someone who traces their program again sees them. The heapgate details give the report's "
              "time without those caches too.",
              "- `bigheap` holds ~1 GB in 10 M blocks at exit; its point is heapgate's exit-time cost with a "
              "large live heap (heapgate run vs native, and `heapgate summary` on its trace). heaptrack and "
              "valgrind are skipped there by default to bound memory and time: memcheck needs about 2.5× the "
              "native peak RSS (≈3 GB for this program) and ~15× its time, and heaptrack's recording does no "
              "exit-time analysis to compare with (that is the separate, untimed heaptrack_print). "
              "`BENCH_BIG_ALL=1` runs both anyway.",
              "- Trace bytes/event divide the whole trace (stacks, module maps and any exit-time records, "
              "e.g. one per block still in use) by the allocation+free events, so a program with many blocks "
              "in use at exit shows more bytes per event.",
              "- `churn-8t` does the same total work as `churn-d2` (2 M malloc/free) split over 8 threads; "
              "most frees happen on another thread than the malloc. The 8-thread target is judged on rounds "
              "that alternate the two (after the workloads' own rounds: native 1 thread, heapgate 1 thread, native "
              "8 threads, heapgate 8 threads, then two more native runs of each), on the median over those rounds "
              "of the 8-thread added time over the 1-thread one: run apart, a slow phase of the machine during one "
              "workload moved the ratio (2.20 in one run, 1.64 in alternating runs the same day).",
              "- `threads-short` (the test fixture `thread_churn`) is about what a thread costs heapgate to start "
              "and end, not about events (40,048 of them); it has no target of its own.",
              "- `forks` is a shell script's way of working, as a test suite run under `heapgate run` has it: "
              "each command a fork and an exec, so each costs heapgate a traced image (`startup`) and a fork; "
              "it has no target of its own. valgrind traces bash alone there (no `--trace-children`), heaptrack "
              "every process (its preload is inherited).",
              "- `startup` runs `true`, which allocates almost nothing: heapgate's time there is what every "
              "`heapgate run` adds whatever the program does (the CLI starting, the shim starting and stopping "
              "its drain thread, reading the trace, printing the report and removing the trace), and is part of every "
              "other workload's ratio (8 ms on the morning of 2026-11-24, about 3 % of the Swift workload's native "
              "time; 6-7 ms once `heapgate run -- prog` skipped the argument parser). It has no target of its own.",
              "- \"A busy neighbour\" (Machine) describes the machine, not heapgate: it is how much a loop of "
              "arithmetic on the other CPU slows the native 2-frame churn, measured before the workloads and "
              "after them. Near 1× the two CPUs behave as separate cores; well above it (1.46× and more seen "
              "on 2026-11-24) they share one core's resources, so heapgate's drain thread, which runs beside "
              "the program, slows it for as long as it runs, and the single-threaded ratios come out higher "
              "(docs/ring-measurements.md). On this project's VM that changes within minutes.",
              "- A tool that is missing, fails, or exceeds the per-run limit is shown as n/a and is not run "
              "again on that workload.",
              "- Raw per-run data: `build/bench/results.json`.", ""]
    os.makedirs(os.path.dirname(RESULTS_MD), exist_ok=True)
    tmp = RESULTS_MD + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, RESULTS_MD)
    return "\n".join(lines)


NEIGHBOUR_ROUNDS = 15


def neighbour_probe():
    """The native 2-frame churn beside a loop of arithmetic (build/bench/neighbour) on the other
    CPU over the churn alone, per round, median over alternated rounds (what it tells: the
    notes of results.md). None when either program is missing or no round ran."""
    if not (os.access(CHURN, os.X_OK) and os.access(NEIGHBOUR, os.X_OK)):
        return None
    argv = [CHURN, str(scale(2000000, 200000)), "2"]
    alone, beside = [], []
    for _ in range(NEIGHBOUR_ROUNDS):
        alone.append(measure(argv))
        neighbour = subprocess.Popen([NEIGHBOUR], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.05)
            beside.append(measure(argv))
        finally:
            neighbour.kill()
            neighbour.wait()
    paired = paired_wall_ratio(alone, beside, 1)
    return paired[0] if paired else None


def run_thread_scaling(wls, scratch):
    """The 8-thread target compares two workloads, and run apart (each after the other, as the
    main loop runs them) a slow phase of the machine during one of them moves the ratio: 2.20
    in one make bench, 1.64 in alternating runs the same day. So the 1-thread and the 8-thread
    churn also alternate within rounds (native three times each, heapgate once each), and the
    target is judged on the median over the rounds of (heapgate - native, 8 threads) /
    (heapgate - native, 1 thread), in wall time. The same ratio in CPU time is reported beside
    it: with one program thread the drain thread runs on the otherwise idle CPU, so its work
    shows in the 1-thread CPU time and not in its wall time, where the 8 threads' wall time
    pays it. None when either workload or heapgate is not run."""
    by_id = {wl.id: wl for wl in wls}
    one, eight = by_id.get("churn-d2"), by_id.get("churn-8t")
    if not one or not eight or "heapgate" not in SELECTED_TOOLS or not tool_available("heapgate")[0]:
        return None
    order = [("native", one), ("heapgate", one), ("native", eight), ("heapgate", eight),
             ("native", one), ("native", eight), ("native", one), ("native", eight)]
    # Twice the workloads' rounds and one: a round takes about a second, and this target sits
    # at its limit, where 15 rounds left a 95 % interval of 1.36-1.62 around a median of 1.52.
    scaling_rounds = 2 * PAIRED_RUNS + 1
    rounds = []
    for i in range(scaling_rounds):
        runs = {}
        for tool, wl in order:
            r = run_tool(tool, wl, scratch, trace_figures=False)
            if not r["ok"]:
                log(f"[thread scaling] round {i + 1}: {tool} on {wl.id} FAILED ({r.get('error')})")
                runs = None
                break
            runs.setdefault((tool, wl.id), []).append(r)

        if runs is None:
            continue

        def added(wl, key):
            return runs[("heapgate", wl.id)][0][key] - med([r[key] for r in runs[("native", wl.id)]])

        added_one, added_eight = added(one, "wall"), added(eight, "wall")
        cpu_one, cpu_eight = added(one, "cpu"), added(eight, "cpu")
        if added_one > 0 and cpu_one > 0:
            rounds.append({"added_1": added_one, "added_8": added_eight, "ratio": added_eight / added_one,
                           "cpu_1": cpu_one, "cpu_8": cpu_eight, "cpu_ratio": cpu_eight / cpu_one})
            log(f"[thread scaling] round {i + 1}/{scaling_rounds}: added {added_eight:.3f} s with 8 threads, "
                f"{added_one:.3f} s with 1: {added_eight / added_one:.2f}; CPU {cpu_eight:.3f} s against "
                f"{cpu_one:.3f} s: {cpu_eight / cpu_one:.2f}")
    if not rounds:
        return None
    ratio, q1, q3, lo, hi = ratio_spread([r["ratio"] for r in rounds])
    return {"rounds": rounds, "ratio": ratio, "q1": q1, "q3": q3, "lo": lo, "hi": hi,
            "added_1": med([r["added_1"] for r in rounds]), "added_8": med([r["added_8"] for r in rounds]),
            "cpu_ratio": med([r["cpu_ratio"] for r in rounds]),
            "cpu_1": med([r["cpu_1"] for r in rounds]), "cpu_8": med([r["cpu_8"] for r in rounds])}


def run_summary_bench(scratch):
    """heapgate summary on a trace of ~10 M events (churn 5,000,000: 5 M mallocs + 5 M frees)."""
    it = scale(5000000, 500000)
    title = f"churn {it:,} (≈{2 * it / 1e6:g} M events)"
    tdir = os.path.join(scratch, "summary-trace")
    os.mkdir(tdir)
    big = {"title": title, "cmd": f"heapgate summary TRACE  (TRACE from build/fixtures/churn {it} 2)"}
    ok, why = tool_available("heapgate")
    if not ok or not os.access(CHURN, os.X_OK):
        big["summary"] = {"runs": 0, "ok": 0, "error": why or "no churn fixture"}
        return big
    log(f"[summary] recording a trace of churn {it} 2")
    rec = measure([CHURN, str(it), "2"], child_env={"LD_PRELOAD": SHIM, "HEAPGATE_OUT": tdir},
                  log_path=os.path.join(scratch, "summary-record.log"))
    traces = [os.path.join(tdir, f) for f in os.listdir(tdir) if f.endswith(".trace")]
    if not rec["ok"] or len(traces) != 1:
        why = rec.get("error") or f"{len(traces)} traces written, expected 1"
        log(f"[summary] recording FAILED ({why})\n" + tail(os.path.join(scratch, "summary-record.log")))
        big["summary"] = {"runs": 0, "ok": 0, "error": why}
        return big
    st = trace_stats(traces[0]) or {}
    big["trace"] = {"trace_bytes": os.path.getsize(traces[0]), "events": st.get("events"),
                    "waits": st.get("waits"), "record_wall": rec["wall"]}
    # A complete trace may end with a footer pointing at an exit snapshot, so the reader
    # can skip the events; the same trace without the footer (as a reader sees a trace
    # without a snapshot) is replayed in full. Both are timed, interleaved.
    variants = [{"label": "as written", "path": traces[0]}]
    with open(traces[0], "rb") as f:
        f.seek(max(0, os.path.getsize(traces[0]) - len(FOOTER_MAGIC)))
        has_footer = f.read() == FOOTER_MAGIC
    if has_footer:
        replay = os.path.join(scratch, "summary-replay.trace")
        shutil.copyfile(traces[0], replay)
        os.truncate(replay, os.path.getsize(traces[0]) - 16)
        variants[0]["label"] = "as written (exit snapshot via footer)"
        variants.append({"label": "footer removed (full replay)", "path": replay,
                         "trace_bytes": os.path.getsize(replay)})
    runs = {v["label"]: [] for v in variants}
    for i in range(RUNS):
        for v in variants:
            if runs[v["label"]] and not runs[v["label"]][-1]["ok"]:
                continue
            r = measure([HEAPGATE, "summary", v["path"]], log_path=os.path.join(scratch, "summary.log"))
            runs[v["label"]].append(r)
            log(f"[summary] run {i + 1}/{RUNS} {v['label']}: "
                + (f"{r['wall']:.3f} s, {r['maxrss_kb'] / 1024:.0f} MB" if r["ok"]
                   else f"FAILED ({r.get('error')})\n" + tail(os.path.join(scratch, "summary.log"))))
    for v in variants:
        v["summary"] = summarize(runs[v["label"]])
        v["runs"] = runs[v["label"]]
        v.pop("path")
    big["variants"] = variants
    big["summary"] = variants[0]["summary"]
    shutil.rmtree(tdir, ignore_errors=True)
    if has_footer:
        os.unlink(replay)
    return big


def main():
    if "--list" in sys.argv[1:]:
        for wl in workloads():
            print(f"{wl.id:10} {wl.title}")
        print(f"{'summary':10} heapgate summary on a ~10 M-event trace")
        return 0
    started = time.monotonic()
    load_at_start = loadavg()
    build_at_start = build_identity()
    wls = [wl for wl in workloads() if not ONLY or wl.id in ONLY]
    do_summary = not ONLY or "summary" in ONLY
    scratch = tempfile.mkdtemp(prefix="heapgate-bench.")
    SCRATCH["dir"] = scratch
    results, raw = {}, {}
    big = scaling = None
    neighbour = [None, None]

    def on_signal(signum, frame):
        killer = CURRENT.get("killer")
        if killer:
            killer.kill()
        log(f"heapgate bench: interrupted (signal {signum}); nothing written")
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        neighbour[0] = neighbour_probe()
        log(f"heapgate bench: {len(wls)} workloads, {RUNS} run(s) each, tools {', '.join(t for t in TOOLS if t in SELECTED_TOOLS or t == 'native')}"
            f"{' (quick)' if QUICK else ''}; scratch {scratch}")
        for n, wl in enumerate(wls, 1):
            tag = f"[{n}/{len(wls)} {wl.id}]"
            per = {}
            tools = []
            for tool in TOOLS:
                if tool != "native" and tool not in SELECTED_TOOLS:
                    continue
                if tool not in wl.tools:
                    per[tool] = {"skipped": "not run on this workload by default (see notes)"}
                    continue
                if tool == "valgrind" and SKIP_VALGRIND and wl.big:
                    per[tool] = {"skipped": "BENCH_SKIP_VALGRIND=1"}
                    continue
                ok, why = tool_available(tool)
                if not ok:
                    per[tool] = {"skipped": why}
                    continue
                tools.append(tool)
            missing = [a for a in wl.argv[:1] + ([wl.stdin] if wl.stdin else []) if os.sep in a and not os.path.exists(a)]
            if missing or not shutil.which(wl.argv[0]):
                why = f"missing {os.path.relpath(missing[0], ROOT) if missing else wl.argv[0]}"
                log(f"{tag} skipped: {why}")
                results[wl.id] = {t: {"skipped": why} for t in TOOLS if t in SELECTED_TOOLS or t == "native"}
                continue
            log(f"{tag} {wl.title}: warm-up")
            warm = measure(wl.argv, stdin=wl.stdin)
            # A native run of a few tens of milliseconds is moved most by the machine's noise,
            # and every ratio of the workload divides by its median: such workloads get three
            # native runs per round (still interleaved), which cost almost nothing.
            native_repeats = 3 if warm.get("ok") and warm.get("wall", 1.0) < 0.1 else 1
            if "heapgate" in tools:
                # Also warms heapgate's debug-info cache (uncompressed copies of compressed
                # debug files, made once per machine), so the runs show the steady state.
                run_tool("heapgate", wl, scratch)
            runs = {t: [] for t in tools}
            dead = set()
            rounds = RUNS if wl.id == "bigheap" else PAIRED_RUNS
            for i in range(rounds):
                paired_only = i >= RUNS
                for tool in [t for t in tools for _ in range(native_repeats if t == "native" else 1)]:
                    if tool in dead or (paired_only and tool not in ("native", "heapgate")):
                        continue
                    r = run_tool(tool, wl, scratch)
                    runs[tool].append(r)
                    if r["ok"]:
                        extra = ""
                        if tool == "heapgate":
                            extra = (f", trace {r.get('trace_bytes', 0) / 1e6:.1f} MB, {r.get('events', 0):,} events, "
                                     + (f"summary {r['summary_wall']:.3f} s" if "summary_wall" in r
                                        else f"summary FAILED ({r.get('summary_error')})"))
                            if r.get("summary_log"):
                                extra += "\n" + r["summary_log"]
                        log(f"{tag} run {i + 1}/{rounds} {tool:9}: {r['wall']:.3f} s wall, {r['cpu']:.3f} s CPU, "
                            f"{r['maxrss_kb'] / 1024:.0f} MB{extra}")
                    else:
                        dead.add(tool)
                        log(f"{tag} run {i + 1}/{rounds} {tool:9}: FAILED ({r.get('error')}); not run again here")
                        if r.get("log_tail"):
                            log(r["log_tail"])
            for tool in tools:
                per[tool] = summarize(runs[tool])
                if tool != "native" and "native" in runs:
                    paired = paired_wall_ratio(runs["native"], runs[tool], native_repeats)
                    if paired is not None:
                        (per[tool]["paired_wall_x"], per[tool]["paired_wall_q1"], per[tool]["paired_wall_q3"],
                         per[tool]["paired_wall_lo"], per[tool]["paired_wall_hi"]) = paired
                    per[tool]["paired_added_s"] = paired_wall_added(runs["native"], runs[tool], native_repeats)
            results[wl.id] = per
            raw[wl.id] = runs
        scaling = run_thread_scaling(wls, scratch)
        if do_summary:
            big = run_summary_bench(scratch)
        neighbour[1] = neighbour_probe()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    finished = time.monotonic()
    info = machine(load_at_start, build_at_start, neighbour)
    text = write_results(results, wls, big, scaling, info, started, finished)
    os.makedirs(os.path.dirname(RESULTS_JSON), exist_ok=True)
    with open(RESULTS_JSON, "w") as f:
        json.dump({"machine": dict(info), "quick": QUICK, "runs": RUNS, "summaries": results, "raw": raw,
                   "summary_bench": big, "thread_scaling": scaling,
                   "neighbour_probe": {"start": neighbour[0], "end": neighbour[1]}}, f, indent=1, default=str)
    print(text)
    log(f"heapgate bench: done in {(finished - started) / 60:.1f} min; wrote {os.path.relpath(RESULTS_MD, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
