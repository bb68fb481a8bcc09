#!/usr/bin/env python3
"""Client compatibility matrix: every client's own program against a fresh Weir playground.

    tests/compat/run.py [--weir target/debug/weir] [--only CLIENT,...] [--out DIR] [--known KNOWN.md] [--strict]

For each client in CLIENTS the runner starts `weir playground` on a fresh data directory
and a free port, runs that client's program (tests/compat/<client>/) with the bootstrap
address and a topic name, and reads the program's stdout as one JSON object per line:

    {"step": "produce", "ok": true}
    {"step": "produce", "ok": false, "error": "what went wrong"}
    {"step": "describe_configs", "skip": "kcat has no admin API"}

Other stdout lines and all stderr are kept as the client's log. A step the program never
reported (it crashed, hung past its time limit, or stopped early) is a failure with the
program's exit status and the tail of its log. The matrix is printed, and written to
OUT/compat.json and OUT/compat.md. Every failure must be listed, with its reason, in
tests/compat/KNOWN.md; the runner exits 1 on any failure that is not, and prints the
listed failures that now pass (with --strict those fail the run too). The closing line
is `compat: N passed, N failed, N skipped` (known failures and steps a client has no API
for are the skipped ones).

What each program needs installed (the Java classes for kafka-clients 3.9.1 and 4.4.0, the
sarama and franz-go binaries, kafkajs, the Python clients) is put in place by
tests/compat/install, which scripts/test runs first.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("WEIR_COMPAT_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "weir" / "compat")
VENV_PYTHON = os.environ.get("WEIR_TEST_PYTHON") or str(
    Path(os.environ.get("WEIR_TEST_PYTHON_VENV",
                        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "weir" / "kafka-clients"))
    / "bin" / "python")

# The scenario, in order. Every program reports each of these once.
STEPS = [
    ("create_topic", "create a 4-partition topic with the client's admin API"),
    ("produce", "10,000 keyed records with headers, acks=all, idempotent where the client supports it"),
    ("consume_commit", "a group consumer reads about half the records and commits"),
    ("resume", "a restarted consumer of the group starts at the committed offsets and reads the rest"),
    ("async_commits", "200 asynchronous commits of offsets 1..200 of one partition, sent without waiting, then a "
                      "synchronous commit of 201: the group's committed offset is 201 (a new group, its consumer "
                      "assigned, not subscribed, and told the coordinator first)"),
    ("list_offsets", "earliest, latest and by-timestamp offsets equal what was produced"),
    ("describe_configs", "the topic's configs can be described"),
    ("alter_configs", "the topic's configs are altered with the client's admin API (incremental where the "
                      "client has it) and described back; an invalid value is refused"),
    ("log_append_time", "a topic created with message.timestamp.type=LogAppendTime: a record produced with "
                        "timestamp 1000000 is consumed with the LogAppendTime type and the broker's append time "
                        "(within the seconds around the produce, and the time the producer's acknowledgement "
                        "gave where the client shows it), not 1000000"),
    ("small_fetch", "a consumer with a small total fetch limit reads every record of three partitions of large "
                    "records: 12 records of 300,000 bytes in each, read in order and whole with fetch.max.bytes "
                    "1,000,000 and max.partition.fetch.bytes 20,000,000 (or the client's equivalents)"),
    ("delete_records", "a topic of 2 partitions with 10 records in each: DeleteRecords with the client's admin API "
                       "before offset 4 of partition 0 and at the high watermark (-1) of partition 1 answers low "
                       "watermarks 4 and 10 (where the client shows them), ListOffsets earliest then gives 4 and 10, "
                       "a consumer at the beginning of partition 0 reads exactly offsets 4..9 with their values, "
                       "and deleting before offset 11 of partition 0 (past the high watermark) is refused with "
                       "OFFSET_OUT_OF_RANGE and moves nothing"),
    ("group_split", "two consumers of one group (default assignor) split the partitions"),
    ("group_split_cooperative", "the same with the cooperative-sticky assignor"),
    ("delete_topic", "the topic is deleted and no longer listed"),
]
STEP_NAMES = [s for s, _ in STEPS]

# Playground flags for every client. The scenario's records carry timestamps of November
# 2023 (BASE_TS), far older than retention.ms's default of 7 days, so Weir's retention
# pass (every 30 s by default; Kafka checks every 5 minutes) would empty the scenario's
# topic in the middle of a run, as Kafka's would on a longer one. With a pass every
# 10 minutes, longer than any client's time limit, none runs during the scenario.
COMMON_PLAYGROUND_ARGS = ["--retention-interval-ms", "600000"]
# Playground flags a client needs: kcat cannot create topics, so its playground
# auto-creates them with the scenario's partition count.
PLAYGROUND_ARGS = {"kcat": ["--default-partitions", "4"]}


# client name -> (how to run its program, time limit in seconds)
def client_commands():
    def java_cp(name):
        jars = sorted((CACHE / name / "jars").glob("*.jar"))
        return os.pathsep.join([str(CACHE / name / "classes")] + [str(p) for p in jars])

    return {
        "java": (["java", "-cp", java_cp("java"), "WeirCompat"], 180),
        "java-4.4": (["java", "-cp", java_cp("java44"), "WeirCompat"], 180),
        "kcat": (["bash", str(HERE / "kcat" / "compat.sh")], 180),
        "confluent-kafka": ([VENV_PYTHON, str(HERE / "python" / "confluent_compat.py")], 180),
        "kafka-python": ([VENV_PYTHON, str(HERE / "python" / "kafka_python_compat.py")], 180),
        "aiokafka": ([VENV_PYTHON, str(HERE / "python" / "aiokafka_compat.py")], 180),
        "kafkajs": (["node", str(HERE / "kafkajs" / "compat.js")], 180),
        "sarama": ([str(CACHE / "sarama" / "sarama-compat")], 180),
        "franz-go": ([str(CACHE / "franz-go" / "franz-go-compat")], 180),
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Playground:
    def __init__(self, weir, log_path, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="weir-compat-")
        self.port = free_port()
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [weir, "playground", "--data-dir", self.dir, "--listen", f"127.0.0.1:{self.port}", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weir playground exited with {self.proc.returncode}; see {log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weir playground did not listen within 60 s; see {log_path}")
                time.sleep(0.1)

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_client(name, command, limit, weir, out_dir):
    """Runs one client's program against a fresh playground; returns {step: result}."""
    log_path = out_dir / f"{name}.log"
    results = {}
    try:
        playground = Playground(weir, out_dir / f"{name}.weir.log",
                                COMMON_PLAYGROUND_ARGS + PLAYGROUND_ARGS.get(name, []))
    except RuntimeError as e:
        return {s: {"status": "fail", "error": f"playground: {e}"} for s in STEP_NAMES}, 0.0
    topic = f"compat-{name}-{int(time.time())}"
    started = time.monotonic()
    timed_out = False
    try:
        with open(log_path, "wb") as log:
            env = dict(os.environ, NODE_PATH=str(CACHE / "kafkajs" / "node_modules"))
            proc = subprocess.Popen(command + [playground.bootstrap, topic], stdout=subprocess.PIPE,
                                    stderr=log, start_new_session=True, cwd=str(HERE), env=env)
            try:
                out, _ = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
            log.write(b"\n--- stdout ---\n" + out)
    finally:
        playground.stop()
    elapsed = time.monotonic() - started
    for line in out.decode(errors="replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = msg.get("step")
        if step not in STEP_NAMES or step in results:
            continue
        if msg.get("skip"):
            results[step] = {"status": "n/a", "error": msg["skip"]}
        elif msg.get("ok") is True:
            results[step] = {"status": "pass"}
        else:
            results[step] = {"status": "fail", "error": str(msg.get("error") or "failed, no reason given")}
    if len(results) < len(STEP_NAMES):
        if timed_out:
            why = f"not reported: the program was killed after {limit} s"
        else:
            tail = log_path.read_text(errors="replace").split("\n--- stdout ---\n")[0].strip().splitlines()[-3:]
            why = f"not reported: the program exited with {proc.returncode}: " + " | ".join(tail)
        for s in STEP_NAMES:
            results.setdefault(s, {"status": "fail", "error": why})
    return results, elapsed


def read_known(path):
    """KNOWN.md: rows `| client | step | reason |` of its table."""
    known = {}
    if not path.exists():
        return known
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not line.lstrip().startswith("|"):
            continue
        client, step, reason = cells[0].strip("`"), cells[1].strip("`"), "|".join(cells[2:]).strip()
        if step in STEP_NAMES and reason:
            known[(client, step)] = reason
    return known


def one_line(text, width):
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weir", default=os.environ.get("WEIR_BIN", str(ROOT / "target" / "debug" / "weir")))
    ap.add_argument("--only", help="comma-separated client names")
    ap.add_argument("--out", default=None, help="directory for compat.json, compat.md and logs")
    ap.add_argument("--known", default=str(HERE / "KNOWN.md"), help="the list of known failures")
    ap.add_argument("--strict", action="store_true", help="also fail on KNOWN.md entries that now pass")
    args = ap.parse_args()

    commands = client_commands()
    clients = args.only.split(",") if args.only else list(commands)
    for c in clients:
        if c not in commands:
            sys.exit(f"unknown client {c}; known: {', '.join(commands)}")
    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="weir-compat-out-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    known = read_known(Path(args.known))

    matrix, times = {}, {}
    for client in clients:
        command, limit = commands[client]
        print(f"-- {client}: running", flush=True)
        matrix[client], times[client] = run_client(client, command, limit, args.weir, out_dir)
        for step in STEP_NAMES:
            r = matrix[client][step]
            if r["status"] == "fail":
                r["known"] = known.get((client, step))
        fails = sum(r["status"] == "fail" for r in matrix[client].values())
        print(f"-- {client}: {times[client]:.1f} s, {fails} failing step(s); log {out_dir / (client + '.log')}",
              flush=True)

    # The matrix, client x step.
    width = max(len(c) for c in clients + ["client"]) + 2
    cell = {"pass": "pass", "n/a": "n/a", "fail": "FAIL"}
    header = "client".ljust(width) + " ".join(s[:10].ljust(10) for s in STEP_NAMES)
    lines = [header, "-" * len(header)]
    for client in clients:
        row = client.ljust(width)
        for step in STEP_NAMES:
            r = matrix[client][step]
            mark = cell[r["status"]]
            if r["status"] == "fail" and r.get("known"):
                mark = "known"
            row += mark.ljust(11)
        lines.append(row)
    print()
    print("\n".join(lines))
    print("\nsteps: " + "; ".join(f"{s} = {d}" for s, d in STEPS))

    unexpected, known_failed, passed, skipped, stale = [], [], 0, 0, []
    print()
    for client in clients:
        for step in STEP_NAMES:
            r = matrix[client][step]
            if r["status"] == "pass":
                passed += 1
                if (client, step) in known:
                    stale.append((client, step))
            elif r["status"] == "n/a":
                skipped += 1
                print(f"n/a   {client} {step}: {one_line(r['error'], 200)}")
            elif r.get("known"):
                skipped += 1
                known_failed.append((client, step))
                print(f"known {client} {step}: {one_line(r['error'], 300)}")
            else:
                unexpected.append((client, step))
                print(f"FAIL  {client} {step}: {one_line(r['error'], 600)}")
    for client, step in stale:
        print(f"STALE {client} {step}: passes now; remove it from tests/compat/KNOWN.md")

    (out_dir / "compat.json").write_text(json.dumps(
        {"steps": dict(STEPS), "seconds": {c: round(t, 1) for c, t in times.items()}, "matrix": matrix}, indent=2))
    md = ["| client | " + " | ".join(STEP_NAMES) + " |", "|---" * (len(STEP_NAMES) + 1) + "|"]
    for client in clients:
        marks = []
        for step in STEP_NAMES:
            r = matrix[client][step]
            mark = {"pass": "pass", "n/a": "n/a", "fail": "FAIL"}[r["status"]]
            marks.append("known" if r.get("known") else mark)
        md.append(f"| {client} | " + " | ".join(marks) + " |")
    md.append("")
    for client in clients:
        for step in STEP_NAMES:
            r = matrix[client][step]
            if r["status"] != "pass":
                status = "known failure" if r.get("known") else r["status"]
                md.append(f"- {client} / {step} ({status}): {one_line(r['error'], 400)}")
    (out_dir / "compat.md").write_text("\n".join(md) + "\n")
    print(f"\nmatrix written to {out_dir / 'compat.json'} and {out_dir / 'compat.md'}")

    failed = len(unexpected) + (len(stale) if args.strict else 0)
    print(f"compat: {passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
