//! Compaction jobs, on the control plane's side: planning them from the candidates of
//! each level, leasing them to agents, and swapping the inputs' index entries for the
//! outputs' when an agent commits (docs/lifecycle.md, "Compaction").
//!
//! The swap is a compare-and-swap per run of consecutive offsets: a run is swapped only
//! if the index over its offsets is exactly the entries the job was given, so
//! retention, DeleteRecords or a topic deletion racing a job can never bring back data
//! they removed; a run they touched is skipped, its copy in the output never referenced.

use std::collections::BTreeSet;
use std::time::Duration;

use weir_control_plane_api::data::IndexEntry as ApiEntry;
use weir_control_plane_api::jobs::{InputEntry, Job, JobCommitted, JobInput, JobOutput, OutputRun};
use weir_metadata::keyspace::{self, IndexEntry, JobRecord, ObjectRecord, PartitionRecord};
use weir_metadata::{
    AgentId, JobId, ObjectId, Offset, Partition, TopicId, Transaction, decode_counter,
};

use super::entries::{self, entry_object, last_offset};
use crate::error::{ItemError, Result};
use crate::proto::ErrorCode;
use crate::store::Store;

/// The planner's settings.
#[derive(Clone, Debug)]
pub struct CompactionConfig {
    /// Objects merged by one job, at most; also how many must wait at a level (but
    /// level 0, see `max_wait`) before a job is planned.
    pub fan_in: usize,
    /// A level-0 job is planned once the oldest candidate is this old, however few wait.
    pub max_wait: Duration,
    /// Input bytes of one job, at most, by the level of its inputs.
    pub max_job_bytes: [u64; 2],
    /// Jobs planned and not finished, at most.
    pub max_jobs: usize,
    /// How long a claimed job's lease lasts without renewal.
    pub lease: Duration,
    /// Level-0 candidates past which produce answers are delayed, and past which
    /// produce is refused (docs/lifecycle.md, "Keeping up").
    pub backlog_soft: u64,
    pub backlog_hard: u64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            fan_in: 32,
            max_wait: Duration::from_secs(30),
            max_job_bytes: [256 << 20, 2 << 30],
            max_jobs: 8,
            lease: Duration::from_secs(60),
            backlog_soft: 10_000,
            backlog_hard: 50_000,
        }
    }
}

/// The highest level: its objects are never merged again.
pub const TOP_LEVEL: u32 = 2;

/// Runs swapped per transaction, at most (each touches a few keys per entry).
const RUNS_PER_TRANSACTION: usize = 256;

fn job_lost(message: impl Into<String>) -> ItemError {
    ItemError::new(ErrorCode::JobLost, message)
}

/// Plans at most one job of inputs at `level`; returns it if one was planned.
pub async fn plan(store: &Store, config: &CompactionConfig, level: u32) -> Result<Option<JobId>> {
    if level >= TOP_LEVEL {
        return Ok(None);
    }
    let id = JobId::new();
    store
        .db
        .run(|tx| async move {
            let ks = &store.ks;
            let jobs = tx
                .snapshot_get_range(&ks.jobs().limit(config.max_jobs))
                .await?;
            if jobs.len() >= config.max_jobs {
                return Ok(None);
            }
            let candidates = tx
                .get_range(&ks.candidates(level).limit(config.fan_in))
                .await?;
            if candidates.len() < 2 {
                return Ok(None);
            }
            let now_ms = store.clock.now_ms();
            let oldest = ks.candidate_of_key(&candidates[0].key)?;
            let waited = now_ms.saturating_sub(oldest.0.timestamp_ms() as i64);
            let due = candidates.len() >= config.fan_in
                || (level == 0 && waited >= config.max_wait.as_millis() as i64);
            if !due {
                return Ok(None);
            }
            let max_bytes = config.max_job_bytes[level as usize];
            let mut inputs = Vec::new();
            let mut input_sizes = Vec::new();
            let mut input_bytes = 0u64;
            for kv in &candidates {
                let size = decode_counter(&kv.value).max(0) as u64;
                if !inputs.is_empty() && input_bytes + size > max_bytes {
                    break;
                }
                let object = ks.candidate_of_key(&kv.key)?;
                entries::candidate_taken(&tx, store, object, level);
                inputs.push(object.to_bytes().to_vec());
                input_sizes.push(size);
                input_bytes += size;
            }
            if inputs.len() < 2 {
                return Ok(None);
            }
            let record = JobRecord {
                inputs,
                input_sizes,
                output_level: level + 1,
                planned_ms: now_ms,
                input_bytes,
                ..JobRecord::default()
            };
            tx.set(&ks.job(id), &keyspace::encode(&record));
            Ok::<_, crate::Error>(Some(id))
        })
        .await
}

/// Leases the next job nobody runs (or whose lease expired) to `agent`, with the entries
/// still naming its inputs. A job with nothing left to merge is ended on the way.
pub async fn claim(
    store: &Store,
    config: &CompactionConfig,
    agent: AgentId,
) -> Result<Option<Job>> {
    loop {
        let claimed = store
            .db
            .run(|tx| async move {
                let ks = &store.ks;
                let now_ms = store.clock.now_ms();
                for kv in tx.get_range(&ks.jobs().limit(100)).await? {
                    let mut record: JobRecord = keyspace::decode(&kv.key, &kv.value)?;
                    if !record.holder.is_empty() && record.lease_expires_ms > now_ms {
                        continue;
                    }
                    record.attempt += 1;
                    record.holder = agent.to_string();
                    record.lease_expires_ms =
                        now_ms.saturating_add(config.lease.as_millis() as i64);
                    tx.set(&kv.key, &keyspace::encode(&record));
                    return Ok::<_, crate::Error>(Some((ks.job_of_key(&kv.key)?, record)));
                }
                Ok(None)
            })
            .await?;
        let Some((id, record)) = claimed else {
            return Ok(None);
        };
        let mut inputs = Vec::with_capacity(record.inputs.len());
        for input in &record.inputs {
            let object = ObjectId::from_slice(input)
                .map_err(|e| weir_metadata::Error::corrupt(&store.ks.job(id), e))?;
            if let Some(input) = read_input(store, object).await? {
                inputs.push(input);
            }
        }
        let job = Job {
            id,
            attempt: record.attempt,
            output_level: record.output_level,
            lease: config.lease,
            inputs,
        };
        if job.inputs.iter().any(|i| !i.entries.is_empty()) {
            return Ok(Some(job));
        }
        // Everything it would have merged is gone: end it, and look for another. (If it
        // was taken over meanwhile, the taker ends it.)
        let _ = finish(store, &job, agent, &[]).await?;
    }
}

/// An input object with every index entry naming it, or `None` if it was dereferenced.
/// Entries never change in place, so a snapshot read is enough: the swap checks them.
async fn read_input(store: &Store, object: ObjectId) -> Result<Option<JobInput>> {
    store
        .db
        .run(|tx| async move {
            let ks = &store.ks;
            let key = ks.object(object);
            let Some(value) = tx.snapshot_get(&key).await? else {
                return Ok(None);
            };
            let record: ObjectRecord = keyspace::decode(&key, &value)?;
            if record.dereferenced_ms != 0 {
                return Ok(None);
            }
            let mut found = Vec::new();
            let mut range = Some(ks.object_refs(object));
            while let Some(r) = range {
                let page = tx.get_range_page(&r, true).await?;
                for kv in &page.kvs {
                    let (topic, partition, last) = ks.object_ref_entry(&kv.key)?;
                    let entry_key = ks.index_entry(topic, partition, last);
                    let Some(value) = tx.snapshot_get(&entry_key).await? else {
                        continue;
                    };
                    let entry: IndexEntry = keyspace::decode(&entry_key, &value)?;
                    found.push(InputEntry {
                        topic,
                        partition,
                        entry: api_entry(&entry, object),
                    });
                }
                range = r.next_page(&page);
            }
            Ok::<_, crate::Error>(Some(JobInput {
                object,
                key: record.key,
                size: record.size,
                entries: found,
            }))
        })
        .await
}

fn api_entry(entry: &IndexEntry, object: ObjectId) -> ApiEntry {
    ApiEntry {
        object,
        object_size: entry.object_size,
        position: entry.position,
        length: entry.length,
        base_offset: Offset(entry.base_offset),
        record_count: entry.record_count,
        max_timestamp: entry.max_timestamp,
        batch_count: entry.batch_count,
    }
}

/// The job record, if `agent` still holds `attempt` of it.
async fn held(
    tx: &Transaction,
    store: &Store,
    job: JobId,
    attempt: u32,
    agent: AgentId,
) -> Result<Result<JobRecord, ItemError>> {
    let key = store.ks.job(job);
    let Some(value) = tx.get(&key).await? else {
        return Ok(Err(job_lost(format!("job {job} no longer exists"))));
    };
    let record: JobRecord = keyspace::decode(&key, &value)?;
    let now_ms = store.clock.now_ms();
    if record.attempt != attempt || record.holder != agent.to_string() {
        return Ok(Err(job_lost(format!(
            "job {job} attempt {attempt} was taken over (now attempt {} by {:?})",
            record.attempt, record.holder
        ))));
    }
    if record.lease_expires_ms <= now_ms {
        return Ok(Err(job_lost(format!(
            "the lease of job {job} attempt {attempt} expired {} ms ago",
            now_ms - record.lease_expires_ms
        ))));
    }
    Ok(Ok(record))
}

/// Extends `agent`'s lease of a job; `false` when it no longer holds it.
pub async fn renew(
    store: &Store,
    config: &CompactionConfig,
    job: JobId,
    attempt: u32,
    agent: AgentId,
) -> Result<bool> {
    store
        .db
        .run(|tx| async move {
            let mut record = match held(&tx, store, job, attempt, agent).await? {
                Ok(record) => record,
                Err(_) => return Ok::<_, crate::Error>(false),
            };
            record.lease_expires_ms = store
                .clock
                .now_ms()
                .saturating_add(config.lease.as_millis() as i64);
            tx.set(&store.ks.job(job), &keyspace::encode(&record));
            Ok(true)
        })
        .await
}

/// Gives a job back: another agent may claim it at once.
pub async fn give_back(store: &Store, job: JobId, attempt: u32, agent: AgentId) -> Result<()> {
    store
        .db
        .run(|tx| async move {
            if let Ok(mut record) = held(&tx, store, job, attempt, agent).await? {
                record.holder.clear();
                record.lease_expires_ms = 0;
                tx.set(&store.ks.job(job), &keyspace::encode(&record));
            }
            Ok::<_, crate::Error>(())
        })
        .await
}

/// A job as its record names it (inputs without their entries), if `attempt` is its
/// current attempt: what a commit needs to know of it.
pub async fn claimed(store: &Store, job: JobId, attempt: u32) -> Result<Option<Job>> {
    store
        .db
        .run(|tx| async move {
            let key = store.ks.job(job);
            let Some(value) = tx.snapshot_get(&key).await? else {
                return Ok::<_, crate::Error>(None);
            };
            let record: JobRecord = keyspace::decode(&key, &value)?;
            if record.attempt != attempt {
                return Ok(None);
            }
            let inputs = record
                .inputs
                .iter()
                .map(|id| {
                    Ok(JobInput {
                        object: ObjectId::from_slice(id)
                            .map_err(|e| weir_metadata::Error::corrupt(&key, e))?,
                        key: String::new(),
                        size: 0,
                        entries: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Job {
                id: job,
                attempt,
                output_level: record.output_level,
                lease: Duration::ZERO,
                inputs,
            }))
        })
        .await
}

/// Partitions a commit changed, with their records after it.
pub type Touched = Vec<(TopicId, Partition, PartitionRecord)>;

/// What a job's commit did.
#[derive(Debug, Default)]
pub struct Swapped {
    pub committed: JobCommitted,
    pub partitions: Touched,
    /// Inputs left without an index entry naming them, queued for deletion.
    pub dereferenced: u64,
}

/// Swaps the outputs' entries in for the inputs', run by run, then ends the job.
pub async fn commit(
    store: &Store,
    job: &Job,
    agent: AgentId,
    outputs: &[JobOutput],
    max_output_age: Duration,
) -> Result<Result<Swapped, ItemError>> {
    let inputs: BTreeSet<ObjectId> = job.inputs.iter().map(|i| i.object).collect();
    let now_ms = store.clock.now_ms();
    for output in outputs {
        let age = now_ms.saturating_sub(output.object.0.timestamp_ms() as i64);
        if age > i64::try_from(max_output_age.as_millis()).unwrap_or(i64::MAX) {
            return Ok(Err(ItemError::new(
                ErrorCode::ObjectTooOld,
                format!(
                    "output {} is {age} ms old, past the {} ms after which the orphan sweep may take it",
                    output.object,
                    max_output_age.as_millis()
                ),
            )));
        }
        if inputs.contains(&output.object) {
            return Ok(Err(ItemError::new(
                ErrorCode::InvalidRequest,
                format!("output {} is one of the job's inputs", output.object),
            )));
        }
    }
    let mut swapped_all = Swapped::default();
    for output in outputs {
        for chunk in output.runs.chunks(RUNS_PER_TRANSACTION) {
            let swapped = store
                .db
                .run(|tx| {
                    let inputs = &inputs;
                    async move {
                        if let Err(lost) = held(&tx, store, job.id, job.attempt, agent).await? {
                            return Ok::<_, crate::Error>(Err(lost));
                        }
                        let mut done = JobCommitted::default();
                        let mut touched = BTreeSet::new();
                        let mut partitions = Touched::new();
                        for run in chunk {
                            match swap_run(&tx, store, output, run, inputs, job.output_level)
                                .await?
                            {
                                Some((bytes, record)) => {
                                    done.runs_swapped += 1;
                                    done.bytes_swapped += bytes;
                                    touched.extend(run.replaces.iter().map(|(_, o)| *o));
                                    partitions.push((run.topic, run.partition, record));
                                }
                                None => done.runs_skipped += 1,
                            }
                        }
                        let mut dereferenced = 0;
                        for object in touched {
                            if entries::dereference_if_unreferenced(
                                &tx,
                                store,
                                object,
                                store.delete_grace_ms,
                            )
                            .await?
                            {
                                dereferenced += 1;
                            }
                        }
                        Ok(Ok((done, partitions, dereferenced)))
                    }
                })
                .await?;
            match swapped {
                Ok((done, partitions, dereferenced)) => {
                    let all = &mut swapped_all;
                    all.partitions.extend(partitions);
                    all.dereferenced += dereferenced;
                    all.committed.runs_swapped += done.runs_swapped;
                    all.committed.runs_skipped += done.runs_skipped;
                    all.committed.bytes_swapped += done.bytes_swapped;
                }
                Err(lost) => return Ok(Err(lost)),
            }
        }
    }
    if let Err(lost) = finish(store, job, agent, outputs).await? {
        return Ok(Err(lost));
    }
    Ok(Ok(swapped_all))
}

/// Swaps one run if the index over its offsets is exactly what it replaces; returns the
/// bytes swapped and the partition's record, or `None` when it was left alone.
async fn swap_run(
    tx: &Transaction,
    store: &Store,
    output: &JobOutput,
    run: &OutputRun,
    inputs: &BTreeSet<ObjectId>,
    level: u32,
) -> Result<Option<(u64, PartitionRecord)>> {
    let (Some((first_last, _)), Some((last, _))) = (run.replaces.first(), run.replaces.last())
    else {
        return Ok(None);
    };
    let ks = &store.ks;
    let (topic, partition) = (run.topic, run.partition);
    let current = tx
        .get_range(
            &ks.index_between(topic, partition, *first_last, *last)
                .limit(run.replaces.len() + 1),
        )
        .await?;
    if current.len() != run.replaces.len() {
        return Ok(None);
    }
    let mut replaced = Vec::with_capacity(current.len());
    for (kv, (want_last, want_object)) in current.iter().zip(&run.replaces) {
        let entry: IndexEntry = keyspace::decode(&kv.key, &kv.value)?;
        let object = entry_object(&entry, &kv.key)?;
        if last_offset(&entry) != *want_last || object != *want_object || !inputs.contains(&object)
        {
            return Ok(None);
        }
        replaced.push((entry, object));
    }
    // The run must start where its first replaced entry starts, and the new entries
    // must tile exactly the same offsets with the same bytes.
    let base = replaced[0].0.base_offset;
    let old_bytes: u64 = replaced.iter().map(|(e, _)| e.length).sum();
    let new_bytes: u64 = run.entries.iter().map(|e| e.length).sum();
    let mut next = base;
    for e in &run.entries {
        if e.base_offset.0 != next || e.record_count <= 0 || e.length == 0 {
            next = i64::MIN;
            break;
        }
        next += e.record_count;
    }
    if next != last.0 + 1 || old_bytes != new_bytes {
        tracing::error!(
            job_output = %output.object,
            %topic,
            %partition,
            "a compaction run does not tile the offsets it replaces; left alone"
        );
        return Ok(None);
    }
    let Some(mut partition_state) = entries::partition_record(tx, store, topic, partition).await?
    else {
        return Ok(None);
    };
    for (entry, object) in &replaced {
        let last = last_offset(entry);
        tx.clear(&ks.index_entry(topic, partition, last));
        tx.clear(&ks.object_ref(*object, topic, partition, last));
        tx.atomic_add(&ks.count(entries::INDEX_ENTRIES), -1);
    }
    let mut added = Vec::with_capacity(run.entries.len());
    for e in &run.entries {
        let entry = IndexEntry {
            object_id: output.object.to_bytes().to_vec(),
            position: e.position,
            length: e.length,
            base_offset: e.base_offset.0,
            record_count: e.record_count,
            max_timestamp: e.max_timestamp,
            batch_count: e.batch_count,
            object_size: output.size,
        };
        entries::add_entry(tx, store, topic, partition, &entry, output.object);
        added.push(entry);
    }
    // The partition's head changes when the run replaced its first entry.
    if partition_state.first_end == replaced[0].0.base_offset + replaced[0].0.record_count {
        entries::set_head(&mut partition_state, added.first());
        tx.set(
            &ks.partition(topic, partition),
            &keyspace::encode(&partition_state),
        );
    }
    ensure_output_record(tx, store, output, level).await?;
    Ok(Some((new_bytes, partition_state)))
}

/// Writes the output's object record the first time one of its runs is swapped in.
async fn ensure_output_record(
    tx: &Transaction,
    store: &Store,
    output: &JobOutput,
    level: u32,
) -> Result<()> {
    let key = store.ks.object(output.object);
    if tx.get(&key).await?.is_some() {
        return Ok(());
    }
    let record = ObjectRecord {
        key: output.key.clone(),
        size: output.size,
        live_bytes: output.size,
        created_ms: store.clock.now_ms(),
        batch_count: output.batch_count,
        level,
        ..ObjectRecord::default()
    };
    tx.set(&key, &keyspace::encode(&record));
    Ok(())
}

/// Ends a job: inputs still referenced (a run skipped) wait for compaction again, the
/// others leave the backlog; outputs below the top level join it; the job record goes.
async fn finish(
    store: &Store,
    job: &Job,
    agent: AgentId,
    outputs: &[JobOutput],
) -> Result<Result<(), ItemError>> {
    store
        .db
        .run(|tx| async move {
            let record = match held(&tx, store, job.id, job.attempt, agent).await? {
                Ok(record) => record,
                Err(lost) => return Ok::<_, crate::Error>(Err(lost)),
            };
            let key = store.ks.job(job.id);
            let level = record.output_level.saturating_sub(1);
            for (i, input) in record.inputs.iter().enumerate() {
                let object = ObjectId::from_slice(input)
                    .map_err(|e| weir_metadata::Error::corrupt(&key, e))?;
                let size = record.input_sizes.get(i).copied().unwrap_or(0);
                if still_waits(&tx, store, object).await? {
                    entries::candidate_returned(&tx, store, object, level, size);
                } else {
                    entries::count_pending(&tx, store, level, -1, size);
                }
            }
            for output in outputs {
                if still_waits(&tx, store, output.object).await? {
                    entries::candidate(&tx, store, output.object, job.output_level, output.size);
                }
            }
            tx.clear(&key);
            Ok(Ok(()))
        })
        .await
}

/// Whether a live object below the top level is left to merge.
async fn still_waits(tx: &Transaction, store: &Store, object: ObjectId) -> Result<bool> {
    let key = store.ks.object(object);
    let Some(value) = tx.get(&key).await? else {
        return Ok(false);
    };
    let record: ObjectRecord = keyspace::decode(&key, &value)?;
    Ok(record.dereferenced_ms == 0 && record.level < TOP_LEVEL)
}

/// How many objects wait at each level below the top, with their bytes and the oldest's
/// age in milliseconds.
pub async fn backlog(store: &Store) -> Result<Vec<(u32, i64, i64, i64)>> {
    store
        .db
        .run(|tx| async move {
            let ks = &store.ks;
            let now_ms = store.clock.now_ms();
            let mut levels = Vec::new();
            for level in 0..TOP_LEVEL {
                let (objects, bytes) = entries::candidate_counters(level);
                let count = |name: String| {
                    let tx = tx.clone();
                    async move {
                        Ok::<_, crate::Error>(
                            tx.snapshot_get(&ks.count(&name))
                                .await?
                                .map_or(0, |v| decode_counter(&v)),
                        )
                    }
                };
                let oldest = tx
                    .snapshot_get_range(&ks.candidates(level).limit(1))
                    .await?
                    .first()
                    .map(|kv| ks.candidate_of_key(&kv.key))
                    .transpose()?
                    .map_or(0, |o| now_ms.saturating_sub(o.0.timestamp_ms() as i64));
                levels.push((level, count(objects).await?, count(bytes).await?, oldest));
            }
            Ok::<_, crate::Error>(levels)
        })
        .await
}
