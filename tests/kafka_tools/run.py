#!/usr/bin/env python3
"""Weir driven by Apache Kafka 4.4's own command-line tools and a Kafka Connect 4.4 worker.

    python3 tests/kafka_tools/run.py --weir PATH [--out DIR] [--only STEP_OR_SECTION,...]
    python3 tests/kafka_tools/run.py --bootstrap HOST:PORT ...   (an already running broker,
                                                                    e.g. a real Kafka, instead)

Starts `weir playground` on a fresh data directory and a free port, then runs each tool
as a user would (`java -cp JARS MainClass ...`, with the JVM options of Kafka's shell
wrappers), checking its exit status and its output. One JSON line a check:

    {"step": "topics_create", "ok": true}
    {"step": "groups_list", "ok": false, "error": "what went wrong"}
    {"step": "groups_describe", "skip": "needs console_consume, which failed"}

and the closing line `kafka-tools: N passed, N failed` (`, N skipped` added when a step
could not run); exit status 1 on any failure. Every tool's command line, exit status,
stdout and stderr, Weir's log and Connect's log are written under --out (default
target/kafka_tools). The jars come from tests/kafka_tools/install.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The Weir playground and the process handling are the differential tests' own.
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(ROOT / "tests" / "differential"))
from kafka_broker import (  # noqa: E402
    WeirPlayground, die_with_parent, free_port, java_command, kill_group, track)
CACHE = Path(os.environ.get("WEIR_KAFKA_TOOLS_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "weir" / "kafka-tools")

# Each tool's main class: the first of its candidates found in the jars (they moved from
# the Scala core to the tools module over Kafka 3.x; 4.4 has them all in kafka-tools).
MAIN_CLASSES = {
    "kafka-topics": ["org.apache.kafka.tools.TopicCommand", "kafka.admin.TopicCommand"],
    "kafka-configs": ["org.apache.kafka.tools.ConfigCommand", "kafka.admin.ConfigCommand"],
    "kafka-console-producer": ["org.apache.kafka.tools.ConsoleProducer", "kafka.tools.ConsoleProducer"],
    "kafka-console-consumer": ["org.apache.kafka.tools.consumer.ConsoleConsumer", "kafka.tools.ConsoleConsumer"],
    "kafka-consumer-groups": ["org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                              "kafka.admin.ConsumerGroupCommand"],
    "kafka-producer-perf-test": ["org.apache.kafka.tools.ProducerPerformance"],
    "kafka-get-offsets": ["org.apache.kafka.tools.GetOffsetShell", "kafka.tools.GetOffsetShell"],
    "connect-distributed": ["org.apache.kafka.connect.cli.ConnectDistributed"],
}

# The JVM options of kafka-run-class.sh (KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS); the
# tools log WARN and above to stderr, as tools-log4j2.yaml has them, here through slf4j-simple.
JVM_PERFORMANCE = ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
                   "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]
TOOL_JVM = ["-Xmx256M", *JVM_PERFORMANCE, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
# Most tools run for a second or two: the client compiler alone starts them faster (about
# 1.2 s instead of 2-3 s here). Not for the perf test, which runs long enough to use C2.
QUICK_TOOL_JVM = [*TOOL_JVM, "-XX:TieredStopAtLevel=1"]
CONNECT_JVM = ["-Xms256M", "-Xmx1G", *JVM_PERFORMANCE, "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
               "-Dorg.slf4j.simpleLogger.showDateTime=true",
               "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"]

# Steps in the order they run: (name, section, what it checks, steps it needs).
STEPS = [
    ("topics_create", "topics", "kafka-topics --create: 3 partitions, --config retention.ms=3600000", []),
    ("topics_list", "topics", "kafka-topics --list shows the topic", ["topics_create"]),
    ("topics_describe", "topics", "kafka-topics --describe: PartitionCount 3, a row a partition, "
                                  "retention.ms=3600000 among its configs", ["topics_create"]),
    ("topics_alter_partitions", "topics", "kafka-topics --alter --partitions 5, then --describe shows 5",
     ["topics_create"]),
    ("topics_delete", "topics", "kafka-topics --delete, then --list no longer shows it", ["topics_create"]),
    ("configs_alter", "configs", "kafka-configs --alter --add-config "
                                 "retention.ms=7200000,cleanup.policy=[delete,compact]", []),
    ("configs_describe", "configs", "kafka-configs --describe shows both", ["configs_alter"]),
    ("configs_delete_config", "configs", "kafka-configs --alter --delete-config retention.ms, then "
                                         "--describe no longer shows it (cleanup.policy stays)", ["configs_alter"]),
    ("configs_invalid", "configs", "kafka-configs --add-config retention.ms=soon fails, naming the config; "
                                   "the topic's configs are unchanged", []),
    ("console_produce", "console", "kafka-console-producer: keyed lines on stdin (parse.key, key.separator)",
     []),
    ("console_consume", "console", "kafka-console-consumer --from-beginning --max-messages N "
                                   "print.key=true --group: every line back with its key, offsets "
                                   "0..n-1 in order in each partition", ["console_produce"]),
    ("groups_list", "groups", "kafka-consumer-groups --list shows the group", ["console_consume"]),
    ("groups_describe", "groups", "kafka-consumer-groups --describe: per partition CURRENT-OFFSET = "
                                  "LOG-END-OFFSET = records consumed from it, LAG 0", ["console_consume"]),
    ("groups_reset_offsets", "groups", "kafka-consumer-groups --reset-offsets --to-earliest --execute "
                                       "(group inactive), then --describe shows offset 0 and LAG = "
                                       "LOG-END-OFFSET", ["console_consume"]),
    ("groups_delete_offsets", "groups", "kafka-consumer-groups --delete-offsets --topic, then --describe "
                                        "shows no committed offset for it", ["console_consume"]),
    ("groups_delete", "groups", "kafka-consumer-groups --delete --group, then --describe says it does "
                                "not exist", ["console_consume"]),
    ("perf_test", "perf", "kafka-producer-perf-test --num-records 20000 --record-size 100 --throughput -1 "
                          "acks=all: exits 0, reports 20000 records sent (no timing asserted)", []),
    ("perf_end_offsets", "perf", "kafka-get-offsets --time -1: the topic's end offsets add up to 20000",
     ["perf_test"]),
    ("connect_start", "connect", "ConnectDistributed starts on Weir (its config, offset and status topics "
                                 "compacted, replication factor 1) and its REST API answers", []),
    ("connect_pipeline", "connect", "a FileStreamSource connector reads a file of N lines into a topic, a "
                                    "FileStreamSink connector writes the topic to another file: all N lines, "
                                    "in order", ["connect_start"]),
    ("connect_status", "connect", "GET /connectors/NAME/status: both connectors and their tasks RUNNING",
     ["connect_pipeline"]),
    ("connect_delete", "connect", "DELETE /connectors/NAME for both, then GET /connectors is empty",
     ["connect_start"]),
    ("connect_stop", "connect", "the worker stops on SIGTERM ('Kafka Connect stopped')", ["connect_start"]),
]
STEP_NAMES = [s[0] for s in STEPS]
SECTIONS = list(dict.fromkeys(s[1] for s in STEPS))
NEEDS = {s[0]: s[3] for s in STEPS}
# A section's steps also need the state another section leaves: the group the console consumer made.
SECTION_NEEDS = {"groups": ["console_produce", "console_consume"]}

CONSOLE_RECORDS = 30
CONNECT_LINES = 200
PERF_RECORDS = 20000
TOOL_TIMEOUT = 90


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def find_main_classes(jars_dir):
    """{tool: main class} for every tool whose class is in the jars; raises if one is missing."""
    jars = sorted(Path(jars_dir).glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no jars in {jars_dir}")
    names = set()
    for jar in jars:
        try:
            with zipfile.ZipFile(jar) as z:
                names.update(n for n in z.namelist() if n.endswith(".class") and "$" not in n)
        except zipfile.BadZipFile:
            continue
    found, missing = {}, []
    for tool, candidates in MAIN_CLASSES.items():
        for c in candidates:
            if c.replace(".", "/") + ".class" in names:
                found[tool] = c
                break
        else:
            missing.append(f"{tool} ({' or '.join(candidates)})")
    if missing:
        raise RuntimeError(f"no main class in {jars_dir} for: {', '.join(missing)}")
    return found


def tail(text, lines=6, width=1500):
    text = "\n".join(text.strip().splitlines()[-lines:])
    return text if len(text) <= width else "…" + text[-width:]


def one_line(text, width=600):
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= width else text[: width - 1] + "…"


class ToolResult:
    def __init__(self, rc, out, err, log):
        self.rc, self.out, self.err, self.log = rc, out, err, log

    def summary(self):
        return (f"exit {self.rc}; stdout: {tail(self.out, 8) or '(none)'}; stderr: {tail(self.err, 4) or '(none)'}; "
                f"log {self.log}")


class Tools:
    """Runs Kafka's tools as `java [wrapper's options] -cp JARS/* MainClass args...`."""

    def __init__(self, jars_dir, classes, bootstrap, log_dir):
        self.cp = str(Path(jars_dir) / "*")
        self.classes = classes
        self.bootstrap = bootstrap
        self.log_dir = log_dir
        self.count = 0

    def command(self, tool, args, jvm=QUICK_TOOL_JVM):
        return [java_command(), *jvm, "-cp", self.cp, self.classes[tool], *args]

    def run(self, tool, *args, stdin=None, timeout=TOOL_TIMEOUT, label=None, jvm=QUICK_TOOL_JVM):
        self.count += 1
        log = self.log_dir / f"{self.count:02d}-{label or tool}.log"
        cmd = self.command(tool, [str(a) for a in args], jvm=jvm)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=die_with_parent)
        track(proc)
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc, 0)
            out, err = proc.communicate()
        kill_group(proc, 0)  # it has exited: this only forgets it
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        elapsed = time.monotonic() - started
        status = f"killed after {timeout} s" if timed_out else f"exit {proc.returncode}"
        with open(log, "w") as f:
            f.write("$ " + " ".join(_quote(c) for c in cmd) + "\n")
            if stdin is not None:
                f.write(f"== stdin ({len(stdin.splitlines())} lines) ==\n{stdin}")
            f.write(f"== {status}, {elapsed:.1f} s ==\n== stdout ==\n{out}\n== stderr ==\n{err}\n")
        result = ToolResult(None if timed_out else proc.returncode, out, err, log)
        if timed_out:
            raise Failure(f"{tool} did not finish within {timeout} s; {result.summary()}")
        return result

    def ok(self, tool, *args, **kw):
        """run(), and a Failure unless it exited 0."""
        r = self.run(tool, *args, **kw)
        if r.rc != 0:
            raise Failure(f"{tool} {' '.join(map(str, args[:6]))}… failed: {r.summary()}")
        return r

    def topics(self, *args, **kw):
        return self.ok("kafka-topics", "--bootstrap-server", self.bootstrap, *args, **kw)

    def configs(self, topic, *args, **kw):
        return self.run("kafka-configs", "--bootstrap-server", self.bootstrap, "--entity-type", "topics",
                        "--entity-name", topic, *args, **kw)

    def groups(self, *args, **kw):
        return self.run("kafka-consumer-groups", "--bootstrap-server", self.bootstrap, *args, **kw)


def _quote(s):
    return s if re.fullmatch(r"[\w./:=,*+@%-]+", s) else "'" + s.replace("'", "'\\''") + "'"


class Reporter:
    def __init__(self, selected):
        self.selected = selected
        self.results = {}
        # Set once the server under test runs: returns why it cannot be tested any more, or None.
        self.server_gone = lambda: None

    def emit(self, step, result):
        self.results[step] = result
        line = {"step": step, **result}
        print(json.dumps(line), flush=True)

    def run(self, step, fn):
        """Runs fn() for step if selected and its needs passed; reports ok, error or skip."""
        if step not in self.selected:
            return False
        for need in NEEDS[step]:
            r = self.results.get(need)
            if r is not None and r.get("ok") is not True:
                self.emit(step, {"skip": f"needs {need}, which {'failed' if 'error' in r else 'did not run'}"})
                return False
        gone = self.server_gone()
        if gone:
            self.emit(step, {"ok": False, "error": gone})
            return False
        started = time.monotonic()
        try:
            detail = fn()
        except Skip as e:
            self.emit(step, {"skip": str(e)})
            return False
        except Failure as e:
            self.emit(step, {"ok": False, "error": str(e), "seconds": round(time.monotonic() - started, 1)})
            return False
        except Exception as e:  # the harness's own bug, or a tool's output it cannot read
            self.emit(step, {"ok": False, "error": f"{type(e).__name__}: {e}",
                             "seconds": round(time.monotonic() - started, 1)})
            return False
        result = {"ok": True, "seconds": round(time.monotonic() - started, 1)}
        if detail:
            result["detail"] = detail
        self.emit(step, result)
        return True

    def fail_all(self, steps, error):
        for s in steps:
            if s not in self.results:
                self.emit(s, {"ok": False, "error": error})


def check(cond, message):
    if not cond:
        raise Failure(message)


# ---------------------------------------------------------------------------------------
# kafka-topics

def parse_describe_topic(out, topic):
    """(partition count, {config: value}, [partition numbers]) from kafka-topics --describe."""
    count, configs, partitions = None, None, []
    for line in out.splitlines():
        m = re.match(rf"^Topic:\s*{re.escape(topic)}\s.*PartitionCount:\s*(\d+)", line)
        if m:
            count = int(m.group(1))
            cm = re.search(r"Configs:\s*(.*)$", line)
            configs = {}
            if cm and cm.group(1).strip():
                # "a=1,cleanup.policy=delete,compact": a comma inside a value has no '=' after it.
                for part in re.split(r",(?=[\w.]+=)", cm.group(1).strip()):
                    k, _, v = part.partition("=")
                    configs[k.strip()] = v.strip()
            continue
        pm = re.match(rf"^\s+Topic:\s*{re.escape(topic)}\s+Partition:\s*(\d+)", line)
        if pm:
            partitions.append(int(pm.group(1)))
    return count, configs, partitions


def section_topics(rep, tools, names):
    topic = names["topics"]

    def create():
        r = tools.topics("--create", "--topic", topic, "--partitions", 3, "--replication-factor", 1,
                         "--config", "retention.ms=3600000")
        check(f"Created topic {topic}." in r.out, f"no 'Created topic {topic}.' in its output: {r.summary()}")

    def listed():
        r = tools.topics("--list")
        check(topic in r.out.split(), f"--list does not show {topic}: {r.summary()}")

    def describe(expect_partitions):
        r = tools.topics("--describe", "--topic", topic)
        count, configs, partitions = parse_describe_topic(r.out, topic)
        check(count is not None, f"no 'Topic: {topic} ... PartitionCount:' line: {r.summary()}")
        check(count == expect_partitions, f"PartitionCount {count}, expected {expect_partitions}: {r.summary()}")
        check(sorted(partitions) == list(range(expect_partitions)),
              f"partition rows {sorted(partitions)}, expected 0..{expect_partitions - 1}: {r.summary()}")
        return configs, r

    def described():
        configs, r = describe(3)
        check(configs.get("retention.ms") == "3600000",
              f"Configs: {configs} has no retention.ms=3600000: {r.summary()}")

    def alter():
        tools.topics("--alter", "--topic", topic, "--partitions", 5)
        describe(5)

    def delete():
        tools.topics("--delete", "--topic", topic)
        # Deletion may finish after the call returns (Kafka's does): poll with a deadline.
        deadline = time.monotonic() + 30
        while True:
            r = tools.topics("--list")
            if topic not in r.out.split():
                return
            check(time.monotonic() < deadline, f"--list still shows {topic} 30 s after --delete: {r.summary()}")
            time.sleep(0.5)

    rep.run("topics_create", create)
    rep.run("topics_list", listed)
    rep.run("topics_describe", described)
    rep.run("topics_alter_partitions", alter)
    rep.run("topics_delete", delete)


# ---------------------------------------------------------------------------------------
# kafka-configs

def parse_describe_configs(out):
    """{config: value} from kafka-configs --describe lines `  key=value sensitive=... synonyms={...}`."""
    configs = {}
    for line in out.splitlines():
        m = re.match(r"^\s+([\w.]+)=(.*?) sensitive=(true|false)", line)
        if m:
            configs[m.group(1)] = m.group(2)
    return configs


def section_configs(rep, tools, names):
    topic = names["configs"]
    selected = [s for s in STEP_NAMES if s.startswith("configs_") and s in rep.selected]
    if not selected:
        return
    try:
        tools.topics("--create", "--topic", topic, "--partitions", 1, "--replication-factor", 1,
                     label="kafka-topics-configs-setup")
    except Failure as e:
        rep.fail_all(selected, f"setup: creating the topic failed: {e}")
        return

    def describe():
        r = tools.configs(topic, "--describe")
        check(r.rc == 0, f"--describe failed: {r.summary()}")
        return parse_describe_configs(r.out), r

    def alter():
        r = tools.configs(topic, "--alter", "--add-config", "retention.ms=7200000,cleanup.policy=[delete,compact]")
        check(r.rc == 0, f"--alter --add-config failed: {r.summary()}")
        check(f"Completed updating config for topic {topic}." in r.out,
              f"no 'Completed updating config for topic {topic}.': {r.summary()}")

    def described():
        configs, r = describe()
        check(configs.get("retention.ms") == "7200000", f"retention.ms is {configs.get('retention.ms')!r}, "
                                                          f"expected '7200000': {r.summary()}")
        check(configs.get("cleanup.policy") == "delete,compact",
              f"cleanup.policy is {configs.get('cleanup.policy')!r}, expected 'delete,compact': {r.summary()}")

    def delete_config():
        r = tools.configs(topic, "--alter", "--delete-config", "retention.ms")
        check(r.rc == 0, f"--alter --delete-config failed: {r.summary()}")
        configs, r = describe()
        check("retention.ms" not in configs,
              f"retention.ms={configs.get('retention.ms')} still set after --delete-config: {r.summary()}")
        check(configs.get("cleanup.policy") == "delete,compact",
              f"cleanup.policy is {configs.get('cleanup.policy')!r} after deleting retention.ms, expected "
              f"'delete,compact': {r.summary()}")

    def invalid():
        before, _ = describe()
        r = tools.configs(topic, "--alter", "--add-config", "retention.ms=soon")
        check(r.rc != 0, f"--add-config retention.ms=soon exited 0: {r.summary()}")
        text = r.out + r.err
        m = re.search(r"(InvalidConfigurationException|InvalidRequestException|Error)[^\n]*", text)
        check("retention.ms" in text and "soon" in text,
              f"the error does not name retention.ms and the value 'soon': {r.summary()}")
        after, r2 = describe()
        check(after == before, f"configs changed by the refused alter: {before} -> {after}: {r2.summary()}")
        cause = re.findall(r"Caused by: ([^\n]*)", text)
        return one_line(cause[-1] if cause else (m.group(0) if m else ""), 300)

    rep.run("configs_alter", alter)
    rep.run("configs_describe", described)
    rep.run("configs_delete_config", delete_config)
    rep.run("configs_invalid", invalid)


# ---------------------------------------------------------------------------------------
# kafka-console-producer, kafka-console-consumer, kafka-consumer-groups

def parse_table(out, first_column):
    """Rows (dicts by header) of the table whose header line starts with first_column."""
    rows, header = [], None
    for line in out.splitlines():
        cells = line.split()
        if not cells:
            continue
        if cells[0] == first_column and len(cells) > 1 and cells[1].isupper():
            header = cells
            continue
        if header and len(cells) >= 3:
            rows.append(dict(zip(header, cells)))
    return rows


def section_console_and_groups(rep, tools, names, state):
    topic, group = names["console"], names["group"]
    lines = [f"key-{i:02d}:value {i} of {CONSOLE_RECORDS}" for i in range(1, CONSOLE_RECORDS + 1)]
    wanted = [s for s in STEP_NAMES if s.startswith(("console_", "groups_")) and s in rep.selected]
    if not wanted:
        return
    try:
        tools.topics("--create", "--topic", topic, "--partitions", 3, "--replication-factor", 1,
                     label="kafka-topics-console-setup")
    except Failure as e:
        rep.fail_all(wanted, f"setup: creating the topic failed: {e}")
        return

    def produce():
        r = tools.ok("kafka-console-producer", "--bootstrap-server", tools.bootstrap, "--topic", topic,
                     "--property", "parse.key=true", "--property", "key.separator=:",
                     stdin="\n".join(lines) + "\n")
        check(not re.search(r"\bERROR\b|Exception", r.err), f"errors on stderr: {r.summary()}")

    def consume():
        r = tools.ok("kafka-console-consumer", "--bootstrap-server", tools.bootstrap, "--topic", topic,
                     "--group", group, "--from-beginning", "--max-messages", CONSOLE_RECORDS, "--timeout-ms", 60000,
                     "--property", "print.key=true", "--property", "print.partition=true",
                     "--property", "print.offset=true")
        got, per_partition = [], {}
        for line in r.out.splitlines():
            m = re.match(r"^Partition:(\d+)\tOffset:(\d+)\t([^\t]*)\t(.*)$", line)
            if not m:
                continue
            p, o, k, v = int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)
            got.append(f"{k}:{v}")
            per_partition.setdefault(p, []).append(o)
        check(len(got) == CONSOLE_RECORDS, f"read {len(got)} records, expected {CONSOLE_RECORDS}: {r.summary()}")
        check(sorted(got) == sorted(lines), f"records read back differ from those produced: missing "
                                            f"{sorted(set(lines) - set(got))[:5]}, unexpected "
                                            f"{sorted(set(got) - set(lines))[:5]}; {r.summary()}")
        for p, offsets in per_partition.items():
            check(offsets == list(range(len(offsets))),
                  f"partition {p}: offsets {offsets}, expected 0..{len(offsets) - 1} in order; {r.summary()}")
        check(f"Processed a total of {CONSOLE_RECORDS} messages" in r.err,
              f"no 'Processed a total of {CONSOLE_RECORDS} messages': {r.summary()}")
        state["consumed"] = {p: len(o) for p, o in per_partition.items()}
        return "per partition: " + ", ".join(f"{p}: {n}" for p, n in sorted(state["consumed"].items()))

    def describe_rows():
        r = tools.groups("--describe", "--group", group)
        check(r.rc == 0, f"--describe --group failed: {r.summary()}")
        rows = [row for row in parse_table(r.out, "GROUP") if row.get("TOPIC") == topic]
        return rows, r

    def listed():
        r = tools.groups("--list")
        check(r.rc == 0, f"--list failed: {r.summary()}")
        if group not in r.out.split():
            # The same listing with --state (no group-type filter in the request) tells a missing
            # group from a filter that drops it.
            s = tools.groups("--list", "--state", label="kafka-consumer-groups-list-state")
            shown = "shows it" if group in s.out.split() else "does not show it either"
            raise Failure(f"--list does not show group {group} (stdout: {r.out.strip()!r}); "
                          f"--list --state {shown} (stdout: {one_line(s.out, 300)!r}); logs {r.log}, {s.log}")

    def described():
        rows, r = describe_rows()
        consumed = state["consumed"]
        parts = sorted(int(row["PARTITION"]) for row in rows)
        check(parts == [0, 1, 2], f"rows for partitions {parts}, expected [0, 1, 2]: {r.summary()}")
        for row in rows:
            p, n = int(row["PARTITION"]), consumed.get(int(row["PARTITION"]), 0)
            cur, end, lag = row.get("CURRENT-OFFSET"), row.get("LOG-END-OFFSET"), row.get("LAG")
            check(end == str(n), f"partition {p}: LOG-END-OFFSET {end}, but {n} records were consumed from it: "
                                 f"{r.summary()}")
            check(cur == str(n) or (n == 0 and cur == "-"),
                  f"partition {p}: CURRENT-OFFSET {cur}, expected {n}: {r.summary()}")
            check(lag in ("0", "-") if n == 0 else lag == "0", f"partition {p}: LAG {lag}, expected 0: {r.summary()}")
        return " ".join(f"p{row['PARTITION']}={row['CURRENT-OFFSET']}/{row['LOG-END-OFFSET']}" for row in
                        sorted(rows, key=lambda x: int(x["PARTITION"])))

    def reset():
        r = tools.groups("--reset-offsets", "--to-earliest", "--execute", "--group", group, "--topic", topic)
        check(r.rc == 0, f"--reset-offsets failed: {r.summary()}")
        check("Error" not in r.out + r.err, f"--reset-offsets reported an error: {r.summary()}")
        new = {int(row["PARTITION"]): row.get("NEW-OFFSET") for row in parse_table(r.out, "GROUP")
               if row.get("TOPIC") == topic}
        check(new == {0: "0", 1: "0", 2: "0"}, f"NEW-OFFSET per partition {new}, expected 0 for 0..2: {r.summary()}")
        rows, r = describe_rows()
        consumed = state["consumed"]
        for row in rows:
            p = int(row["PARTITION"])
            check(row.get("CURRENT-OFFSET") == "0", f"partition {p}: CURRENT-OFFSET {row.get('CURRENT-OFFSET')} after "
                                                    f"the reset, expected 0: {r.summary()}")
            check(row.get("LAG") == row.get("LOG-END-OFFSET") == str(consumed.get(p, 0)),
                  f"partition {p}: LAG {row.get('LAG')} / LOG-END-OFFSET {row.get('LOG-END-OFFSET')}, expected both "
                  f"{consumed.get(p, 0)}: {r.summary()}")
        check(sorted(int(row["PARTITION"]) for row in rows) == [0, 1, 2],
              f"--describe after the reset shows partitions {[row['PARTITION'] for row in rows]}: {r.summary()}")

    def delete_offsets():
        r = tools.groups("--delete-offsets", "--group", group, "--topic", topic)
        check(r.rc == 0, f"--delete-offsets failed: {r.summary()}")
        status = {int(row["PARTITION"]): row.get("STATUS") for row in parse_table(r.out, "TOPIC")
                  if row.get("TOPIC") == topic}
        check(status == {0: "Successful", 1: "Successful", 2: "Successful"},
              f"STATUS per partition {status}, expected Successful for 0..2: {r.summary()}")
        rows, r = describe_rows()
        committed = [row for row in rows if row.get("CURRENT-OFFSET", "-") != "-"]
        check(not committed, f"--describe still shows committed offsets after --delete-offsets: {committed}; "
                             f"{r.summary()}")

    def delete():
        r = tools.groups("--delete", "--group", group)
        check(r.rc == 0, f"--delete failed: {r.summary()}")
        check(f"Deletion of requested consumer groups ('{group}') was successful." in r.out,
              f"no 'Deletion of requested consumer groups ('{group}') was successful.': {r.summary()}")
        d = tools.groups("--describe", "--group", group)
        text = d.out + d.err
        # Kafka 4.4 answers ConsumerGroupDescribe with GROUP_ID_NOT_FOUND ("GroupIdNotFoundException:
        # Group G not found."); a broker without that API answers DescribeGroups with state Dead
        # ("Consumer group 'G' does not exist."). Either says the group is gone.
        check(f"Consumer group '{group}' does not exist" in text or f"Group {group} not found" in text,
              f"--describe after --delete does not say the group is gone: {d.summary()}")

    rep.run("console_produce", produce)
    rep.run("console_consume", consume)
    rep.run("groups_list", listed)
    rep.run("groups_describe", described)
    rep.run("groups_reset_offsets", reset)
    rep.run("groups_delete_offsets", delete_offsets)
    rep.run("groups_delete", delete)


# ---------------------------------------------------------------------------------------
# kafka-producer-perf-test, kafka-get-offsets

def section_perf(rep, tools, names):
    topic = names["perf"]

    def perf():
        r = tools.ok("kafka-producer-perf-test", "--topic", topic, "--num-records", PERF_RECORDS, "--record-size", 100,
                     "--throughput", -1, "--producer-props", f"bootstrap.servers={tools.bootstrap}", "acks=all",
                     timeout=240, jvm=TOOL_JVM)
        final = [line for line in r.out.splitlines() if re.match(r"^\d+ records sent, .*99\.9th\.?$", line.strip())]
        check(final, f"no closing 'N records sent, ... 99.9th' line: {r.summary()}")
        m = re.match(r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency",
                     final[-1].strip())
        check(m and int(m.group(1)) == PERF_RECORDS, f"closing line {final[-1]!r}, expected {PERF_RECORDS} records "
                                                     f"sent: {r.summary()}")
        return one_line(final[-1], 300)

    def end_offsets():
        r = tools.ok("kafka-get-offsets", "--bootstrap-server", tools.bootstrap, "--topic", topic, "--time", -1)
        ends = [int(m.group(1)) for m in re.finditer(rf"^{re.escape(topic)}:\d+:(\d+)\s*$", r.out, re.M)]
        check(ends, f"no '{topic}:PARTITION:OFFSET' lines: {r.summary()}")
        check(sum(ends) == PERF_RECORDS, f"end offsets {ends} add up to {sum(ends)}, expected {PERF_RECORDS}: "
                                         f"{r.summary()}")
        return one_line(r.out, 200)

    rep.run("perf_test", perf)
    rep.run("perf_end_offsets", end_offsets)


# ---------------------------------------------------------------------------------------
# Kafka Connect, distributed mode

def http(method, url, body=None, timeout=10):
    """(status, parsed JSON or text); status None if the server could not be reached."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return None, str(e)
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


class ConnectWorker:
    def __init__(self, tools, names, out_dir):
        self.dir = out_dir / "connect"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = out_dir / "connect.log"
        sfx = names["suffix"]
        self.props = {
            "bootstrap.servers": tools.bootstrap,
            "group.id": f"kt-connect-{sfx}",
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "key.converter.schemas.enable": "false",
            "value.converter.schemas.enable": "false",
            "config.storage.topic": f"kt-connect-configs-{sfx}",
            "offset.storage.topic": f"kt-connect-offsets-{sfx}",
            "status.storage.topic": f"kt-connect-status-{sfx}",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": "1",
            "status.storage.partitions": "1",
            "listeners": self.url,
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(self.port),
            # Source offsets are flushed every second rather than every minute.
            "offset.flush.interval.ms": "1000",
            # The file connectors are on the classpath with ServiceLoader manifests: the
            # worker need not scan every jar by reflection too (its log suggests this).
            "plugin.discovery": "service_load",
        }
        self.config = self.dir / "worker.properties"
        self.config.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        self._log = open(self.log_path, "ab")
        cmd = tools.command("connect-distributed", [str(self.config)], jvm=CONNECT_JVM)
        self._log.write(("$ " + " ".join(_quote(c) for c in cmd) + "\n").encode())
        self._log.flush()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=die_with_parent)
        track(self.proc)

    def log_tail(self, lines=5):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        interesting = [line for line in text.splitlines() if re.search(r"\b(ERROR|WARN)\b|Exception", line)]
        return tail("\n".join(interesting or text.splitlines()), lines, 1200)

    def get(self, path):
        return http("GET", self.url + path)

    def stop(self, grace):
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.proc, 0)
        if not self._log.closed:
            self._log.close()
        return self.proc.returncode


def section_connect(rep, tools, names, out_dir):
    if not any(s.startswith("connect_") and s in rep.selected for s in STEP_NAMES):
        return
    worker = None
    src_name, sink_name = "kt-file-source", "kt-file-sink"
    data_topic = names["connect"]

    def start():
        nonlocal worker
        worker = ConnectWorker(tools, names, out_dir)
        deadline = time.monotonic() + 120
        while True:
            if worker.proc.poll() is not None:
                raise Failure(f"the Connect worker exited with {worker.proc.returncode} while starting: "
                              f"{worker.log_tail()}; log {worker.log_path}")
            status, body = worker.get("/connectors")
            if status == 200 and body == []:
                break
            check(time.monotonic() < deadline, f"the worker's REST API did not list connectors within 120 s "
                                               f"(last: {status} {one_line(str(body), 200)}): {worker.log_tail()}; "
                                               f"log {worker.log_path}")
            time.sleep(0.5)
        # The worker made its internal topics itself; it needs them compacted (KIP-154).
        internal = [worker.props[k] for k in ("config.storage.topic", "offset.storage.topic", "status.storage.topic")]
        r = tools.topics("--describe", "--topic", "|".join(internal), label="kafka-topics-connect-internal")
        for t in internal:
            count, configs, _ = parse_describe_topic(r.out, t)
            check(count is not None, f"kafka-topics --describe does not show the worker's topic {t}: {r.summary()}")
            check(configs.get("cleanup.policy") == "compact",
                  f"the worker's topic {t} has cleanup.policy {configs.get('cleanup.policy')!r}, expected "
                  f"'compact': {r.summary()}")
        status, info = worker.get("/")
        check(status == 200 and isinstance(info, dict), f"GET / answered {status} {info}")
        status, plugins = worker.get("/connector-plugins")
        classes = {p.get("class") for p in plugins} if status == 200 and isinstance(plugins, list) else set()
        for c in ("org.apache.kafka.connect.file.FileStreamSourceConnector",
                  "org.apache.kafka.connect.file.FileStreamSinkConnector"):
            check(c in classes, f"GET /connector-plugins lacks {c}: {status} {plugins}")
        return f"Connect {info.get('version')} ({info.get('commit')}), kafka_cluster_id {info.get('kafka_cluster_id')}"

    def pipeline():
        source, sink = worker.dir / "source.txt", worker.dir / "sink.txt"
        lines = [f"line {i:04d} of {CONNECT_LINES}: {secrets.token_hex(8)}" for i in range(1, CONNECT_LINES + 1)]
        source.write_text("\n".join(lines) + "\n")
        sink.unlink(missing_ok=True)
        for name, config in [
            (src_name, {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                        "tasks.max": "1", "file": str(source), "topic": data_topic}),
            (sink_name, {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
                         "tasks.max": "1", "file": str(sink), "topics": data_topic}),
        ]:
            status, body = http("POST", worker.url + "/connectors", {"name": name, "config": config}, timeout=60)
            check(status == 201, f"POST /connectors {name} answered {status}: {one_line(str(body), 400)}; "
                                 f"{worker.log_tail()}")
        deadline = time.monotonic() + 90
        got = []
        while time.monotonic() < deadline:
            if sink.exists():
                got = sink.read_text(errors="replace").splitlines()
                if len(got) >= CONNECT_LINES:
                    break
            if worker.proc.poll() is not None:
                raise Failure(f"the worker exited with {worker.proc.returncode}: {worker.log_tail()}")
            time.sleep(0.25)
        check(len(got) >= CONNECT_LINES, f"the sink file has {len(got)} of {CONNECT_LINES} lines after 90 s: "
                                         f"{worker.log_tail()}; log {worker.log_path}")
        if got != lines:
            first = next((i for i, (a, b) in enumerate(zip(got, lines)) if a != b), min(len(got), len(lines)))
            raise Failure(f"the sink file differs from the source from line {first + 1}: "
                          f"{got[first] if first < len(got) else None!r} vs "
                          f"{lines[first] if first < len(lines) else None!r} ({len(got)} lines vs {len(lines)})")
        return f"{CONNECT_LINES} lines through topic {data_topic}"

    def statuses():
        deadline = time.monotonic() + 30
        while True:
            bad = []
            for name in (src_name, sink_name):
                status, body = worker.get(f"/connectors/{name}/status")
                if status != 200 or not isinstance(body, dict):
                    bad.append(f"{name}: {status} {one_line(str(body), 200)}")
                    continue
                cstate = body.get("connector", {}).get("state")
                tasks = body.get("tasks") or []
                tstates = [t.get("state") for t in tasks]
                if cstate != "RUNNING" or not tasks or any(s != "RUNNING" for s in tstates):
                    traces = [one_line(t.get("trace", ""), 300) for t in tasks if t.get("trace")]
                    bad.append(f"{name}: connector {cstate}, tasks {tstates}" + (f", trace {traces}" if traces else ""))
            if not bad:
                return
            check(time.monotonic() < deadline, "not RUNNING after 30 s: " + "; ".join(bad))
            time.sleep(0.5)

    def delete():
        for name in (src_name, sink_name):
            status, body = http("DELETE", f"{worker.url}/connectors/{name}", timeout=60)
            if status == 404 and rep.results.get("connect_pipeline", {}).get("ok") is not True:
                continue  # never created
            check(status == 204, f"DELETE /connectors/{name} answered {status}: {one_line(str(body), 300)}")
        deadline = time.monotonic() + 30
        while True:
            status, body = worker.get("/connectors")
            if status == 200 and body == []:
                return
            check(time.monotonic() < deadline, f"GET /connectors still answers {status} {body} 30 s after the deletes")
            time.sleep(0.5)

    def stop():
        rc = worker.stop(60)
        log = worker.log_path.read_text(errors="replace")
        check("Kafka Connect stopped" in log, f"the worker exited with {rc} without logging 'Kafka Connect stopped': "
                                              f"{worker.log_tail()}")
        # SIGTERM runs Connect's shutdown hook; the JVM then exits 143 (128 + SIGTERM).
        check(rc in (0, 143, -signal.SIGTERM), f"the worker exited with {rc} after SIGTERM: {worker.log_tail()}")
        return f"exit {rc}"

    try:
        rep.run("connect_start", start)
        rep.run("connect_pipeline", pipeline)
        rep.run("connect_status", statuses)
        rep.run("connect_delete", delete)
        rep.run("connect_stop", stop)
    finally:
        if worker is not None:
            worker.stop(20)


# ---------------------------------------------------------------------------------------

def select_steps(only):
    if not only:
        return list(STEP_NAMES)
    wanted = set()
    for item in (x.strip() for x in only.split(",") if x.strip()):
        if item in SECTIONS:
            wanted.update(s[0] for s in STEPS if s[1] == item)
        elif item in STEP_NAMES:
            wanted.add(item)
        else:
            sys.exit(f"--only: unknown step or section {item!r}; sections: {', '.join(SECTIONS)}; "
                     f"steps: {', '.join(STEP_NAMES)}")
    # What the chosen steps need runs too.
    changed = True
    while changed:
        changed = False
        for s in list(wanted):
            section = next(x[1] for x in STEPS if x[0] == s)
            for need in NEEDS[s] + SECTION_NEEDS.get(section, []):
                if need not in wanted:
                    wanted.add(need)
                    changed = True
    return [s for s in STEP_NAMES if s in wanted]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="steps:\n" + "\n".join(f"  {n:24s} {d}" for n, _, d, _ in STEPS))
    ap.add_argument("--weir", default=os.environ.get("WEIR_BIN", str(ROOT / "target" / "debug" / "weir")),
                    help="the weir binary whose playground is tested (default target/debug/weir)")
    ap.add_argument("--bootstrap", help="test this already running broker (e.g. Apache Kafka) instead of "
                                        "starting a weir playground")
    ap.add_argument("--out", default=str(ROOT / "target" / "kafka_tools"), help="directory for the logs")
    ap.add_argument("--only", help="comma-separated steps or sections (" + ", ".join(SECTIONS) + ")")
    ap.add_argument("--jars", default=str(CACHE / "jars"), help="the jars tests/kafka_tools/install put in place")
    args = ap.parse_args()

    selected = select_steps(args.only)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tool_logs = out_dir / "tools"
    shutil.rmtree(tool_logs, ignore_errors=True)
    tool_logs.mkdir()
    for stale in ("weir.log", "connect.log", "results.json"):
        (out_dir / stale).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "connect", ignore_errors=True)
    rep = Reporter(selected)
    started = time.monotonic()

    playground = None
    try:
        try:
            classes = find_main_classes(args.jars)
        except RuntimeError as e:
            rep.fail_all(selected, f"{e}; run tests/kafka_tools/install")
            return finish(rep, out_dir, started, None)
        versions = (Path(args.jars).parent / "VERSIONS")
        print(f"-- jars {args.jars} ({versions.read_text().strip() if versions.exists() else 'versions unknown'})",
              file=sys.stderr, flush=True)
        (out_dir / "main-classes.json").write_text(json.dumps(classes, indent=2) + "\n")
        if args.bootstrap:
            bootstrap = args.bootstrap
        else:
            if not Path(args.weir).exists():
                rep.fail_all(selected, f"no weir binary at {args.weir}")
                return finish(rep, out_dir, started, classes)
            try:
                playground = WeirPlayground(args.weir, out_dir / "weir.log")
            except RuntimeError as e:
                rep.fail_all(selected, f"playground: {e}")
                return finish(rep, out_dir, started, classes)
            bootstrap = playground.bootstrap
            weir_log = out_dir / "weir.log"
            rep.server_gone = lambda: (None if playground.proc.poll() is None else
                                       f"weir playground exited with {playground.proc.returncode} before this step; "
                                       f"see {weir_log}")
        print(f"-- testing {bootstrap} ({'weir playground ' + args.weir if playground else 'external broker'}); "
              f"logs in {out_dir}", file=sys.stderr, flush=True)
        sfx = secrets.token_hex(3)
        names = {"suffix": sfx, "topics": f"kt-topics-{sfx}", "configs": f"kt-configs-{sfx}",
                 "console": f"kt-console-{sfx}", "group": f"kt-group-{sfx}", "perf": f"kt-perf-{sfx}",
                 "connect": f"kt-connect-lines-{sfx}"}
        tools = Tools(args.jars, classes, bootstrap, tool_logs)
        state = {}
        section_topics(rep, tools, names)
        section_configs(rep, tools, names)
        section_console_and_groups(rep, tools, names, state)
        section_perf(rep, tools, names)
        section_connect(rep, tools, names, out_dir)
    finally:
        if playground is not None:
            playground.stop()
    return finish(rep, out_dir, started, classes)


def finish(rep, out_dir, started, classes):
    results = rep.results
    passed = sum(1 for r in results.values() if r.get("ok") is True)
    failed = sum(1 for r in results.values() if r.get("ok") is False)
    skipped = sum(1 for r in results.values() if "skip" in r)
    (out_dir / "results.json").write_text(json.dumps(
        {"seconds": round(time.monotonic() - started, 1), "main_classes": classes,
         "steps": {n: d for n, _, d, _ in STEPS}, "results": results}, indent=2) + "\n")
    print(f"-- {time.monotonic() - started:.1f} s; results in {out_dir / 'results.json'}", file=sys.stderr, flush=True)
    line = f"kafka-tools: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
