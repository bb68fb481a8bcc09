//! Testing only: two control-plane instances in one process, on one metadata store, so
//! that the sequencer lease can move between them (`--standby-listen`). The embedded
//! store is one process's, and FoundationDB cannot run where the chaos harness runs;
//! in production each instance is its own process on FoundationDB.
//!
//! Each instance runs on a runtime of its own, so it can crash as a killed process does:
//! dropping the runtime drops its tasks and connections at once, and its lease is never
//! released. `--lease-faults-file` drives that: when the file says `crash-holder`, the
//! instance holding the lease crashes; when it is empty again, the crashed instance
//! starts again (under a new name, so it comes back as a standby).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_control_plane::{ControlPlane, ControlPlaneConfig};
use weir_metadata::Database;

/// One in-process instance, restartable.
struct Instance {
    /// Its name in the lease, before the generation suffix.
    name: String,
    listen: SocketAddr,
    config: ControlPlaneConfig,
    db: Database,
    generation: u32,
    runtime: Option<tokio::runtime::Runtime>,
    running: Arc<Mutex<Option<Arc<ControlPlane>>>>,
}

impl Instance {
    fn start(&mut self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{}-{}", self.name, self.generation))
            .enable_all()
            .build()
            .context("start an instance's runtime")?;
        let config = ControlPlaneConfig {
            instance: format!("{}-{}", self.name, self.generation),
            ..self.config.clone()
        };
        self.generation += 1;
        let (db, listen, running) = (self.db.clone(), self.listen, self.running.clone());
        runtime.spawn(async move {
            let name = config.instance.clone();
            // The crashed instance's listener closes as its runtime winds down.
            let mut listener = TcpListener::bind(listen).await;
            for _ in 0..50 {
                if listener.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                listener = TcpListener::bind(listen).await;
            }
            let listener = match listener {
                Ok(listener) => listener,
                Err(e) => {
                    return tracing::error!(instance = %name, error = %e, "listen on {listen}");
                }
            };
            let control_plane = match ControlPlane::start(config, db).await {
                Ok(control_plane) => Arc::new(control_plane),
                Err(e) => return tracing::error!(instance = %name, error = %e, "start"),
            };
            *running.lock().unwrap_or_else(|e| e.into_inner()) = Some(control_plane.clone());
            tracing::info!(instance = %name, %listen, "instance serving");
            if let Err(e) = control_plane.serve(listener, std::future::pending()).await {
                tracing::error!(instance = %name, error = %e, "serve");
            }
        });
        self.runtime = Some(runtime);
        Ok(())
    }

    fn holds_lease(&self) -> bool {
        self.runtime.is_some()
            && self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(|c| c.holds_lease())
    }

    fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
            runtime.shutdown_background();
            tracing::warn!(instance = %self.name, "crashed the instance (--lease-faults-file)");
        }
    }
}

/// Runs two instances on `db` until `stop`: `config` at `listen`, and a standby at
/// `standby_listen`, following `faults_file` if given.
pub(crate) async fn run(
    config: ControlPlaneConfig,
    db: Database,
    listen: SocketAddr,
    standby_listen: SocketAddr,
    faults_file: Option<PathBuf>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // Neither says where it serves: a standby's answers say only that it is one, and
    // clients try the other URLs they were given (the harness's proxies).
    let config = ControlPlaneConfig {
        advertise_url: String::new(),
        ..config
    };
    let names = [
        (config.instance.clone(), listen),
        (format!("{}-standby", config.instance), standby_listen),
    ];
    let mut instances: Vec<Instance> = names
        .into_iter()
        .map(|(name, listen)| Instance {
            name,
            listen,
            config: config.clone(),
            db: db.clone(),
            generation: 0,
            runtime: None,
            running: Arc::default(),
        })
        .collect();
    for instance in &mut instances {
        instance.start()?;
    }
    let mut crashed = false;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let Some(file) = &faults_file else { continue };
        let wanted = std::fs::read_to_string(file).unwrap_or_default();
        match (wanted.trim(), crashed) {
            ("crash-holder", false) => {
                if let Some(holder) = instances.iter_mut().find(|i| i.holds_lease()) {
                    holder.crash();
                    crashed = true;
                }
            }
            ("", true) => {
                for instance in instances.iter_mut().filter(|i| i.runtime.is_none()) {
                    instance.start()?;
                }
                crashed = false;
            }
            _ => {}
        }
    }
    for instance in &mut instances {
        instance.crash();
    }
    Ok(())
}
