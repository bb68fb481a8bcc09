//! Weir's control plane: topic administration, the offset sequencer, index reads and
//! offset lookups, high-watermark watches, the agent registry, the consumer-group
//! coordinator and producer ids, served over gRPC.
//!
//! It never sees record bytes: agents upload objects to their bucket and send only the
//! objects' batch layout here.

pub mod clock;
mod error;
pub mod groups;
pub mod http;
pub mod index;
pub mod lease;
pub mod lifecycle;
pub mod metrics;
pub mod producers;
pub mod registry;
pub mod sequencer;
mod service;
pub mod store;
pub mod topics;
pub mod watch;

pub use weir_control_plane_api::{
    ClientOptions, ControlPlaneClient, LEASE_HOLDER_HEADER, auth, client, proto, topic_config,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_metadata::Database;

pub use error::{Error, ErrorKind, ItemError, Result};
pub use service::ControlPlaneService;

use crate::auth::RequireToken;
use crate::clock::{Clock, SystemClock};
use crate::groups::{GroupConfig, GroupCoordinator};
use crate::lease::Lease;
use crate::lifecycle::{Lifecycle, LifecycleConfig};
use crate::metrics::SequencerMetrics;
use crate::registry::RegistryConfig;
use crate::sequencer::{SequencerConfig, SequencerHandle};
use crate::store::Store;
use crate::watch::WatermarkHub;

/// The largest gRPC message accepted: room for a commit of the most batches one object
/// may carry.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ControlPlaneConfig {
    /// Names this cluster's keyspace, so clusters can share one metadata store.
    pub cluster: String,
    /// Names this instance as the sequencer lease's holder.
    pub instance: String,
    /// Where agents reach this instance (`http://host:port` or `https://…`), written in
    /// the lease while it holds it so standbys can send agents here; empty if unknown.
    pub advertise_url: String,
    /// The certificate chain and key this instance serves TLS with; `None` serves
    /// plaintext.
    pub tls: Option<TlsIdentity>,
    /// The token agents must present; `None` accepts every call.
    pub token: Option<String>,
    pub lease_ttl: Duration,
    pub sequencer: SequencerConfig,
    pub registry: RegistryConfig,
    /// Idle time after which an idempotent producer's state is forgotten (Kafka's
    /// `transactional.id.expiration.ms`, 7 days by default).
    pub producer_state_expiry: Duration,
    pub groups: GroupConfig,
    /// Retention, compaction and the deletion of dereferenced objects.
    pub lifecycle: LifecycleConfig,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            cluster: "default".into(),
            instance: "control-plane".into(),
            advertise_url: String::new(),
            tls: None,
            token: None,
            lease_ttl: Duration::from_secs(10),
            sequencer: SequencerConfig::default(),
            registry: RegistryConfig::default(),
            producer_state_expiry: Duration::from_secs(7 * 24 * 60 * 60),
            groups: GroupConfig::default(),
            lifecycle: LifecycleConfig::default(),
        }
    }
}

/// A PEM certificate chain and its private key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// A running control plane: its background tasks and the service they back.
#[derive(Debug)]
pub struct ControlPlane {
    service: ControlPlaneService,
    lease: Lease,
    tls: Option<TlsIdentity>,
    token: Option<String>,
    registry: Arc<Registry>,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ControlPlane {
    /// Starts the sequencer, the lease and the janitor on `db`.
    pub async fn start(config: ControlPlaneConfig, db: Database) -> Result<Self> {
        Self::start_with_clock(config, db, Arc::new(SystemClock)).await
    }

    pub async fn start_with_clock(
        config: ControlPlaneConfig,
        db: Database,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let mut registry = Registry::default();
        let mut started = Self::start_into(config, db, clock, &mut registry).await?;
        started.registry = Arc::new(registry);
        Ok(started)
    }

    /// Starts as [`ControlPlane::start_with_clock`] does, registering its metrics in
    /// `registry` (the playground serves the control plane's and the agent's together);
    /// [`ControlPlane::metrics_registry`] is then empty.
    pub async fn start_into(
        config: ControlPlaneConfig,
        db: Database,
        clock: Arc<dyn Clock>,
        registry: &mut Registry,
    ) -> Result<Self> {
        let mut store = Store::new(db, &config.cluster, clock);
        store.delete_grace_ms =
            i64::try_from(config.lifecycle.delete_grace.as_millis()).unwrap_or(i64::MAX);
        let metrics = SequencerMetrics::register(registry);
        let hub = WatermarkHub::new(4096);
        let cancel = CancellationToken::new();

        let lease = Lease::new(
            store.clone(),
            &config.instance,
            &config.advertise_url,
            config.lease_ttl,
        );
        // Take the lease (if free) before the first commit arrives; the renewal task
        // logs who holds it.
        lease.acquire_or_renew().await?;
        let (sequencer, sequencer_task) = sequencer::spawn(
            store.clone(),
            lease.clone(),
            hub.clone(),
            metrics,
            config.sequencer.clone(),
            cancel.clone(),
        );
        let groups = GroupCoordinator::new(
            store.clone(),
            lease.clone(),
            config.groups.clone(),
            metrics::GroupMetrics::register(registry),
        );
        let lifecycle = Lifecycle::new(
            store.clone(),
            lease.clone(),
            hub.clone(),
            metrics::LifecycleMetrics::register(registry),
            config.lifecycle.clone(),
        );
        let tasks = vec![
            sequencer_task,
            lifecycle.clone().spawn(cancel.clone()),
            groups.spawn_ticker(cancel.clone()),
            producers::spawn_expiry(
                store.clone(),
                lease.clone(),
                config.producer_state_expiry,
                cancel.clone(),
            ),
            lease.clone().spawn_renewal(cancel.clone()),
            spawn_janitor(store.clone(), config.registry.clone(), cancel.clone()),
        ];
        Ok(ControlPlane {
            service: ControlPlaneService {
                store,
                sequencer,
                hub,
                registry: config.registry,
                groups,
                lease: lease.clone(),
                lifecycle,
            },
            lease,
            tls: config.tls,
            token: config.token,
            registry: Arc::new(Registry::default()),
            cancel,
            tasks,
        })
    }

    /// For callers in the same process (the playground's agent).
    pub fn sequencer(&self) -> &SequencerHandle {
        &self.service.sequencer
    }

    /// Whether this instance holds the sequencer lease, as of its last renewal.
    pub fn holds_lease(&self) -> bool {
        self.lease.holds()
    }

    pub fn groups(&self) -> &GroupCoordinator {
        &self.service.groups
    }

    pub fn store(&self) -> &Store {
        &self.service.store
    }

    pub fn hub(&self) -> &WatermarkHub {
        &self.service.hub
    }

    /// Retention, compaction planning and deletions, for tests that run them now.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.service.lifecycle
    }

    pub fn metrics_registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// What `/readyz` asks: whether this instance can serve agents now.
    pub fn readiness(&self) -> http::Readiness {
        let lease = self.lease.clone();
        http::Readiness::new(move || {
            let lease = lease.clone();
            async move {
                let read = tokio::time::timeout(Duration::from_secs(2), lease.read_record()).await;
                match read {
                    Err(_) => return Err("the metadata store did not answer within 2 s".into()),
                    Ok(Err(err)) => return Err(format!("the metadata store: {err}")),
                    Ok(Ok(_)) => {}
                }
                if lease.holds() {
                    Ok(lease.describe())
                } else {
                    Err(lease.describe())
                }
            }
        })
    }

    /// The gRPC services, each behind the token check.
    pub fn routes(&self) -> tonic::service::Routes {
        use proto::agents_server::AgentsServer;
        use proto::groups_server::GroupsServer;
        use proto::index_server::IndexServer;
        use proto::sequencer_server::SequencerServer;
        use proto::topics_server::TopicsServer;
        let auth = RequireToken::new(self.token.as_deref());
        let service = &self.service;
        tonic::service::Routes::new(tonic::service::interceptor::InterceptedService::new(
            TopicsServer::new(service.clone()),
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            SequencerServer::new(service.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            IndexServer::new(service.clone()).max_encoding_message_size(MAX_MESSAGE_BYTES),
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            AgentsServer::new(service.clone()),
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            GroupsServer::new(service.clone()),
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            proto::producers_server::ProducersServer::new(service.clone()),
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            proto::jobs_server::JobsServer::new(service.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            auth,
        ))
    }

    /// Serves the gRPC API on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        // Replies are small and latency-bound: without TCP_NODELAY, Nagle's algorithm and
        // delayed acks hold each one for tens of milliseconds. (The builder's own
        // `tcp_nodelay` covers only listeners it binds itself.)
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
            if let Ok(stream) = &stream {
                let _ = stream.set_nodelay(true);
            }
            stream
        });
        let mut server = tonic::transport::Server::builder();
        if let Some(identity) = &self.tls {
            let identity =
                tonic::transport::Identity::from_pem(&identity.cert_pem, &identity.key_pem);
            server = server
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(Error::Serve)?;
        }
        // A standby marks every answer, naming the lease holder when it can, so agents
        // move there (or reconnect, when they came through a load balancer).
        let lease = self.lease.clone();
        let name_holder = tower_http::set_header::SetResponseHeaderLayer::overriding(
            ::http::HeaderName::from_static(LEASE_HOLDER_HEADER),
            move |_: &::http::Response<tonic::body::Body>| {
                lease
                    .redirect()
                    .and_then(|url| ::http::HeaderValue::from_str(&url).ok())
            },
        );
        server
            .tcp_nodelay(true)
            .layer(name_holder)
            .add_routes(self.routes())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(Error::Serve)
    }

    /// Stops the background tasks: the sequencer finishes the group in hand and the
    /// lease is released for a standby.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Removes long-dead agents from the registry, once a minute.
fn spawn_janitor(
    store: Store,
    config: RegistryConfig,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match registry::prune(&store, &config).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed expired agents"),
                Err(err) => tracing::warn!(error = %err, "prune expired agents"),
            }
        }
    })
}
