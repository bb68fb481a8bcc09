//! The nemesis: faults, one at a time, on a seeded schedule with quiet periods between
//! them. Each fault is written to the history when it starts (`invoke`) and when it
//! heals (`ok`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::cluster::Cluster;
use crate::history::{HistoryWriter, Op, Outcome};
use crate::proxy::Link;

/// The families of faults `--faults` can choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// kill -9 an agent or the control plane, restart it later.
    Kill,
    /// SIGSTOP an agent, the control plane or the S3 server, SIGCONT it later.
    Pause,
    /// Cut an agent off from the control plane, or clients off from an agent, or cut
    /// client connections after a random number of bytes.
    Partition,
    /// Object-store errors, latency and lost PUT responses in an agent.
    Store,
    /// Crash the control-plane instance holding the sequencer lease (the other takes it
    /// over once it expires), start it again later as a standby.
    Lease,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Kill,
        Family::Pause,
        Family::Partition,
        Family::Store,
        Family::Lease,
    ];
}

impl FromStr for Family {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Family> {
        Ok(match s {
            "kill" => Family::Kill,
            "pause" => Family::Pause,
            "partition" => Family::Partition,
            "store" => Family::Store,
            "lease" => Family::Lease,
            other => bail!("unknown fault family {other:?} (kill, pause, partition, store, lease)"),
        })
    }
}

/// One fault, with its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillAgent(usize),
    KillControlPlane,
    PauseAgent(usize),
    PauseControlPlane,
    PauseS3,
    /// Agent `i` cannot reach the control plane.
    IsolateAgent(usize, Link),
    /// Clients cannot reach agent `i`.
    HideAgent(usize, Link),
    StoreErrors(usize),
    StoreLatency(usize),
    StoreLostResponses(usize),
    /// The control-plane instance holding the lease crashes.
    TakeOverLease,
}

impl Fault {
    fn family(self) -> Family {
        match self {
            Fault::KillAgent(_) | Fault::KillControlPlane => Family::Kill,
            Fault::PauseAgent(_) | Fault::PauseControlPlane | Fault::PauseS3 => Family::Pause,
            Fault::IsolateAgent(..) | Fault::HideAgent(..) => Family::Partition,
            Fault::StoreErrors(_) | Fault::StoreLatency(_) | Fault::StoreLostResponses(_) => {
                Family::Store
            }
            Fault::TakeOverLease => Family::Lease,
        }
    }

    fn target(self) -> String {
        match self {
            Fault::KillAgent(i)
            | Fault::PauseAgent(i)
            | Fault::IsolateAgent(i, _)
            | Fault::HideAgent(i, _)
            | Fault::StoreErrors(i)
            | Fault::StoreLatency(i)
            | Fault::StoreLostResponses(i) => format!("agent-{i}"),
            Fault::KillControlPlane | Fault::PauseControlPlane | Fault::TakeOverLease => {
                "control-plane".into()
            }
            Fault::PauseS3 => "s3-server".into(),
        }
    }

    /// Every fault of `families` on a cluster of `agents` agents.
    fn all(agents: usize, families: &[Family]) -> Vec<Fault> {
        let mut faults = vec![
            Fault::KillControlPlane,
            Fault::PauseControlPlane,
            Fault::PauseS3,
            Fault::TakeOverLease,
        ];
        for i in 0..agents {
            faults.extend([
                Fault::KillAgent(i),
                Fault::PauseAgent(i),
                Fault::IsolateAgent(i, Link::Blackhole),
                Fault::IsolateAgent(i, Link::Refuse),
                Fault::HideAgent(i, Link::Blackhole),
                Fault::HideAgent(i, Link::Refuse),
                Fault::HideAgent(i, Link::Flaky),
                Fault::StoreErrors(i),
                Fault::StoreLatency(i),
                Fault::StoreLostResponses(i),
            ]);
        }
        faults.retain(|f| families.contains(&f.family()));
        faults
    }

    fn start(self, cluster: &mut Cluster) -> anyhow::Result<()> {
        match self {
            Fault::KillAgent(i) => cluster.agents[i].kill9(),
            Fault::KillControlPlane => cluster.control_plane.kill9(),
            Fault::PauseAgent(i) => cluster.agents[i].pause(),
            Fault::PauseControlPlane => cluster.control_plane.pause(),
            Fault::PauseS3 => cluster.s3.pause(),
            Fault::IsolateAgent(i, link) => cluster.control_proxies[i].set(link),
            Fault::HideAgent(i, link) => cluster.client_proxies[i].set(link),
            Fault::StoreErrors(i) => store_faults(cluster, i, "*.error_rate=0.3")?,
            Fault::StoreLatency(i) => store_faults(
                cluster,
                i,
                "put.latency=uniform:200ms:4s,get.latency=uniform:50ms:2s",
            )?,
            Fault::StoreLostResponses(i) => {
                store_faults(cluster, i, "put.lost_response_rate=0.5")?;
            }
            Fault::TakeOverLease => lease_faults(cluster, "crash-holder")?,
        }
        Ok(())
    }

    fn heal(self, cluster: &mut Cluster) -> anyhow::Result<()> {
        match self {
            Fault::KillAgent(i) => cluster.agents[i].start()?,
            Fault::KillControlPlane => cluster.control_plane.start()?,
            Fault::PauseAgent(i) => cluster.agents[i].resume(),
            Fault::PauseControlPlane => cluster.control_plane.resume(),
            Fault::PauseS3 => cluster.s3.resume(),
            Fault::IsolateAgent(i, _) => cluster.control_proxies[i].set(Link::Up),
            Fault::HideAgent(i, _) => cluster.client_proxies[i].set(Link::Up),
            Fault::StoreErrors(i) | Fault::StoreLatency(i) | Fault::StoreLostResponses(i) => {
                store_faults(cluster, i, "")?;
            }
            Fault::TakeOverLease => lease_faults(cluster, "")?,
        }
        Ok(())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Fault::KillAgent(_) | Fault::KillControlPlane => "kill",
            Fault::PauseAgent(_) | Fault::PauseControlPlane | Fault::PauseS3 => "pause",
            Fault::IsolateAgent(_, Link::Blackhole) => "isolate-from-control-plane-blackhole",
            Fault::IsolateAgent(..) => "isolate-from-control-plane-refuse",
            Fault::HideAgent(_, Link::Blackhole) => "isolate-from-clients-blackhole",
            Fault::HideAgent(_, Link::Flaky) => "cut-client-connections",
            Fault::HideAgent(..) => "isolate-from-clients-refuse",
            Fault::StoreErrors(_) => "store-errors",
            Fault::StoreLatency(_) => "store-latency",
            Fault::StoreLostResponses(_) => "store-lost-put-responses",
            Fault::TakeOverLease => "crash-lease-holder",
        };
        f.write_str(name)
    }
}

fn store_faults(cluster: &Cluster, agent: usize, spec: &str) -> anyhow::Result<()> {
    let path = &cluster.faults_files[agent];
    std::fs::write(path, spec).with_context(|| format!("write {}", path.display()))?;
    // The agent reads the file twice a second.
    std::thread::sleep(Duration::from_millis(600));
    Ok(())
}

fn lease_faults(cluster: &Cluster, spec: &str) -> anyhow::Result<()> {
    let path = &cluster.lease_faults_file;
    std::fs::write(path, spec).with_context(|| format!("write {}", path.display()))?;
    // The control plane reads the file five times a second.
    std::thread::sleep(Duration::from_millis(400));
    Ok(())
}

/// How faults are scheduled.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub families: Vec<Family>,
    /// Each fault lasts a random time in this range.
    pub fault: (Duration, Duration),
    /// Each quiet period between faults lasts a random time in this range.
    pub quiet: (Duration, Duration),
}

/// Runs faults until `until` (a fault under way then is healed at once) or `stop`.
/// Every fault of the chosen families runs once, in a shuffled order, before any runs
/// again. Returns how many faults ran, and for how long in all.
pub fn run(
    cluster: &Arc<Mutex<Cluster>>,
    history: &HistoryWriter,
    schedule: &Schedule,
    until: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<(usize, Duration)> {
    let mut rng = SmallRng::seed_from_u64(schedule.seed);
    let agents = cluster.lock().agents.len();
    let mut pending: Vec<Fault> = Vec::new();
    let mut ran = 0;
    let mut faulted = Duration::ZERO;
    let sleep_until = |deadline: Instant| {
        while Instant::now() < deadline.min(until) && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    loop {
        sleep_until(Instant::now() + between(&mut rng, schedule.quiet));
        if Instant::now() >= until || stop.load(Ordering::SeqCst) {
            return Ok((ran, faulted));
        }
        if pending.is_empty() {
            pending = Fault::all(agents, &schedule.families);
            pending.shuffle(&mut rng);
            if pending.is_empty() {
                bail!("no faults to run");
            }
        }
        let fault = pending.pop().expect("refilled above");
        let op = || Op::Nemesis {
            fault: fault.to_string(),
            target: fault.target(),
        };
        history.record("nemesis", Outcome::Invoke, op());
        eprintln!("weir-chaos: nemesis: {fault} {}", fault.target());
        let started = Instant::now();
        fault
            .start(&mut cluster.lock())
            .with_context(|| format!("start fault {fault} on {}", fault.target()))?;
        sleep_until(Instant::now() + between(&mut rng, schedule.fault));
        fault
            .heal(&mut cluster.lock())
            .with_context(|| format!("heal fault {fault} on {}", fault.target()))?;
        history.record("nemesis", Outcome::Ok, op());
        ran += 1;
        faulted += started.elapsed();
    }
}

fn between(rng: &mut SmallRng, (low, high): (Duration, Duration)) -> Duration {
    if high <= low {
        return low;
    }
    rng.random_range(low..high)
}

/// Heals everything, whatever state a failed run left it in.
pub fn heal_all(cluster: &mut Cluster) -> anyhow::Result<()> {
    for i in 0..cluster.agents.len() {
        cluster.control_proxies[i].set(Link::Up);
        cluster.client_proxies[i].set(Link::Up);
        store_faults(cluster, i, "")?;
    }
    lease_faults(cluster, "")?;
    for process in std::iter::once(&mut cluster.s3)
        .chain(std::iter::once(&mut cluster.control_plane))
        .chain(cluster.agents.iter_mut())
    {
        if process.is_running() {
            process.resume();
        } else {
            process.start()?;
        }
    }
    Ok(())
}
