//! Where objects live in the bucket: `<prefix>/data/<ulid>.weir`, named by an
//! [`ObjectId`] whose ULID carries the time it was made. The writer, the reader and the
//! garbage collector all go through here.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::ObjectStore;
use object_store::path::Path;
use weir_metadata::ObjectId;

/// Where objects go.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
}

impl Bucket {
    /// The key of an object, relative to the prefix: `data/<ulid>.weir`.
    pub fn relative_key(id: ObjectId) -> String {
        format!("data/{}.weir", id.0)
    }

    pub fn path(&self, id: ObjectId) -> Path {
        self.prefix.child("data").child(format!("{}.weir", id.0))
    }

    /// The path of `key`, relative to the prefix, as the control plane names objects.
    pub fn key_path(&self, key: &str) -> Path {
        self.prefix.parts().chain(Path::from(key).parts()).collect()
    }
}

/// The object id of `<prefix>/data/<ulid>.weir`.
pub fn object_id(path: &Path) -> Option<ObjectId> {
    let name = path.filename()?.strip_suffix(".weir")?;
    name.parse::<ulid::Ulid>().ok().map(ObjectId)
}

/// How old an object id is by the local clock: the writer refuses to commit objects
/// older than its produce timeout, so that garbage collection cannot race a commit.
pub fn id_age(id: ObjectId) -> Duration {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Duration::from_millis(now_ms.saturating_sub(id.0.timestamp_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_the_path_of_its_object_under_any_prefix() {
        let id = ObjectId::new();
        for prefix in ["", "cluster", "cluster/weir"] {
            let bucket = Bucket {
                store: Arc::new(object_store::memory::InMemory::new()),
                prefix: Path::from(prefix),
            };
            let path = bucket.key_path(&Bucket::relative_key(id));
            assert_eq!(path, bucket.path(id), "prefix {prefix:?}");
            assert_eq!(object_id(&path), Some(id));
        }
    }
}
