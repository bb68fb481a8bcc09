//! The cluster under test, each part its own process on 127.0.0.1: an S3 server
//! (`weir-bench s3-server`, s3s-fs checking SigV4), `weir control-plane` on embedded
//! metadata running two instances (`--standby-listen`: the lease holder and a standby,
//! so the nemesis can crash the holder and the lease moves), and three `weir agent`s on
//! that bucket. Clients reach agent `i` only through `client_proxies[i]` (the address
//! the agent advertises), and agent `i` reaches each control-plane instance only
//! through `control_proxies[i]`, so the nemesis can cut either link. Each process logs to `<out>/<name>.log`, appended across restarts.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::history::AgentAddress;
use crate::proxy::Proxy;

pub const BUCKET: &str = "weir-chaos";
pub const TOKEN: &str = "weir-chaos-token";
const ACCESS_KEY: &str = "weir-chaos-access-key";
const SECRET_KEY: &str = "weir-chaos-secret-key";

/// Agent settings that bound how long a fault can keep a request waiting, and let
/// garbage collection run within the run.
pub const PRODUCE_TIMEOUT_MS: u64 = 5_000;
pub const GC_GRACE_MS: u64 = 10_000;
pub const GC_INTERVAL_MS: u64 = 2_000;

/// The data lifecycle (docs/lifecycle.md), fast enough to happen many times in a run: a
/// retention pass every second; a compaction job as soon as 4 objects wait at a level,
/// or the oldest level-0 one has waited 2 s; agents looking for jobs and due deletions
/// twice a second, writing compacted objects of at most 64 KiB in index entries of
/// about 8 KiB, so a job's output is several objects and a partition's data several
/// entries.
pub const RETENTION_INTERVAL_MS: u64 = 1_000;
pub const COMPACTION_FAN_IN: u64 = 4;
pub const COMPACTION_MAX_WAIT_MS: u64 = 2_000;
pub const JOBS_INTERVAL_MS: u64 = 500;
pub const COMPACTION_OBJECT_BYTES: u64 = 64 * 1024;
pub const COMPACTION_ENTRY_BYTES: u64 = 8 * 1024;

/// How long a dereferenced object stays in the bucket before agents delete it, by
/// default: the grace rule's bound for the `weir` binary (docs/lifecycle.md: 2 × (5 s
/// index-entry lifetime + 30 s object-store read deadline), no clock skew on one
/// machine). A shorter grace lets a fetch still reading an object it resolved before the
/// object was dereferenced find it gone, and the `live-fetch-failures` oracle could not
/// tell that from lost data: faults here hold a read up to 12 s (a paused agent or S3
/// server) plus the store client's 10 s timeout and retries.
pub const DELETE_GRACE_MS: u64 = 70_000;

/// Where the `weir` and `weir-bench` binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub weir: PathBuf,
    pub weir_bench: PathBuf,
}

impl Binaries {
    /// Next to this executable (`target/<profile>/`), where cargo builds them.
    pub fn beside_me() -> anyhow::Result<Binaries> {
        let me = std::env::current_exe().context("find weir-chaos's own path")?;
        let dir = me.parent().context("weir-chaos has no directory")?;
        let binaries = Binaries {
            weir: dir.join("weir"),
            weir_bench: dir.join("weir-bench"),
        };
        for path in [&binaries.weir, &binaries.weir_bench] {
            if !path.exists() {
                bail!(
                    "{} is missing: build it first (cargo build --bins)",
                    path.display()
                );
            }
        }
        Ok(binaries)
    }
}

/// One process of the cluster, restartable with the same command line.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    command: Vec<String>,
    program: PathBuf,
    envs: Vec<(String, String)>,
    log: PathBuf,
    /// Accepts connections once the process is ready.
    pub port: u16,
    child: Option<Child>,
    paused: bool,
}

impl Process {
    fn new(
        name: &str,
        program: &Path,
        command: Vec<String>,
        envs: Vec<(String, String)>,
        out: &Path,
        port: u16,
    ) -> Process {
        Process {
            name: name.to_string(),
            command,
            program: program.to_path_buf(),
            envs,
            log: out.join(format!("{name}.log")),
            port,
            child: None,
            paused: false,
        }
    }

    /// Starts the process and waits until its port accepts connections.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("open {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.command)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            // Every ListOffsets answer, for the watermark sampler's oracle, and every
            // deletion of dereferenced objects, for the run's lifecycle summary.
            .env(
                "RUST_LOG",
                "info,weir_agent::handlers::list_offsets=debug,weir_agent::jobs::deletion=debug",
            )
            // Plain logs, for the summary to read.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.name))?;
        self.child = Some(child);
        self.paused = false;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "{} exited at start ({status}); see {}",
                    self.name,
                    self.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on port {} within a minute; see {}",
                    self.name,
                    self.port,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// kill -9, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.paused {
                self.signal_pid(child.id(), "CONT");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP: the process holds its sockets and answers nothing.
    pub fn pause(&mut self) {
        if let Some(pid) = self.child.as_ref().map(Child::id) {
            self.signal_pid(pid, "STOP");
            self.paused = true;
        }
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        if let Some(pid) = self.child.as_ref().map(Child::id) {
            self.signal_pid(pid, "CONT");
            self.paused = false;
        }
    }

    fn signal_pid(&self, pid: u32, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
        if !matches!(sent, Ok(status) if status.success()) {
            eprintln!("weir-chaos: could not send SIG{signal} to {}", self.name);
        }
    }

    /// Stops it with SIGTERM, then SIGKILL after a few seconds.
    pub fn stop(&mut self) {
        if self.paused {
            self.resume();
        }
        if let Some(mut child) = self.child.take() {
            self.signal_pid(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it died on its own (a crash, not a kill of ours).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The whole cluster.
#[derive(Debug)]
pub struct Cluster {
    pub s3: Process,
    pub control_plane: Process,
    pub agents: Vec<Process>,
    pub client_proxies: Vec<Proxy>,
    pub control_proxies: Vec<ControlLinks>,
    /// Where the S3 server keeps the bucket's objects, one file each.
    pub bucket_dir: PathBuf,
    /// `faults_files[i]` holds agent `i`'s object-store fault spec.
    pub faults_files: Vec<PathBuf>,
    /// Says `crash-holder` while the lease holder is to be down (`--lease-faults-file`).
    pub lease_faults_file: PathBuf,
    /// Both instances, directly, comma-separated (for the oracle).
    pub control_plane_url: String,
    /// Each agent's HTTP side port (`/metrics`), directly.
    pub agent_http: Vec<SocketAddr>,
}

/// One agent's links to the control plane's two instances.
#[derive(Debug)]
pub struct ControlLinks(pub Vec<Proxy>);

impl ControlLinks {
    pub fn set(&self, link: crate::proxy::Link) {
        for proxy in &self.0 {
            proxy.set(link);
        }
    }

    /// The agent's --control-plane: every instance, through its proxy.
    fn urls(&self) -> String {
        self.0
            .iter()
            .map(|p| format!("http://{}", p.addr))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Cluster {
    /// Starts everything under `out`; `agents` agents, all in one zone so every client
    /// may use every agent.
    /// `metadata_faults` goes to `weir control-plane --metadata-faults` (none when empty).
    /// `delete_grace_ms` goes to `--object-delete-grace-ms` (see [`DELETE_GRACE_MS`]).
    pub async fn start(
        binaries: &Binaries,
        out: &Path,
        agents: usize,
        metadata_faults: &str,
        delete_grace_ms: u64,
    ) -> anyhow::Result<Cluster> {
        let s3_dir = out.join("s3");
        let s3_port = free_port()?;
        let mut s3 = Process::new(
            "s3-server",
            &binaries.weir_bench,
            strings(&[
                "s3-server",
                "--listen",
                &format!("127.0.0.1:{s3_port}"),
                "--dir",
                &s3_dir.display().to_string(),
                "--bucket",
                BUCKET,
                "--access-key",
                ACCESS_KEY,
                "--secret-key",
                SECRET_KEY,
            ]),
            Vec::new(),
            out,
            s3_port,
        );
        s3.start()?;

        let grpc = free_port()?;
        let standby_grpc = free_port()?;
        let lease_faults_file = out.join("control-plane.lease-faults");
        std::fs::write(&lease_faults_file, "")?;
        let mut control_plane_args = strings(&[
            "control-plane",
            "--listen",
            &format!("127.0.0.1:{grpc}"),
            "--http-listen",
            &format!("127.0.0.1:{}", free_port()?),
            "--metadata",
            &format!("embedded://{}", out.join("metadata").display()),
            "--instance-id",
            "chaos-control-plane",
            "--lease-ttl-secs",
            "3",
            "--standby-listen",
            &format!("127.0.0.1:{standby_grpc}"),
            "--lease-faults-file",
            &lease_faults_file.display().to_string(),
            "--retention-interval-ms",
            &RETENTION_INTERVAL_MS.to_string(),
            "--object-delete-grace-ms",
            &delete_grace_ms.to_string(),
            "--compaction-fan-in",
            &COMPACTION_FAN_IN.to_string(),
            "--compaction-max-wait-ms",
            &COMPACTION_MAX_WAIT_MS.to_string(),
        ]);
        if !metadata_faults.is_empty() {
            control_plane_args.extend(strings(&["--metadata-faults", metadata_faults]));
        }
        let mut control_plane = Process::new(
            "control-plane",
            &binaries.weir,
            control_plane_args,
            vec![("WEIR_CONTROL_PLANE_TOKEN".into(), TOKEN.into())],
            out,
            grpc,
        );
        control_plane.start()?;

        let aws = vec![
            (
                "AWS_ENDPOINT_URL".to_string(),
                format!("http://127.0.0.1:{s3_port}"),
            ),
            ("AWS_ACCESS_KEY_ID".to_string(), ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), SECRET_KEY.to_string()),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP".to_string(), "true".to_string()),
            ("WEIR_CONTROL_PLANE_TOKEN".to_string(), TOKEN.to_string()),
        ];
        let mut processes = Vec::new();
        let mut client_proxies = Vec::new();
        let mut control_proxies = Vec::new();
        let mut faults_files = Vec::new();
        let mut agent_http = Vec::new();
        for i in 0..agents {
            let port = free_port()?;
            let client_proxy = Proxy::start(loopback(0), loopback(port)).await?;
            let control_proxy = ControlLinks(vec![
                Proxy::start(loopback(0), loopback(grpc)).await?,
                Proxy::start(loopback(0), loopback(standby_grpc)).await?,
            ]);
            let faults = out.join(format!("agent-{i}.faults"));
            std::fs::write(&faults, "")?;
            let http = loopback(free_port()?);
            let mut agent = Process::new(
                &format!("agent-{i}"),
                &binaries.weir,
                strings(&[
                    "agent",
                    "--control-plane",
                    &control_proxy.urls(),
                    "--bucket",
                    &format!("s3://{BUCKET}"),
                    "--zone",
                    "chaos-zone",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--advertise",
                    &client_proxy.addr.to_string(),
                    "--http-listen",
                    &http.to_string(),
                    "--batch-timeout-ms",
                    "50",
                    "--produce-timeout-ms",
                    &PRODUCE_TIMEOUT_MS.to_string(),
                    "--gc-grace-ms",
                    &GC_GRACE_MS.to_string(),
                    "--gc-interval-ms",
                    &GC_INTERVAL_MS.to_string(),
                    "--jobs-interval-ms",
                    &JOBS_INTERVAL_MS.to_string(),
                    "--compaction-object-bytes",
                    &COMPACTION_OBJECT_BYTES.to_string(),
                    "--compaction-entry-bytes",
                    &COMPACTION_ENTRY_BYTES.to_string(),
                    "--object-store-faults-file",
                    &faults.display().to_string(),
                ]),
                aws.clone(),
                out,
                port,
            );
            agent.start()?;
            processes.push(agent);
            client_proxies.push(client_proxy);
            control_proxies.push(control_proxy);
            faults_files.push(faults);
            agent_http.push(http);
        }
        Ok(Cluster {
            s3,
            control_plane,
            agents: processes,
            client_proxies,
            control_proxies,
            bucket_dir: s3_dir.join(BUCKET),
            faults_files,
            lease_faults_file,
            control_plane_url: format!("http://127.0.0.1:{grpc},http://127.0.0.1:{standby_grpc}"),
            agent_http,
        })
    }

    /// Each agent's name and the address it advertises to clients (its proxy).
    pub fn agent_addresses(&self) -> Vec<AgentAddress> {
        self.agents
            .iter()
            .zip(&self.client_proxies)
            .map(|(agent, proxy)| AgentAddress {
                name: agent.name.clone(),
                address: proxy.addr.to_string(),
            })
            .collect()
    }

    /// Each agent's log file, appended across its restarts.
    pub fn agent_logs(&self) -> Vec<(String, PathBuf)> {
        self.agents
            .iter()
            .map(|agent| (agent.name.clone(), agent.log.clone()))
            .collect()
    }

    /// The control plane's log file.
    pub fn control_plane_log(&self) -> PathBuf {
        self.control_plane.log.clone()
    }

    /// Clients' bootstrap list: every agent, through its proxy.
    pub fn bootstrap(&self) -> String {
        self.client_proxies
            .iter()
            .map(|p| p.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Any process that died when we did not kill it.
    pub fn crashed(&mut self) -> Vec<String> {
        let mut crashed = Vec::new();
        for process in std::iter::once(&mut self.s3)
            .chain(std::iter::once(&mut self.control_plane))
            .chain(self.agents.iter_mut())
        {
            if let Some(status) = process.exited() {
                crashed.push(format!("{} ({status})", process.name));
            }
        }
        crashed
    }

    pub fn stop(&mut self) {
        for agent in &mut self.agents {
            agent.stop();
        }
        self.control_plane.stop();
        self.s3.stop();
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}
