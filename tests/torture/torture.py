#!/usr/bin/env python3
"""Kill loops: runnel jobs killed and stopped again and again, compared with a clean run.

Each case is one job (a window kind, a starting parallelism, a state backend)
over generated events, with far more state than `state.memory` on the RocksDB
backend (tens of thousands of open windows and their timers in a few MB, so
that values and timers spill), taking a checkpoint every 200 ms. The case's
seed draws a schedule of disruptions, and each is carried out on a fresh start
of the same job:

  kill     SIGKILL at a random moment: after the run completed a checkpoint
           of its own (so that each run gets somewhere), a random delay later
  burst    SIGKILL within 0-300 ms of the start, while the restore itself may
           still run, two or three times in a row
  term     SIGTERM: the run must stop at a final checkpoint (exit 0, "job
           stopped at checkpoint N") and the next run must resume from N
  savepoint  `runnel stop ADDR --savepoint DIR` (exit 0, the path printed),
           then `runnel run --from-savepoint DIR` with the same parallelism
  rescale  the same, resumed with another parallelism (1, 2 or 3)

A run that ends by itself before its disruption is either finished (exit 0:
the schedule ends early) or a crash (anything else; counted, and the case
ends). After the schedule, the job runs to its end. Its output file is then
compared with a clean run's, window by window (key, start, end):

  lost        windows of the clean run missing from the output
  duplicated  windows that appear more than once (extra copies counted)
  wrong       windows whose line differs from the clean run's, and windows
              the clean run does not have
  crashes     runs that exited unexpectedly (not by our signal, or a stop
              that did not exit 0), sanitizer reports included

All four must be zero. Waiting is on events (a new checkpoint directory, the
REST endpoint answering, the process ending); deadlines only catch hangs.

Everything random comes from the seed: `RN_TORTURE_SEED` (a number) sets the
run's seed, from which each case's seed is derived and printed; to replay one
case, `RN_TORTURE_CASE=<name>:<case seed>` with the same `RN_TORTURE_SCALE`.
Timing still varies between machines (where in the job a kill lands), so a
failure that depends on the exact instant may need a few replays.

Scales (`RN_TORTURE_SCALE`): `ci` (default; the ctest test, a few minutes),
`small` (the sanitizer pass), `long` (the whole matrix, round after round,
for `RN_TORTURE_MINUTES`, default 10).
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RUNNEL = os.environ.get("RUNNEL")
SCALE = os.environ.get("RN_TORTURE_SCALE") or (
    "small" if os.environ.get("RN_TEST_SANITIZED") else "ci")
SANITIZED = bool(os.environ.get("RN_TEST_SANITIZED"))
# Deadlines only catch hangs; a sanitizer build on a loaded machine is ten
# times slower or more.
HANG = float(os.environ.get("RN_TORTURE_HANG", "600" if SANITIZED else "180"))

# Events, keys and bounds of each scale. `memory` is the RocksDB backend's
# state.memory: per instance, the keys' windows and timers need several times it.
SCALES = {
    "small": {"events": 60000, "keys": 10000, "rate": 5000, "memory": "1MB", "steps": 4,
              "cases": ["tumbling-p1-rocksdb", "session-p3-rocksdb", "sliding-p3-memory"]},
    "ci": {"events": 180000, "keys": 30000, "rate": 30000, "memory": "2MB", "steps": 6,
           "cases": ["tumbling-p1-rocksdb", "sliding-p3-rocksdb", "session-p1-rocksdb",
                     "tumbling-p3-memory", "session-p3-memory"]},
    "long": {"events": 300000, "keys": 50000, "rate": 40000, "memory": "2MB", "steps": 10,
             "cases": None},
}
# Event time of event 0: on a boundary of every window size used (a multiple
# of an hour), so that the first windows are whole.
START = 1699999200000
WINDOWS = ["tumbling", "sliding", "session"]
# RN_TORTURE_ACTIONS="kill burst": only these disruptions (to narrow a failure down).
ONLY = os.environ.get("RN_TORTURE_ACTIONS", "").split()
ACTIONS = ["kill", "kill", "kill", "burst", "term", "savepoint", "rescale"]


def log(msg):
    print(msg, flush=True)


def window_spec(kind, sc):
    """The window of each kind: key k comes every `keys` ms of event time
    (datagen: key = id % keys, ts = start + id ms), so every window holds
    state for every key. Tumbling and sliding windows are long (half the
    events), with event time starting on a window boundary: their timers all
    fall on one or two times, most of them spilled, for most of the run."""
    events, keys = sc["events"], sc["keys"]
    if kind == "tumbling":
        return "{type: tumbling, size: %dms}" % (events // 2), None
    if kind == "sliding":
        return "{type: sliding, size: %dms, slide: %dms}" % (events // 2, events // 4), None
    # Sessions: a filter drops ids in [3k, 5k) of every 5k-id cycle (k =
    # keys), so each key comes 3 times, `keys` ms apart, then not for
    # 3 * keys ms; a gap of 2 * keys merges the three into one session and
    # closes it before the next.
    return ("{type: session, gap: %dms}" % (2 * keys),
            "id %% %d < %d" % (5 * keys, 3 * keys))


def job_yaml(d, kind, par, backend, sc, port, rate):
    win, where = window_spec(kind, sc)
    src = "gen"
    ops = ""
    if where:
        ops += "  gaps: {type: filter, inputs: [gen], where: \"%s\"}\n" % where
        src = "gaps"
    ops += ("  per_key:\n    type: window_aggregate\n    inputs: [%s]\n    key: [key]\n"
            "    window: %s\n    aggregates: {n: count(), total: sum(value), hi: max(id),"
            " lo: min(id)}\n" % (src, win))
    ckpt = ("checkpoints: {interval: 200ms, dir: \"%s/ckpt\", retain: 2}\n" % d) if rate else ""
    rest = ("rest: {listen: 127.0.0.1:%d}\n" % port) if port else ""
    return ("name: torture\nparallelism: %d\n%s%s"
            "state: {backend: %s, dir: \"%s/state\", memory: %s}\n"
            "sources:\n  gen: {type: datagen, generator: sequence, events: %d, rate: %d,"
            " keys: %d, start: %d, event_time: ts}\n"
            "operators:\n%s"
            "sinks:\n  out: {type: file, inputs: [per_key], path: \"%s/out.jsonl\"}\n"
            % (par, ckpt, rest, backend, d, sc["memory"], sc["events"], rate, sc["keys"],
               START, ops, d))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def checkpoints(d):
    try:
        return {n for n in os.listdir(os.path.join(d, "ckpt"))
                if n.startswith("chk-") and not n.endswith(".inprogress")}
    except FileNotFoundError:
        return set()


def sanitizer_report(text):
    return any(s in text for s in ("runtime error:", "AddressSanitizer", "LeakSanitizer",
                                   "UndefinedBehaviorSanitizer"))


def window_id(line):
    try:
        r = json.loads(line)
        return (r["key"], r["window_start"], r["window_end"])
    except (ValueError, KeyError, TypeError):
        return None


def compare(clean_path, out_path):
    """Counts lost, duplicated and wrong windows of OUT against CLEAN."""
    clean = {}
    with open(clean_path) as f:
        for line in f:
            clean[window_id(line)] = line
    seen = {}
    if os.path.exists(out_path):
        with open(out_path) as f:
            for line in f:
                seen.setdefault(window_id(line), []).append(line)
    lost = sum(1 for w in clean if w not in seen)
    dup = sum(len(v) - 1 for v in seen.values())
    wrong = sum(1 for w, v in seen.items() if w not in clean or any(x != clean[w] for x in v))
    examples = [v[0].strip() for w, v in seen.items()
                if w not in clean or any(x != clean[w] for x in v)][:3]
    return lost, dup, wrong, len(clean), examples


class Case:
    def __init__(self, name, seed, sc, work):
        self.name, self.seed, self.sc = name, seed, sc
        self.kind, p, self.backend = name.split("-")
        self.par = int(p[1:])
        self.rng = random.Random(seed)
        self.d = os.path.join(work, "%s-%d" % (name, seed))
        os.makedirs(self.d)
        self.logf = os.path.join(self.d, "log")
        self.kills = self.terms = self.savepoints = self.rescales = 0
        self.crashes = 0
        self.problems = []
        self.savepoint = None      # resume from it until a checkpoint of ours exists
        self.expect_resume = None  # "checkpoint N" / "savepoint N" the next run must say
        self.runs = 0

    def problem(self, msg):
        self.problems.append(msg)
        log("  FAIL %s: %s" % (self.name, msg))

    def write_job(self, port=None):
        with open(os.path.join(self.d, "job.yaml"), "w") as f:
            f.write(job_yaml(self.d, self.kind, self.par, self.backend, self.sc, port,
                             self.sc["rate"]))

    def start(self, rest=False):
        port = free_port() if rest else None
        self.write_job(port)
        args = [RUNNEL, "run", os.path.join(self.d, "job.yaml"), "--quiet"]
        if self.savepoint:
            args += ["--from-savepoint", self.savepoint]
        self.runs += 1
        self.mark = os.path.getsize(self.logf) if os.path.exists(self.logf) else 0
        with open(self.logf, "a") as lf:
            lf.write("== run %d: %s\n" % (self.runs, " ".join(args[1:])))
            lf.flush()
            # Debug lines: the state's spill counts when a run ends in order.
            env = dict(os.environ, RUNNEL_LOG="debug")
            self.proc = subprocess.Popen(args, stdout=lf, stderr=lf, cwd=self.d, env=env)
        self.before = checkpoints(self.d)
        self.port = port
        return port

    def run_log(self):
        with open(self.logf, errors="replace") as f:
            f.seek(self.mark)
            return f.read()

    def ended(self, rc, why):
        """The run ended by itself (RC) before WHY: finished or crashed."""
        text = self.run_log()
        self.check_run_log(text)
        if rc == 0:
            log("  run %d finished by itself before %s" % (self.runs, why))
            return "finished"
        self.crashes += 1
        tail = [l for l in text.splitlines() if l.strip()][-3:]
        self.problem("run %d exited %d before %s: %s" % (self.runs, rc, why, " | ".join(tail)))
        return "crashed"

    def check_run_log(self, text, killed=False):
        if sanitizer_report(text):
            self.crashes += 1
            self.problem("run %d: sanitizer report (see %s)" % (self.runs, self.logf))
        if killed and "resuming from" not in text:
            # Killed before it said where it resumes: the next run must.
            return
        if self.expect_resume:
            if not re.search(r"resuming from %s\b" % self.expect_resume, text):
                said = [l for l in text.splitlines() if "resuming from" in l]
                self.problem("run %d should resume from %s, said: %s"
                             % (self.runs, self.expect_resume, said[:1] or "nothing"))
            self.expect_resume = None

    def wait_checkpoint(self):
        """Waits for a checkpoint this run completed; returns None when it has
        one, else how the run ended (or "hang")."""
        deadline = time.time() + HANG
        while time.time() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return self.ended(rc, "its first checkpoint")
            new = checkpoints(self.d) - self.before
            if new:
                # A checkpoint of this run: a savepoint resume is no longer needed.
                self.savepoint = None
                return None
            time.sleep(0.02)
        return self.hung("no checkpoint")

    def hung(self, what, secs=HANG):
        """A deadline passed: the stacks of the run's threads go to a file
        beside its log (when gdb is there), then the run is killed."""
        self.problem("run %d: %s within %ds (hang)" % (self.runs, what, secs))
        if shutil.which("gdb") and self.proc.poll() is None:
            path = os.path.join(self.d, "hang-%d.txt" % self.runs)
            with open(path, "w") as f:
                subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex",
                                "thread apply all bt"], stdout=f, stderr=subprocess.STDOUT,
                               timeout=120, check=False)
            log("  stacks: %s" % path)
        self.proc.kill()
        self.proc.wait()
        return "hang"

    def wait_rest(self):
        deadline = time.time() + HANG
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def kill9(self):
        try:
            self.proc.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = self.proc.wait()
        if rc != -signal.SIGKILL:
            # It ended on its own just before the signal.
            return self.ended(rc, "a kill")
        self.check_run_log(self.run_log(), killed=True)
        self.kills += 1
        return None

    def step(self, action):
        """One disruption on a fresh start; returns None to go on, else why not."""
        if action == "burst":
            for _ in range(self.rng.randint(2, 3)):
                self.start()
                delay = self.rng.uniform(0.0, 0.3)
                end = time.time() + delay
                while time.time() < end and self.proc.poll() is None:
                    time.sleep(0.005)
                r = self.kill9()
                if r:
                    return r
            return None
        rest = action in ("savepoint", "rescale")
        self.start(rest=rest)
        r = self.wait_checkpoint()
        if r:
            return r
        # A random moment after it: up to two checkpoint intervals and a bit.
        end = time.time() + self.rng.uniform(0.0, 0.5)
        while time.time() < end and self.proc.poll() is None:
            time.sleep(0.005)
        if self.proc.poll() is not None:
            return self.ended(self.proc.returncode, action)
        if action == "kill":
            return self.kill9()
        if action == "term":
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=HANG)
            except subprocess.TimeoutExpired:
                return self.hung("SIGTERM did not stop it")
            text = self.run_log()
            self.check_run_log(text)
            if rc != 0:
                self.crashes += 1
                self.problem("run %d: SIGTERM exit %d" % (self.runs, rc))
                return "crashed"
            self.terms += 1
            at = [l.split("stopped at checkpoint ")[1].split()[0]
                  for l in text.splitlines() if "stopped at checkpoint " in l]
            if at:
                self.expect_resume = "checkpoint %d" % int(at[-1])
            elif "job failed" not in text:
                # Finished between the signal and the stop: nothing to resume.
                return "finished"
            return None
        # savepoint / rescale through the REST endpoint.
        if not self.wait_rest():
            if self.proc.poll() is not None:
                return self.ended(self.proc.returncode, "a savepoint")
            return self.hung("the REST endpoint did not answer")
        # A new directory directly in the savepoints root (the default,
        # <checkpoints>/savepoints), the only place a savepoint may go.
        sp = os.path.join(self.d, "ckpt", "savepoints", "sp-%d" % self.runs)
        try:
            st = subprocess.run([RUNNEL, "stop", "127.0.0.1:%d" % self.port, "--savepoint", sp],
                                capture_output=True, text=True, timeout=HANG)
        except subprocess.TimeoutExpired:
            return self.hung("runnel stop --savepoint did not return")
        if st.returncode != 0 and self.proc.poll() is None:
            # Refused while the job runs: a failure of its own, not a finish.
            self.problem("run %d: runnel stop --savepoint exited %d: %s"
                         % (self.runs, st.returncode, st.stderr.strip()[-300:]))
            return self.kill9() or "stop refused"
        try:
            rc = self.proc.wait(timeout=HANG)
        except subprocess.TimeoutExpired:
            return self.hung("it did not exit after stop --savepoint")
        text = self.run_log()
        self.check_run_log(text)
        if st.returncode != 0 or rc != 0:
            if rc == 0 and "job stopped at checkpoint" not in text:
                # The job finished before the stop reached it.
                return "finished"
            self.crashes += 1
            self.problem("run %d: stop --savepoint: stop exit %d (%s), run exit %d"
                         % (self.runs, st.returncode, st.stderr.strip()[-200:], rc))
            return "crashed"
        printed = st.stdout.strip().splitlines()[-1:] or [""]
        if os.path.realpath(printed[0]) != os.path.realpath(sp):
            self.problem("run %d: stop --savepoint printed %r, not %s" % (self.runs, printed, sp))
        self.savepoint = sp
        self.savepoints += 1
        self.expect_resume = "savepoint"
        if action == "rescale":
            old = self.par
            self.par = self.rng.choice([p for p in (1, 2, 3) if p != old])
            self.rescales += 1
            log("  rescale p%d -> p%d" % (old, self.par))
        return None

    def run(self, clean_path):
        log("case %s seed %d" % (self.name, self.seed))
        actions = [a for a in ACTIONS if a in ONLY] if ONLY else ACTIONS
        plan = [self.rng.choice(actions) for _ in range(self.sc["steps"])]
        # Every case has a kill, a burst and a stop of each kind at least once
        # where the scale has room for it.
        for i, a in enumerate(["kill", "burst", "term", "savepoint", "rescale"]):
            if i < len(plan) and a not in plan and a in actions:
                plan[self.rng.randrange(len(plan))] = a
        log("  plan: %s" % " ".join(plan))
        t0 = time.time()
        why = None
        for action in plan:
            why = self.step(action)
            if why:
                break
        finished = False
        if why in (None, "finished", "stop refused"):
            self.start()
            try:
                rc = self.proc.wait(timeout=HANG * 4)
            except subprocess.TimeoutExpired:
                self.hung("the last run did not finish", HANG * 4)
                rc = self.proc.returncode
            self.check_run_log(self.run_log())
            if rc != 0:
                self.crashes += 1
                tail = [l for l in self.run_log().splitlines() if l.strip()][-3:]
                self.problem("last run exited %d: %s" % (rc, " | ".join(tail)))
            finished = rc == 0
        lost, dup, wrong, total, ex = compare(clean_path, os.path.join(self.d, "out.jsonl"))
        for e in ex:
            log("  wrong: %s" % e)
        left = [n for n in os.listdir(self.d) if "pending" in n]
        if finished and left:
            self.problem("pending files left next to the output: %s" % left[:3])
        resumed = sum(1 for l in open(self.logf, errors="replace")
                      if re.search(r"resuming from \w+ \d+ \(", l))
        log("  %d runs, %d kills, %d SIGTERM, %d savepoints (%d rescaled), %d resumed; "
            "%d windows: lost %d, duplicated %d, wrong %d, crashes %d (%.0fs)"
            % (self.runs, self.kills, self.terms, self.savepoints, self.rescales, resumed,
               total, lost, dup, wrong, self.crashes, time.time() - t0))
        if lost or dup or wrong:
            self.problem("lost %d, duplicated %d, wrong %d of %d windows" % (lost, dup, wrong, total))
        if self.kills == 0 and not self.problems and (not ONLY or "kill" in ONLY
                                                      or "burst" in ONLY):
            self.problem("no kill landed: the job ended before the schedule began")
        if self.backend == "rocksdb" and finished:
            self.check_spilled()
        return {"kills": self.kills, "terms": self.terms, "savepoints": self.savepoints,
                "rescales": self.rescales, "lost": lost, "dup": dup, "wrong": wrong,
                "crashes": self.crashes, "ok": not self.problems}

    def check_spilled(self):
        """The state outgrew its bound: the runs that ended in order (stops,
        the last run) say in their debug lines how many timers went to
        RocksDB and how many values the cache evicted; both must be > 0, or
        the case tested a cache rather than spilled state."""
        timers = evicted = 0
        for line in open(self.logf, errors="replace"):
            if "timers: " in line and " written to the store" in line:
                timers += int(line.split("timers: ")[1].split()[0])
            elif "state cache: " in line and " evicted" in line:
                evicted += int(line.split(" evicted")[0].rsplit(" ", 1)[1])
        log("  spilled: %d timers written to RocksDB, %d values evicted" % (timers, evicted))
        if timers == 0 or evicted == 0:
            self.problem("state did not spill (timers %d, evicted %d): raise keys or lower "
                         "state.memory" % (timers, evicted))


def clean_run(work, kind, sc):
    d = os.path.join(work, "clean-" + kind)
    os.makedirs(d)
    with open(os.path.join(d, "job.yaml"), "w") as f:
        f.write(job_yaml(d, kind, 1, "memory", sc, None, 0))
    r = subprocess.run([RUNNEL, "run", os.path.join(d, "job.yaml"), "--quiet"],
                       capture_output=True, text=True, timeout=HANG * 4)
    if r.returncode != 0:
        log("FAIL: the clean %s run exited %d: %s" % (kind, r.returncode, r.stderr[-500:]))
        sys.exit(1)
    out = os.path.join(d, "out.jsonl")
    n = sum(1 for _ in open(out))
    log("clean %s run: %d windows" % (kind, n))
    return out


def main():
    if not RUNNEL:
        sys.exit("RUNNEL is not set (the runnel program to test)")
    if SCALE not in SCALES:
        sys.exit("RN_TORTURE_SCALE=%s: one of %s" % (SCALE, ", ".join(SCALES)))
    sc = SCALES[SCALE]
    seed = int(os.environ.get("RN_TORTURE_SEED") or random.SystemRandom().randrange(1, 1 << 31))
    minutes = float(os.environ.get("RN_TORTURE_MINUTES", "10"))
    one = os.environ.get("RN_TORTURE_CASE")
    every = ["%s-p%d-%s" % (w, p, b) for w in WINDOWS for p in (1, 3)
             for b in ("memory", "rocksdb")]
    tmp = os.environ.get("RN_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(tmp, exist_ok=True)
    work = tempfile.mkdtemp(prefix="torture.", dir=tmp)
    log("torture: scale %s, seed %d, runnel %s, work %s" % (SCALE, seed, RUNNEL, work))
    rng = random.Random(seed)
    clean = {}
    results = []
    t0 = time.time()
    rounds = 0
    while True:
        if one:
            name, cseed = one.rsplit(":", 1)
            todo = [(name, int(cseed))]
        else:
            names = sc["cases"] or every
            todo = [(n, rng.randrange(1, 1 << 31)) for n in names]
        for name, cseed in todo:
            if name not in every:
                sys.exit("unknown case %s (cases: %s)" % (name, " ".join(every)))
            kind = name.split("-")[0]
            if kind not in clean:
                clean[kind] = clean_run(work, kind, sc)
            c = Case(name, cseed, sc, work)
            r = c.run(clean[kind])
            r["name"], r["seed"] = name, cseed
            results.append(r)
            if r["ok"] and not os.environ.get("RN_KEEP"):
                shutil.rmtree(c.d, ignore_errors=True)
        rounds += 1
        if one or SCALE != "long" or time.time() - t0 > minutes * 60:
            break
    failed = [r for r in results if not r["ok"]]
    tot = {k: sum(r[k] for r in results)
           for k in ("kills", "terms", "savepoints", "rescales", "lost", "dup", "wrong",
                     "crashes")}
    log("")
    log("| scale | rounds | cases | kills | SIGTERM | savepoints (rescaled) | lost | duplicated "
        "| wrong | crashes | failed | minutes |")
    log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    log("| %s | %d | %d | %d | %d | %d (%d) | %d | %d | %d | %d | %d | %.1f |"
        % (SCALE, rounds, len(results), tot["kills"], tot["terms"], tot["savepoints"],
           tot["rescales"], tot["lost"], tot["dup"], tot["wrong"], tot["crashes"], len(failed),
           (time.time() - t0) / 60))
    for r in failed:
        log("failed: %s (replay: RN_TORTURE_SCALE=%s RN_TORTURE_CASE=%s:%d)"
            % (r["name"], SCALE, r["name"], r["seed"]))
    if failed:
        log("work directory kept: %s" % work)
        sys.exit(1)
    if not os.environ.get("RN_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    log("torture: all %d cases exact" % len(results))


if __name__ == "__main__":
    main()
