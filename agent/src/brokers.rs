//! Which agents a client is told about: the live agents of its zone, as Kafka brokers.
//! Every agent derives the same node ids and partition leaders from the same list, so
//! clients see one consistent cluster whichever agent they ask.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use weir_control_plane_api::ControlPlaneClient;

const FRESH_FOR: Duration = Duration::from_secs(2);
/// A Metadata request waits at most this long for the registry before it is answered
/// from the last list known.
const LIST_TIMEOUT: Duration = Duration::from_secs(1);

/// An agent as a Kafka broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub zone: String,
}

/// A stable, positive Kafka node id for an agent id.
pub fn node_id(agent_id: &[u8]) -> i32 {
    (crc32c::crc32c(agent_id) & 0x7fff_ffff) as i32
}

/// The broker that leads `partition` of a topic: spread by hash, the same on every agent.
pub fn leader<'a>(brokers: &'a [Broker], topic: &[u8], partition: i32) -> Option<&'a Broker> {
    if brokers.is_empty() {
        return None;
    }
    // A hash that is the same in every build, so agents of different versions agree.
    let hash = crc32c::crc32c_append(crc32c::crc32c(topic), &partition.to_be_bytes());
    Some(&brokers[(hash as usize) % brokers.len()])
}

#[derive(Debug)]
pub struct Brokers {
    control: ControlPlaneClient,
    this: Broker,
    live: Mutex<Option<(Instant, Arc<Vec<Broker>>)>>,
}

impl Brokers {
    pub fn new(control: ControlPlaneClient, this: Broker) -> Self {
        Brokers {
            control,
            this,
            live: Mutex::new(None),
        }
    }

    pub fn this(&self) -> &Broker {
        &self.this
    }

    /// The live agents of `zone`, sorted by node id; always including this agent when
    /// it is in that zone. If the registry cannot be read: the last list read, or this
    /// agent alone before any.
    pub async fn in_zone(&self, zone: &str) -> Arc<Vec<Broker>> {
        let all = self.all().await;
        let in_zone: Vec<Broker> = all.iter().filter(|b| b.zone == zone).cloned().collect();
        if in_zone.is_empty() {
            // A zone without agents: serve the client from this agent's zone.
            return all;
        }
        Arc::new(in_zone)
    }

    /// Reads the agent list again if the one known is stale, so that it is there to
    /// fall back on when the registry cannot be read.
    pub async fn refresh(&self) {
        self.all().await;
    }

    async fn all(&self) -> Arc<Vec<Broker>> {
        if let Some((at, brokers)) = self.live.lock().as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return brokers.clone();
        }
        let listed = match tokio::time::timeout(LIST_TIMEOUT, self.control.list_agents()).await {
            Ok(listed) => listed,
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "no answer within {LIST_TIMEOUT:?}"
            ))),
        };
        let mut brokers: Vec<Broker> = match listed {
            Ok(agents) => agents
                .into_iter()
                .filter_map(|a| {
                    let (host, port) = a.address.rsplit_once(':')?;
                    Some(Broker {
                        node_id: node_id(&a.id),
                        host: host.to_string(),
                        port: port.parse().ok()?,
                        zone: a.zone,
                    })
                })
                .collect(),
            Err(status) => {
                // The last list known, rather than this agent alone: an agent cut off
                // from the control plane cannot commit, and must not draw every
                // partition's producers to itself. It is asked again on the next call.
                if let Some((_, last)) = self.live.lock().as_ref() {
                    tracing::warn!(error = %status, "list agents; answering with the last list known");
                    return last.clone();
                }
                tracing::warn!(error = %status, "list agents; answering with this agent only");
                Vec::new()
            }
        };
        if !brokers.iter().any(|b| b.node_id == self.this.node_id) {
            brokers.push(self.this.clone());
        }
        brokers.sort_by_key(|b| b.node_id);
        brokers.dedup_by_key(|b| b.node_id);
        let brokers = Arc::new(brokers);
        *self.live.lock() = Some((Instant::now(), brokers.clone()));
        brokers
    }
}

/// The zone a client states in its client id (`…weir_az=<zone>…`), as WarpStream's `ws_az=`.
pub fn client_zone(client_id: Option<&str>) -> Option<&str> {
    let client_id = client_id?;
    let start = client_id.find("weir_az=")? + "weir_az=".len();
    let rest = &client_id[start..];
    let end = rest.find([',', ';', ' ', '&']).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_read_from_client_ids() {
        assert_eq!(
            client_zone(Some("app,weir_az=us-east-1a")),
            Some("us-east-1a")
        );
        assert_eq!(client_zone(Some("weir_az=b;other")), Some("b"));
        assert_eq!(client_zone(Some("plain")), None);
        assert_eq!(client_zone(Some("weir_az=")), None);
        assert_eq!(client_zone(None), None);
    }

    #[test]
    fn leaders_are_spread_and_stable() {
        let brokers: Vec<Broker> = (0..3)
            .map(|i| Broker {
                node_id: i,
                host: "h".into(),
                port: 1,
                zone: "z".into(),
            })
            .collect();
        let leaders: std::collections::BTreeSet<i32> = (0..64)
            .filter_map(|p| leader(&brokers, b"t", p))
            .map(|b| b.node_id)
            .collect();
        assert_eq!(leaders.len(), 3, "64 partitions land on every broker");
        assert_eq!(leader(&brokers, b"t", 5), leader(&brokers, b"t", 5));
        assert!(leader(&[], b"t", 0).is_none());
    }
}
