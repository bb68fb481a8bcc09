//! Dereferenced objects leave the bucket: agents claim the deletions that are due,
//! delete the objects, and confirm; only then are the objects' records cleared
//! (docs/lifecycle.md, "Deletion after a grace period").

use weir_metadata::ObjectId;
use weir_metadata::keyspace::{self, ObjectRecord};

use crate::error::Result;
use crate::store::Store;

/// Deletions handed out per claim, at most.
pub const MAX_CLAIM: usize = 1_000;

/// An object to delete from the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub object: ObjectId,
    /// Its key, relative to the agents' bucket prefix.
    pub key: String,
}

/// Hands out up to `limit` deletions that are due, each moved `claim_ms` ahead so that
/// a claimant that dies leaves it to the next.
pub async fn claim(store: &Store, limit: usize, claim_ms: i64) -> Result<Vec<Deletion>> {
    let limit = limit.clamp(1, MAX_CLAIM);
    store
        .db
        .run(|tx| async move {
            let ks = &store.ks;
            let now_ms = store.clock.now_ms();
            let due = tx.get_range(&ks.deletions_due(now_ms).limit(limit)).await?;
            let mut claimed = Vec::with_capacity(due.len());
            for kv in due {
                let (_, object) = ks.deletion_of_key(&kv.key)?;
                tx.clear(&kv.key);
                let key = ks.object(object);
                let Some(value) = tx.get(&key).await? else {
                    continue;
                };
                let mut record: ObjectRecord = keyspace::decode(&key, &value)?;
                record.deletion_due_ms = now_ms.saturating_add(claim_ms);
                tx.set(&ks.deletion(record.deletion_due_ms, object), &[]);
                tx.set(&key, &keyspace::encode(&record));
                claimed.push(Deletion {
                    object,
                    key: record.key,
                });
            }
            Ok::<_, crate::Error>(claimed)
        })
        .await
}

/// Forgets objects an agent deleted from the bucket: their records, commit answers and
/// queue keys. An object referenced again (it cannot be: nothing adds entries to an
/// object once it is dereferenced) or never dereferenced is left alone. Returns how
/// many were forgotten.
pub async fn confirm(store: &Store, objects: &[ObjectId]) -> Result<u64> {
    store
        .db
        .run(|tx| async move {
            let ks = &store.ks;
            let mut forgotten = 0i64;
            for &object in objects {
                let key = ks.object(object);
                let Some(value) = tx.get(&key).await? else {
                    continue;
                };
                let record: ObjectRecord = keyspace::decode(&key, &value)?;
                if record.dereferenced_ms == 0 {
                    tracing::error!(%object, "an agent confirmed the deletion of a referenced object");
                    continue;
                }
                tx.clear(&ks.deletion(record.deletion_due_ms, object));
                tx.clear(&key);
                let results = ks.object_results_of(object);
                tx.clear_range(&results.begin, &results.end);
                forgotten += 1;
            }
            tx.atomic_add(&ks.count(super::entries::DELETIONS_PENDING), -forgotten);
            Ok::<_, crate::Error>(forgotten as u64)
        })
        .await
}
