//! A running agent: registered with the control plane, writing objects, serving Kafka.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_cache::{BlockCache, BlockCacheConfig, CacheMetrics, MeteredStore, ObjectStoreMetrics};
use weir_control_plane_api::ControlPlaneClient;
use weir_control_plane_api::admin::Registration;
use weir_metadata::AgentId;

use crate::brokers::{self, Broker, Brokers};
use crate::bucket::Bucket;
use crate::config::AgentConfig;
use crate::connection;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::gc::{self, GcConfig, GcMetrics};
use crate::handoffs::Handoffs;
use crate::index_cache::IndexCache;
use crate::jobs::{self, CompactionConfig, JobsConfig, JobsHandle, JobsMetrics};
use crate::reader::Reader;
use crate::topics::TopicCache;
use crate::watermarks::Watermarks;
use crate::writer::{self, WriterConfig};

/// How long shutdown waits for connections to finish their answers.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// When the control plane last answered this agent's heartbeat: what the agent's
/// `/readyz` reports.
#[derive(Clone, Debug)]
pub struct Contact {
    last_answer: Arc<parking_lot::Mutex<tokio::time::Instant>>,
    /// Ready while the last answer is at most this old: three heartbeats.
    within: Duration,
}

impl Contact {
    fn new(heartbeat: Duration) -> Self {
        Contact {
            last_answer: Arc::new(parking_lot::Mutex::new(tokio::time::Instant::now())),
            within: (heartbeat * 3).max(Duration::from_secs(3)),
        }
    }

    fn answered(&self) {
        *self.last_answer.lock() = tokio::time::Instant::now();
    }

    /// Ready (with why) when the control plane answered a heartbeat lately.
    pub fn check(&self) -> std::result::Result<String, String> {
        let age = self.last_answer.lock().elapsed();
        if age <= self.within {
            Ok(format!(
                "the control plane answered {} ms ago",
                age.as_millis()
            ))
        } else {
            Err(format!(
                "the control plane has not answered a heartbeat for {} ms",
                age.as_millis()
            ))
        }
    }
}

#[derive(Debug)]
pub struct Agent {
    ctx: Arc<Context>,
    contact: Contact,
    background: CancellationToken,
    writer_cancel: CancellationToken,
    writer_task: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    jobs: Option<JobsHandle>,
}

impl Agent {
    /// Registers with the control plane and starts the writer and the watches.
    pub async fn start(
        config: AgentConfig,
        control: ControlPlaneClient,
        bucket: Bucket,
        registry: &mut Registry,
    ) -> Result<Agent> {
        config.validate().map_err(Error::Config)?;
        let registered = register(&control, &config).await?;
        let (host, port) = config.advertised_host_port();
        let this = Broker {
            node_id: brokers::node_id(&registered.agent_id),
            host,
            port,
            zone: config.zone.clone(),
        };
        tracing::info!(node_id = this.node_id, zone = %config.zone, advertise = %config.advertise, "agent registered");

        // Every object-store request of this agent (writes, reads, GC) is counted here.
        let bucket = Bucket {
            store: Arc::new(MeteredStore::new(
                bucket.store,
                ObjectStoreMetrics::register(registry),
            )),
            prefix: bucket.prefix,
        };
        let cache_config = BlockCacheConfig {
            capacity_bytes: config.cache_bytes,
            ..BlockCacheConfig::default()
        };
        let cache = BlockCache::new(
            bucket.store.clone(),
            cache_config,
            CacheMetrics::register(registry),
        )
        .map_err(|e| Error::Config(e.to_string()))?;
        let background = CancellationToken::new();
        let writer_cancel = CancellationToken::new();
        let handoffs = Handoffs::register(registry);
        let mut background_tasks = Vec::new();
        let (writer, writer_task) = writer::spawn(
            WriterConfig {
                batch_timeout: config.batch_timeout,
                batch_max_bytes: config.batch_max_bytes,
                uploads_in_flight: config.uploads_in_flight,
                deadline: config.produce_timeout,
            },
            bucket.clone(),
            cache.clone(),
            control.clone(),
            handoffs.clone(),
            writer_cancel.clone(),
        );
        if !config.gc_interval.is_zero() {
            let (_gc, gc_task) = gc::spawn(
                GcConfig {
                    grace: config.gc_grace,
                    interval: config.gc_interval,
                },
                bucket.clone(),
                control.clone(),
                GcMetrics::register(registry),
                background.clone(),
            );
            background_tasks.push(gc_task);
        }
        // The heartbeat changes it when it registers the agent again.
        let (agent_id, agent_ids) = watch::channel(parse_agent_id(&registered)?);
        let mut jobs = None;
        if config.jobs {
            let (handle, jobs_task) = jobs::spawn(
                JobsConfig {
                    interval: config.jobs_interval,
                    compaction: CompactionConfig {
                        object_bytes: config.compaction_object_bytes,
                        entry_bytes: config.compaction_entry_bytes,
                        ..CompactionConfig::default()
                    },
                    max_output_age: config.gc_grace / 2,
                },
                bucket.clone(),
                control.clone(),
                agent_ids,
                JobsMetrics::register(registry),
                background.clone(),
            );
            jobs = Some(handle);
            background_tasks.push(jobs_task);
        }
        let index_cache = IndexCache::new(1_000_000);
        let (watermarks, watch_task) =
            Watermarks::follow(control.clone(), index_cache.clone(), background.clone());
        let brokers = Arc::new(Brokers::new(control.clone(), this));
        let contact = Contact::new(registered.heartbeat_interval);
        let heartbeat = spawn_heartbeat(
            control.clone(),
            config.clone(),
            registered,
            agent_id,
            brokers.clone(),
            contact.clone(),
            background.clone(),
        );
        let missing_objects = prometheus_client::metrics::counter::Counter::default();
        registry.register(
            "weir_fetch_missing_objects",
            "Fetches that found an object the index names missing from the bucket after resolving the offsets again (lost data)",
            missing_objects.clone(),
        );
        let ctx = Arc::new(Context {
            missing_objects,
            produce_bytes: Arc::new(Semaphore::new(
                usize::try_from(config.max_buffered_bytes)
                    .unwrap_or(usize::MAX)
                    .min(Semaphore::MAX_PERMITS),
            )),
            handoffs,
            topics: TopicCache::new(control.clone()),
            brokers,
            reader: Reader::new(bucket, cache),
            index_cache,
            writer,
            watermarks,
            control,
            config,
        });
        Ok(Agent {
            ctx,
            contact,
            background,
            writer_cancel,
            writer_task,
            tasks: [watch_task, heartbeat]
                .into_iter()
                .chain(background_tasks)
                .collect(),
            jobs,
        })
    }

    /// The jobs role's task, when this agent runs it.
    pub fn jobs(&self) -> Option<JobsHandle> {
        self.jobs.clone()
    }

    /// Whether the control plane answers this agent: its `/readyz`.
    pub fn contact(&self) -> Contact {
        self.contact.clone()
    }

    /// Serves Kafka clients on `listener` until `shutdown` fires, then drains: no new
    /// connections or requests, the open object flushed, every answer written.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> Result<()> {
        let connections = Arc::new(Semaphore::new(self.ctx.config.max_connections));
        let tracker = TaskTracker::new();
        let stop_reading = CancellationToken::new();
        loop {
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let (ctx, stop) = (self.ctx.clone(), stop_reading.clone());
                    tracker.spawn(async move {
                        connection::serve(ctx, stream, peer, stop).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        tracing::info!("shutting down: draining connections and flushing the open object");
        stop_reading.cancel();
        self.writer_cancel.cancel();
        let _ = self.writer_task.await;
        tracker.close();
        if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {DRAIN_DEADLINE:?}; closing them");
        }
        self.background.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        Ok(())
    }
}

/// Registers this agent (its advertised address and zone) with the control plane.
async fn register(
    control: &ControlPlaneClient,
    config: &AgentConfig,
) -> Result<Registration, tonic::Status> {
    control
        .register_agent(&config.advertise, &config.zone, env!("CARGO_PKG_VERSION"))
        .await
}

/// The id the control plane registered this agent under, which the jobs calls take.
fn parse_agent_id(registered: &Registration) -> Result<AgentId, tonic::Status> {
    AgentId::from_slice(&registered.agent_id).map_err(|e| {
        tonic::Status::data_loss(format!(
            "the control plane registered this agent under a bad id: {e}"
        ))
    })
}

/// Heartbeats at the interval the control plane asked for; registers again if it
/// forgot this agent (after an outage longer than the session timeout). Each beat also
/// keeps `brokers` fresh, so an agent that no client has asked for Metadata still
/// knows the other agents when the control plane becomes unreachable.
fn spawn_heartbeat(
    control: ControlPlaneClient,
    config: AgentConfig,
    registered: Registration,
    agent_ids: watch::Sender<AgentId>,
    brokers: Arc<Brokers>,
    contact: Contact,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = registered.heartbeat_interval;
        let mut agent_id = registered.agent_id;
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let beat = control.heartbeat(&agent_id).await;
            match beat {
                Ok(_) => {
                    contact.answered();
                    brokers.refresh().await;
                }
                Err(status) if status.code() == tonic::Code::NotFound => {
                    match register(&control, &config).await {
                        Ok(response) => {
                            contact.answered();
                            match parse_agent_id(&response) {
                                Ok(id) => {
                                    agent_ids.send_replace(id);
                                }
                                Err(e) => tracing::warn!(error = %e, "register again"),
                            }
                            agent_id = response.agent_id;
                        }
                        Err(e) => tracing::warn!(error = %e, "register again"),
                    }
                }
                Err(status) => tracing::warn!(error = %status, "heartbeat"),
            }
        }
    })
}
