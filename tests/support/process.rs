//! `weir` processes: spawned from the binary cargo built, ready when they print their
//! ready line, stopped by SIGTERM or SIGKILL. Their stderr goes to a log file that is
//! printed when a test fails.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a process may take to print its ready line before the test fails. A bound
/// against hanging, not a timing assertion.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running `weir` process. Dropping it kills it (SIGKILL); if the test is failing,
/// the end of its log is printed first.
#[derive(Debug)]
pub struct WeirProcess {
    name: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    ready_prefix: String,
    log: PathBuf,
    child: Option<Child>,
    /// Its place in the hang watchdog while it runs.
    watched: Option<u64>,
    /// The ready line, as printed.
    pub ready_line: String,
}

impl WeirProcess {
    /// Starts `weir ARGS…` and waits until it prints a stdout line starting with
    /// `ready_prefix`. Its stderr is appended to `log`.
    pub fn start(
        name: &str,
        args: &[String],
        envs: &[(&str, &str)],
        ready_prefix: &str,
        log: &Path,
    ) -> WeirProcess {
        let mut process = WeirProcess {
            name: name.to_string(),
            args: args.to_vec(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ready_prefix: ready_prefix.to_string(),
            log: log.to_path_buf(),
            child: None,
            watched: None,
            ready_line: String::new(),
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the process log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        let stdout = child.stdout.take().expect("stdout is piped");
        // Keep reading stdout for the life of the process, so that its prints never
        // block or fail on a closed pipe; hand each line to whoever waits for it.
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines_tx.send(line);
            }
        });
        self.watched = Some(super::watchdog::watch(
            &self.name,
            child.id(),
            self.log.clone(),
        ));
        self.child = Some(child);

        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) if line.starts_with(&self.ready_prefix) => {
                    self.ready_line = line;
                    return;
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().expect("spawned").wait();
                    self.child = None;
                    panic!(
                        "{} exited ({status:?}) before printing {:?}; its log:\n{}",
                        self.name,
                        self.ready_prefix,
                        self.log_tail()
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} did not print {:?} within {READY_WITHIN:?}; its log:\n{}",
                        self.name,
                        self.ready_prefix,
                        self.log_tail()
                    );
                }
            }
        }
    }

    /// Starts the process again with the same arguments (after a kill or stop).
    pub fn restart(&mut self) {
        self.spawn();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to flush or release anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        self.unwatch();
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// SIGTERM, then wait for the exit. Panics if the process is still running a minute
    /// later.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        self.unwatch();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {}", child.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within a minute of SIGTERM; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running (it has not crashed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// The last lines of the process's stderr.
    pub fn log_tail(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn unwatch(&mut self) {
        if let Some(id) = self.watched.take() {
            super::watchdog::forget(id);
        }
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        self.unwatch();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of {} ({}):\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
    }
}

/// `weir playground` in a fresh temporary directory: data under `data_dir`
/// (`metadata/`, `objects/`), its log beside it.
#[derive(Debug)]
pub struct Playground {
    pub process: WeirProcess,
    pub port: u16,
    pub data_dir: PathBuf,
    // Last, so the process is gone before its directory is removed.
    root: tempfile::TempDir,
}

impl Playground {
    pub fn start() -> Playground {
        Playground::start_with(&[], &[])
    }

    /// With extra flags (`--no-auto-create-topics`, `--default-partitions 3`, …) and
    /// environment variables.
    pub fn start_with(flags: &[&str], envs: &[(&str, &str)]) -> Playground {
        let root = tempfile::TempDir::new().expect("temp dir");
        let data_dir = root.path().join("data");
        let port = free_port();
        let mut args = vec![
            "playground".to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let process = WeirProcess::start(
            "weir playground",
            &args,
            envs,
            "Weir playground: bootstrap.servers=",
            &root.path().join("playground.log"),
        );
        let playground = Playground {
            process,
            port,
            data_dir,
            root,
        };
        playground.check_ready_line();
        playground
    }

    fn check_ready_line(&self) {
        assert_eq!(
            self.process.ready_line,
            format!("Weir playground: bootstrap.servers={}", self.bootstrap()),
            "the ready line names the address clients should use"
        );
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Starts it again on the same data directory and port.
    pub fn restart(&mut self) {
        self.process.restart();
        self.check_ready_line();
    }

    /// SIGTERM; asserts a clean exit.
    pub fn stop(&mut self) {
        let status = self.process.terminate();
        assert!(
            status.success(),
            "weir playground exits cleanly on SIGTERM, got {status}; its log:\n{}",
            self.process.log_tail()
        );
    }

    /// The temporary directory holding the data directory and the log.
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

/// `weir control-plane` and `weir agent`s, each its own process, sharing one bucket: a
/// `file://` one under `bucket_dir`, or the one given to [`Cluster::start_on_bucket`].
#[derive(Debug)]
pub struct Cluster {
    pub agents: Vec<Agent>,
    pub control_plane: WeirProcess,
    /// The control plane's gRPC URL, and the token agents present.
    pub control_plane_url: String,
    pub token: &'static str,
    /// The `file://` bucket's directory (empty when the agents use another bucket).
    pub bucket_dir: PathBuf,
    root: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Agent {
    pub process: WeirProcess,
    pub port: u16,
    /// Its health, readiness and metrics port.
    pub http_port: u16,
    pub zone: String,
}

impl Agent {
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

const TOKEN: &str = "e2e-test-token";

impl Cluster {
    /// A control plane and one agent per entry of `zones`, each agent in that zone.
    pub fn start(zones: &[&str]) -> Cluster {
        Cluster::start_with(zones, None, &[])
    }

    /// Like [`Cluster::start`], with the agents on `bucket` (a `--bucket` URL) and
    /// `envs` (its `AWS_*` settings) in their environment.
    pub fn start_on_bucket(zones: &[&str], bucket: &str, envs: &[(&str, &str)]) -> Cluster {
        Cluster::start_with(zones, Some(bucket), envs)
    }

    fn start_with(zones: &[&str], bucket: Option<&str>, envs: &[(&str, &str)]) -> Cluster {
        Cluster::start_configured(zones, bucket, envs, &[])
    }

    /// Like [`Cluster::start_on_bucket`] (or on a `file://` bucket without one), with
    /// `control_plane_envs` (`WEIR_*` settings, say) in the control plane's environment.
    pub fn start_configured(
        zones: &[&str],
        bucket: Option<&str>,
        envs: &[(&str, &str)],
        control_plane_envs: &[(&str, &str)],
    ) -> Cluster {
        let root = tempfile::TempDir::new().expect("temp dir");
        let bucket_dir = root.path().join("bucket");
        std::fs::create_dir_all(&bucket_dir).expect("create the bucket directory");
        let bucket = bucket.map_or_else(
            || format!("file://{}", bucket_dir.display()),
            str::to_string,
        );
        let mut agent_envs = vec![("WEIR_CONTROL_PLANE_TOKEN", TOKEN)];
        agent_envs.extend_from_slice(envs);
        let grpc = free_port();
        let control_plane = WeirProcess::start(
            "weir control-plane",
            &[
                "control-plane".to_string(),
                "--listen".to_string(),
                format!("127.0.0.1:{grpc}"),
                "--http-listen".to_string(),
                format!("127.0.0.1:{}", free_port()),
                "--metadata".to_string(),
                format!("embedded://{}", root.path().join("metadata").display()),
            ],
            &[&[("WEIR_CONTROL_PLANE_TOKEN", TOKEN)], control_plane_envs].concat(),
            "weir control-plane:",
            &root.path().join("control-plane.log"),
        );
        let agents = zones
            .iter()
            .enumerate()
            .map(|(i, zone)| {
                let port = free_port();
                let http_port = free_port();
                let process = WeirProcess::start(
                    &format!("weir agent {i} (zone {zone})"),
                    &agent_args(
                        &format!("http://127.0.0.1:{grpc}"),
                        &bucket,
                        zone,
                        port,
                        http_port,
                    ),
                    &agent_envs,
                    "weir agent:",
                    &root.path().join(format!("agent-{i}.log")),
                );
                Agent {
                    process,
                    port,
                    http_port,
                    zone: zone.to_string(),
                }
            })
            .collect();
        Cluster {
            agents,
            control_plane,
            control_plane_url: format!("http://127.0.0.1:{grpc}"),
            token: TOKEN,
            bucket_dir,
            root,
        }
    }
}

/// `weir agent` on loopback: Kafka on `port` (advertised as is), HTTP on `http_port`,
/// topics created on demand.
pub fn agent_args(
    control_plane: &str,
    bucket: &str,
    zone: &str,
    port: u16,
    http_port: u16,
) -> Vec<String> {
    [
        "agent",
        "--control-plane",
        control_plane,
        "--bucket",
        bucket,
        "--zone",
        zone,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--advertise",
        &format!("127.0.0.1:{port}"),
        "--http-listen",
        &format!("127.0.0.1:{http_port}"),
        "--auto-create-topics",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs `weir ARGS…` with `envs` added to its environment, to its exit, and returns
/// its status and output. Panics if it is still running a minute later (it was expected
/// to refuse to start).
pub fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weir"));
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn weir");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("collect the output");
            panic!(
                "weir {args:?} was still running a minute later; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the output")
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("read a directory entry");
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}
