//! The sequencer lease: which control plane commits, and which stand by.
//!
//! The holder renews the lease well before it expires; another instance takes it only
//! once it has expired. Correctness never depends on the lease (offsets are assigned in
//! serializable transactions); it keeps standbys from fighting over every commit.
//!
//! The lease also names where its holder serves, so a standby can tell callers where
//! to go (see [`Lease::holder_url`] and docs/control-plane.md, "Failover").

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use weir_metadata::Transaction;
use weir_metadata::keyspace::{self, LeaseRecord};

use crate::error::{Error, Result};
use crate::store::Store;

const SEQUENCER: &str = "sequencer";

/// Who holds the lease, as seen by one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    Held {
        until_ms: i64,
    },
    Standby {
        holder: String,
        holder_url: String,
        until_ms: i64,
    },
}

/// Another instance's hold on the lease, as this one last saw it.
#[derive(Clone, Debug, Default)]
struct OtherHolder {
    url: String,
    until_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Lease {
    store: Store,
    holder: Arc<str>,
    url: Arc<str>,
    ttl_ms: i64,
    /// Until when this instance last took or renewed the lease (0: never).
    held_until_ms: Arc<AtomicI64>,
    /// Who else held it at the last renewal attempt.
    other: Arc<Mutex<OtherHolder>>,
}

impl Lease {
    /// `holder` names this instance and `url` is where callers reach it (empty if
    /// unknown); an instance restarted under the same name takes its lease back at once.
    pub fn new(store: Store, holder: &str, url: &str, ttl: Duration) -> Self {
        Lease {
            store,
            holder: holder.into(),
            url: url.into(),
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            held_until_ms: Arc::new(AtomicI64::new(0)),
            other: Arc::default(),
        }
    }

    /// Where the instance holding the lease serves, if another instance holds it and
    /// said where as of this one's last renewal attempt. No store read: asked on every
    /// response a standby sends.
    pub fn holder_url(&self) -> Option<String> {
        if self.holds() {
            return None;
        }
        let other = self.other.lock();
        (!other.url.is_empty() && other.until_ms > self.store.clock.now_ms())
            .then(|| other.url.clone())
    }

    /// What a standby says in the `weir-lease-holder` header: the holder's URL, or
    /// nothing (an empty value) when it knows of no live holder that said where it
    /// serves. `None` on the holder.
    pub fn redirect(&self) -> Option<String> {
        if self.holds() {
            return None;
        }
        Some(self.holder_url().unwrap_or_default())
    }

    /// Who holds the lease, for people (`/readyz`): this instance or another, by name.
    pub fn describe(&self) -> String {
        if self.holds() {
            return format!("{} holds the sequencer lease", self.holder);
        }
        match self.holder_url() {
            Some(url) => format!("standby: the sequencer lease is held by the instance at {url}"),
            None => "standby: no live instance is known to hold the sequencer lease".to_string(),
        }
    }

    /// Whether this instance holds the lease, as of its last renewal: no store read,
    /// for checks on every request (the group coordinator's).
    pub fn holds(&self) -> bool {
        self.held_until_ms.load(Ordering::Acquire) > self.store.clock.now_ms()
    }

    async fn read(&self, tx: &Transaction, snapshot: bool) -> Result<Option<LeaseRecord>> {
        let key = self.store.ks.lease(SEQUENCER);
        let value = if snapshot {
            tx.snapshot_get(&key).await?
        } else {
            tx.get(&key).await?
        };
        Ok(match value {
            Some(value) => Some(keyspace::decode(&key, &value)?),
            None => None,
        })
    }

    /// The lease as the store has it now: a round trip to the metadata store.
    pub async fn read_record(&self) -> Result<Option<LeaseRecord>> {
        self.store
            .db
            .run(|tx| async move { self.read(&tx, true).await })
            .await
    }

    /// Takes the lease if it is free, expired or ours, and extends it.
    pub async fn acquire_or_renew(&self) -> Result<LeaseStatus> {
        let status = self.try_acquire().await?;
        let until = match &status {
            LeaseStatus::Held { until_ms } => *until_ms,
            LeaseStatus::Standby {
                holder_url,
                until_ms,
                ..
            } => {
                *self.other.lock() = OtherHolder {
                    url: holder_url.clone(),
                    until_ms: *until_ms,
                };
                0
            }
        };
        self.held_until_ms.store(until, Ordering::Release);
        Ok(status)
    }

    async fn try_acquire(&self) -> Result<LeaseStatus> {
        self.store
            .db
            .run(|tx| async move {
                let now = self.store.clock.now_ms();
                match self.read(&tx, false).await? {
                    Some(current)
                        if *current.holder != *self.holder && current.expires_ms > now =>
                    {
                        Ok(LeaseStatus::Standby {
                            holder: current.holder,
                            holder_url: current.holder_url,
                            until_ms: current.expires_ms,
                        })
                    }
                    _ => {
                        let until_ms = now + self.ttl_ms;
                        let record = LeaseRecord {
                            holder: self.holder.to_string(),
                            expires_ms: until_ms,
                            holder_url: self.url.to_string(),
                        };
                        tx.set(&self.store.ks.lease(SEQUENCER), &keyspace::encode(&record));
                        Ok(LeaseStatus::Held { until_ms })
                    }
                }
            })
            .await
    }

    /// Fails unless this instance holds the lease. A snapshot read: renewals do not make
    /// commits conflict.
    pub async fn check(&self, tx: &Transaction) -> Result<()> {
        let now = self.store.clock.now_ms();
        match self.read(tx, true).await? {
            Some(current) if *current.holder == *self.holder && current.expires_ms > now => Ok(()),
            Some(current) => Err(Error::Standby {
                remaining_ms: (current.expires_ms - now).max(0),
                holder: current.holder,
            }),
            None => Err(Error::Standby {
                holder: String::new(),
                remaining_ms: 0,
            }),
        }
    }

    /// Gives the lease up, if held, so a standby can take over without waiting.
    pub async fn release(&self) -> Result<()> {
        self.held_until_ms.store(0, Ordering::Release);
        self.store
            .db
            .run(|tx| async move {
                if let Some(current) = self.read(&tx, false).await?
                    && *current.holder == *self.holder
                {
                    tx.clear(&self.store.ks.lease(SEQUENCER));
                }
                Ok(())
            })
            .await
    }

    /// Renews (or tries to take) the lease every third of its lifetime until cancelled,
    /// then releases it.
    pub fn spawn_renewal(self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let period = Duration::from_millis((self.ttl_ms / 3).max(1) as u64);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The holder last seen: `None` for this instance.
            let mut last: Option<Option<String>> = None;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                match self.acquire_or_renew().await {
                    Ok(status) => {
                        let holder = match &status {
                            LeaseStatus::Held { .. } => None,
                            LeaseStatus::Standby { holder, .. } => Some(holder.clone()),
                        };
                        if last.as_ref() != Some(&holder) {
                            match &holder {
                                None => {
                                    tracing::info!(instance = %self.holder, "took the sequencer lease")
                                }
                                Some(other) => {
                                    tracing::info!(instance = %self.holder, holder = %other, "standing by for the sequencer lease")
                                }
                            }
                        }
                        last = Some(holder);
                    }
                    Err(err) => tracing::warn!(error = %err, "renew sequencer lease"),
                }
            }
            if let Err(err) = self.release().await {
                tracing::warn!(error = %err, "release sequencer lease");
            }
        })
    }
}
