//! The agent's view of topics: names, ids and partition counts, read from the control
//! plane and kept for a few seconds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use weir_control_plane_api::ControlPlaneClient;
/// A topic as the agent uses it: as the control plane keeps it.
pub use weir_control_plane_api::admin::Topic as TopicInfo;
use weir_metadata::TopicId;

use crate::error::Result;

const FRESH_FOR: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct TopicCache {
    control: ControlPlaneClient,
    known: RwLock<Known>,
}

#[derive(Debug, Default)]
struct Known {
    by_name: HashMap<String, (Arc<TopicInfo>, Instant)>,
    by_id: HashMap<TopicId, (Arc<TopicInfo>, Instant)>,
}

impl TopicCache {
    pub fn new(control: ControlPlaneClient) -> Self {
        TopicCache {
            control,
            known: RwLock::new(Known::default()),
        }
    }

    pub fn remember(&self, topic: TopicInfo) -> Arc<TopicInfo> {
        let topic = Arc::new(topic);
        let now = Instant::now();
        let mut known = self.known.write();
        known
            .by_name
            .insert(topic.name.clone(), (topic.clone(), now));
        known.by_id.insert(topic.id, (topic.clone(), now));
        topic
    }

    pub fn forget(&self, topic: &TopicInfo) {
        let mut known = self.known.write();
        known.by_name.remove(&topic.name);
        known.by_id.remove(&topic.id);
    }

    fn fresh_name(&self, name: &str) -> Option<Arc<TopicInfo>> {
        let known = self.known.read();
        known
            .by_name
            .get(name)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(t, _)| t.clone())
    }

    fn fresh_id(&self, id: TopicId) -> Option<Arc<TopicInfo>> {
        let known = self.known.read();
        known
            .by_id
            .get(&id)
            .filter(|(_, at)| at.elapsed() < FRESH_FOR)
            .map(|(t, _)| t.clone())
    }

    /// Topics by name; `None` for those that do not exist.
    pub async fn by_names(&self, names: &[String]) -> Result<Vec<Option<Arc<TopicInfo>>>> {
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.fresh_name(n).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.describe(missing, Vec::new()).await?;
        }
        Ok(names.iter().map(|n| self.fresh_name(n)).collect())
    }

    pub async fn by_name(&self, name: &str) -> Result<Option<Arc<TopicInfo>>> {
        Ok(self.by_names(&[name.to_string()]).await?.pop().flatten())
    }

    pub async fn by_id(&self, id: TopicId) -> Result<Option<Arc<TopicInfo>>> {
        if let Some(topic) = self.fresh_id(id) {
            return Ok(Some(topic));
        }
        self.describe(Vec::new(), vec![id]).await?;
        Ok(self.fresh_id(id))
    }

    async fn describe(&self, names: Vec<String>, ids: Vec<TopicId>) -> Result<()> {
        for topic in self.control.describe_topics(names, ids).await? {
            self.remember(topic);
        }
        Ok(())
    }

    /// Every topic, freshly listed.
    pub async fn all(&self) -> Result<Vec<Arc<TopicInfo>>> {
        let topics = self.control.list_topics().await?;
        Ok(topics.into_iter().map(|t| self.remember(t)).collect())
    }
}
