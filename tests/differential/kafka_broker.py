"""The two systems the differential tests compare, as processes on this machine.

    KafkaBroker(jars_dir, log_path)      Apache Kafka, one KRaft node (broker and controller)
    WeirPlayground(weir, log_path)       `weir playground` on a fresh data directory

Both bind 127.0.0.1 on free ports, keep their files in a temporary directory of their
own (removed by stop()), write their output to log_path, expose `.bootstrap`
("127.0.0.1:PORT"), and are killed when this Python process exits even if stop() was
never called (at exit, and by a parent-death signal if it is killed). Either works as a context manager:

    with KafkaBroker(jars) as kafka, WeirPlayground(weir) as weir:
        ... kafka.bootstrap, weir.bootstrap ...

The Kafka jars come from tests/differential/install (default_jars_dir()); the broker
runs with `java` (JAVA or JAVA_HOME if set, else the one on PATH), -Xmx512m. Waiting
for Kafka to be ready uses confluent_kafka (an AdminClient whose list_topics succeeds),
so this module is imported by an interpreter that has it.
"""

import atexit
import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

# Processes this module started and has not stopped yet: killed at exit.
_live = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_live):
        kill_group(proc)


def track(proc):
    """Remembers a child process, to be killed when this process exits however it exits."""
    _live.add(proc)


def kill_group(proc, grace=0.0):
    """SIGTERM to proc's process group, SIGKILL after grace seconds if still there."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace if grace > 0 else 5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    _live.discard(proc)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when this process dies, however it dies (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_jars_dir():
    cache = Path(os.environ.get("WEIR_KAFKA_CACHE")
                 or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "weir" / "kafka")
    return cache / "jars"


def installed_version(jars_dir):
    """The Kafka version tests/differential/install recorded next to jars_dir, or None."""
    version = Path(jars_dir).parent / "VERSION"
    return version.read_text().strip() if version.exists() else None


def java_command():
    if os.environ.get("JAVA"):
        return os.environ["JAVA"]
    if os.environ.get("JAVA_HOME"):
        return str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    return shutil.which("java") or "/usr/bin/java"


def storage_tool_class(jars_dir):
    """The main class that formats KRaft storage: it moved between Kafka versions."""
    candidates = ["kafka/tools/StorageTool.class", "org/apache/kafka/tools/StorageTool.class"]
    for jar in sorted(Path(jars_dir).glob("*.jar")):
        try:
            with zipfile.ZipFile(jar) as z:
                names = set(z.namelist())
        except zipfile.BadZipFile:
            continue
        for c in candidates:
            if c in names:
                return c[: -len(".class")].replace("/", ".")
    raise RuntimeError(f"no StorageTool class in the jars of {jars_dir}")


class KafkaBroker:
    """A one-node KRaft Kafka (process.roles=broker,controller) in a temporary directory."""

    def __init__(self, jars_dir=None, log_path=None, start_timeout=90.0, heap="512m"):
        self.jars_dir = Path(jars_dir or default_jars_dir())
        if not any(self.jars_dir.glob("kafka_2.13-*.jar")):
            raise FileNotFoundError(f"no Kafka jars in {self.jars_dir}; run tests/differential/install")
        self.version = installed_version(self.jars_dir)
        self.dir = Path(tempfile.mkdtemp(prefix="weir-diff-kafka-"))
        self.log_path = Path(log_path) if log_path else self.dir / "kafka.log"
        self.port, self.controller_port = free_port(), free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.heap = heap
        self.proc = None
        self._log = None
        self.start(start_timeout)

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def _java(self, main_class, *args):
        return [java_command(), f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-cp", str(self.jars_dir / "*"), main_class, *args]

    def _write_config(self):
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.dir / "logs"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
        }
        path = self.dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def start(self, timeout):
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout):
        config = self._write_config()
        self._log = open(self.log_path, "ab")
        cluster_id = "-"
        while cluster_id.startswith("-"):  # the storage tool would read "-..." as an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        tool = storage_tool_class(self.jars_dir)
        self._log.write(f"== format: {tool} format --cluster-id {cluster_id}\n".encode())
        self._log.flush()
        fmt = subprocess.run(self._java(tool, "format", "--cluster-id", cluster_id, "--config", str(config)),
                             stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120,
                             preexec_fn=die_with_parent)
        if fmt.returncode != 0:
            raise RuntimeError(f"formatting Kafka's storage failed ({fmt.returncode}); see {self.log_path}")
        self._log.write(b"== kafka.Kafka server.properties\n")
        self._log.flush()
        self.proc = subprocess.Popen(self._java("kafka.Kafka", str(config)), stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=str(self.dir), preexec_fn=die_with_parent)
        track(self.proc)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout):
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        # Nothing to ask before the port is open; then a client's metadata request must
        # name this broker.
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.proc.returncode} while starting; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kafka did not listen within {timeout:.0f} s; see {self.log_path}")
                time.sleep(0.2)
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Kafka exited with {self.proc.returncode} while starting; see {self.log_path}")
            try:
                md = admin.list_topics(timeout=2)
                if md.brokers:
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka did not answer a client within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.2)

    def stop(self):
        """SIGTERM (Kafka shuts down in a few seconds), SIGKILL after 20 s; removes its files."""
        if self.proc is not None:
            kill_group(self.proc, grace=20)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.dir / "logs", ignore_errors=True)
        if not str(self.log_path).startswith(str(self.dir)):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class WeirPlayground:
    """`WEIR playground --data-dir DIR --listen 127.0.0.1:PORT`, ready once it prints its
    `Weir playground: bootstrap.servers=` line."""

    READY = "Weir playground: bootstrap.servers="

    def __init__(self, weir, log_path=None, extra_args=(), start_timeout=60.0):
        self.weir = str(weir)
        self.dir = Path(tempfile.mkdtemp(prefix="weir-diff-weir-"))
        self.log_path = Path(log_path) if log_path else self.dir / "weir.log"
        self.port = free_port()
        self._log = open(self.log_path, "ab")
        self._ready = threading.Event()
        self.bootstrap = None
        self.proc = subprocess.Popen(
            [self.weir, "playground", "--data-dir", str(self.dir / "data"), "--listen", f"127.0.0.1:{self.port}",
             *extra_args],
            stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent)
        track(self.proc)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + start_timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None:
                self._reader.join(2)
                self.stop()
                raise RuntimeError(f"weir playground exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"weir playground printed no ready line within {start_timeout:.0f} s; "
                                   f"see {self.log_path}")

    def _read_stdout(self):
        for raw in self.proc.stdout:
            try:
                self._log.write(raw)
                self._log.flush()
            except ValueError:  # closed by stop()
                pass
            line = raw.decode(errors="replace").strip()
            if line.startswith(self.READY) and not self._ready.is_set():
                self.bootstrap = line[len(self.READY):].split()[0]
                self._ready.set()

    def stop(self):
        """SIGTERM, SIGKILL after 10 s; removes its data directory."""
        kill_group(self.proc, grace=10)
        self._reader.join(2)
        if not self._log.closed:
            self._log.close()
        shutil.rmtree(self.dir / "data", ignore_errors=True)
        if not str(self.log_path).startswith(str(self.dir)):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
