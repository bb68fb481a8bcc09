//! [`FaultyStore`]: an object store wrapper that injects latency and failures, for tests
//! and benchmarks (never for production).
//!
//! Real object stores are slow and fail in ways a local directory never does: PUTs take
//! 100 ms at the median and several times that at p99, requests are throttled
//! (503 SlowDown) or fail (500), connections time out, and a PUT can succeed on the
//! server while its response is lost, so the caller sees an error for a write that
//! happened. Weir's write path has to stay correct under all of that (no acknowledged
//! record lost, no success for a write that was not made durable) and its figures
//! mean little without realistic latency. `FaultyStore` wraps any store, as
//! object_store's own `ThrottledStore` does, and adds per-operation latency
//! distributions, error rates, the failure of the Nth call and lost PUT responses, all
//! drawn from a seeded RNG so a failing run can be repeated.
//!
//! It is configured by a compact spec string (so `weir playground --object-store-faults`
//! can take one), parsed by [`FaultConfig::parse`]:
//!
//! ```text
//! s3-standard,put.error_rate=0.1,seed=7
//! put.latency=lognormal:100ms:300ms,get.latency=uniform:0ms:2s,*.error_rate=0.05
//! ```
//!
//! Items are comma-separated and applied left to right (later ones override):
//!
//! - a preset: `s3-standard` (PUT p50 100 ms, p99 300 ms; GET p50 60 ms, p99 200 ms),
//!   `s3-express` (PUT p50 5 ms, p99 15 ms; GET p50 4 ms, p99 12 ms), `none`;
//! - `seed=N`;
//! - `OP.KEY=VALUE` with OP one of `put`, `get`, `head`, `list`, `delete` or `*` (all):
//!   - `latency=none | fixed:D | uniform:MIN:MAX | lognormal:P50:P99` (D like `250ms`,
//!     `2s`, `500us`),
//!   - `error_rate=P`: each call fails with probability P, before reaching the store,
//!   - `errors=slowdown|internal|timeout`: which errors a failing call gets (drawn
//!     uniformly; default all three),
//!   - `fail_nth=N`: the Nth call of that operation (from 1) fails,
//!   - `lost_response_rate=P` (`put` only): the PUT reaches the store and succeeds, and
//!     the caller gets an error anyway,
//!   - `cut_after=N` (`list` only): a listing yields its first N keys and then an
//!     error in place of the rest, as when a later page's request times out.
//!
//! Injected errors are `object_store::Error::Generic` (what the real stores return for
//! 5xx responses and timeouts once their retries are spent) with an [`InjectedFault`]
//! source, so a log line says plainly that the fault was injected.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::error::CacheError;

/// The object-store operations that faults and counters are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Put,
    Get,
    Head,
    List,
    Delete,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Put, Op::Get, Op::Head, Op::List, Op::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Head => "head",
            Op::List => "list",
            Op::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a call waits before it reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Latency {
    #[default]
    None,
    Fixed(Duration),
    Uniform {
        min: Duration,
        max: Duration,
    },
    /// A log-normal distribution with the given median and 99th percentile: the usual
    /// shape of object-store latency (a tight body, a long tail).
    LogNormal {
        p50: Duration,
        p99: Duration,
    },
}

/// The 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874;

impl Latency {
    fn sample(&self, rng: &mut SmallRng) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => {
                if max <= min {
                    min
                } else {
                    min + (max - min).mul_f64(rng.random::<f64>())
                }
            }
            Latency::LogNormal { p50, p99 } => {
                let mu = p50.as_secs_f64().max(1e-9).ln();
                let sigma = (p99.as_secs_f64().max(1e-9).ln() - mu).max(0.0) / Z_99;
                // Box-Muller: one standard normal draw from two uniforms in (0, 1].
                let u1 = 1.0 - rng.random::<f64>();
                let u2 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                // Capped, so one draw far in the tail cannot stall a test for minutes.
                let cap = p99.as_secs_f64() * 10.0;
                Duration::from_secs_f64((mu + sigma * z).exp().min(cap))
            }
        }
    }
}

/// An error a failing call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedError {
    /// S3's throttling answer (HTTP 503 SlowDown).
    SlowDown,
    /// HTTP 500 InternalError.
    Internal,
    /// No answer in time: the client's request timeout fired.
    Timeout,
}

impl InjectedError {
    const ALL: [InjectedError; 3] = [
        InjectedError::SlowDown,
        InjectedError::Internal,
        InjectedError::Timeout,
    ];

    fn describe(self) -> &'static str {
        match self {
            InjectedError::SlowDown => "HTTP 503 SlowDown: please reduce your request rate",
            InjectedError::Internal => "HTTP 500 InternalError: we encountered an internal error",
            InjectedError::Timeout => "operation timed out",
        }
    }
}

/// The faults of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpFaults {
    pub latency: Latency,
    /// Probability that a call fails before reaching the store.
    pub error_rate: f64,
    /// The errors failing calls get, drawn uniformly.
    pub errors: Vec<InjectedError>,
    /// The Nth call (from 1) fails.
    pub fail_nth: Option<u64>,
    /// PUT only: probability that a PUT is made and its caller told it failed.
    pub lost_response_rate: f64,
    /// LIST only: a listing fails after yielding this many keys (when it has more).
    pub cut_after: Option<u64>,
}

impl Default for OpFaults {
    fn default() -> Self {
        OpFaults {
            latency: Latency::None,
            error_rate: 0.0,
            errors: InjectedError::ALL.to_vec(),
            fail_nth: None,
            lost_response_rate: 0.0,
            cut_after: None,
        }
    }
}

/// Everything [`FaultyStore`] injects; see the module documentation for the spec syntax.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultConfig {
    pub seed: u64,
    ops: [OpFaults; 5],
}

impl FaultConfig {
    /// The faults of `op`.
    pub fn op(&self, op: Op) -> &OpFaults {
        &self.ops[op.index()]
    }

    pub fn op_mut(&mut self, op: Op) -> &mut OpFaults {
        &mut self.ops[op.index()]
    }

    /// Whether this config injects nothing at all.
    pub fn is_none(&self) -> bool {
        self.ops.iter().all(|o| {
            o.latency == Latency::None
                && o.error_rate == 0.0
                && o.fail_nth.is_none()
                && o.lost_response_rate == 0.0
                && o.cut_after.is_none()
        })
    }

    /// Parses a spec such as `s3-standard,put.error_rate=0.1,seed=7`.
    pub fn parse(spec: &str) -> Result<FaultConfig, CacheError> {
        let mut config = FaultConfig::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            config
                .apply(item)
                .map_err(|reason| CacheError::InvalidFaultSpec {
                    spec: spec.to_string(),
                    item: item.to_string(),
                    reason,
                })?;
        }
        Ok(config)
    }

    fn apply(&mut self, item: &str) -> Result<(), String> {
        let Some((key, value)) = item.split_once('=') else {
            return self.preset(item);
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "seed" {
            self.seed = value
                .parse()
                .map_err(|_| format!("seed {value:?} is not an unsigned integer"))?;
            return Ok(());
        }
        let (op, setting) = key
            .split_once('.')
            .ok_or_else(|| format!("expected OP.SETTING=VALUE or seed=N, got {key:?}"))?;
        let ops: Vec<Op> = match op {
            "*" => Op::ALL.to_vec(),
            name => vec![
                Op::ALL
                    .into_iter()
                    .find(|o| o.as_str() == name)
                    .ok_or_else(|| {
                        format!(
                            "unknown operation {name:?}; expected put, get, head, list, delete or *"
                        )
                    })?,
            ],
        };
        for op in ops {
            let faults = self.op_mut(op);
            match setting {
                "latency" => faults.latency = parse_latency(value)?,
                "error_rate" => faults.error_rate = parse_probability(value)?,
                "errors" => {
                    faults.errors = value
                        .split('|')
                        .map(|e| match e.trim() {
                            "slowdown" => Ok(InjectedError::SlowDown),
                            "internal" => Ok(InjectedError::Internal),
                            "timeout" => Ok(InjectedError::Timeout),
                            other => Err(format!(
                                "unknown error {other:?}; expected slowdown, internal or timeout"
                            )),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "fail_nth" => {
                    let n: u64 = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("fail_nth {value:?} must be a call number from 1")
                    })?;
                    faults.fail_nth = Some(n);
                }
                "lost_response_rate" if op == Op::Put => {
                    faults.lost_response_rate = parse_probability(value)?;
                }
                "lost_response_rate" => {
                    return Err("lost_response_rate applies to put only".into());
                }
                "cut_after" if op == Op::List => {
                    let n: u64 = value
                        .parse()
                        .map_err(|_| format!("cut_after {value:?} is not a number of keys"))?;
                    faults.cut_after = Some(n);
                }
                "cut_after" => {
                    return Err("cut_after applies to list only".into());
                }
                other => {
                    return Err(format!(
                        "unknown setting {other:?}; expected latency, error_rate, errors, fail_nth, lost_response_rate or cut_after"
                    ));
                }
            }
        }
        Ok(())
    }

    fn preset(&mut self, name: &str) -> Result<(), String> {
        let ms = Duration::from_millis;
        let table: [(Op, u64, u64); 5] = match name {
            // Orders of magnitude published for S3 Standard and seen from EC2 in the
            // same region: ~100 ms to PUT a few MiB, tens of ms to first byte on GET.
            "s3-standard" => [
                (Op::Put, 100, 300),
                (Op::Get, 60, 200),
                (Op::Head, 20, 60),
                (Op::List, 50, 150),
                (Op::Delete, 30, 90),
            ],
            // S3 Express One Zone: single-digit milliseconds.
            "s3-express" => [
                (Op::Put, 5, 15),
                (Op::Get, 4, 12),
                (Op::Head, 3, 9),
                (Op::List, 5, 15),
                (Op::Delete, 4, 12),
            ],
            "none" => {
                *self = FaultConfig {
                    seed: self.seed,
                    ..FaultConfig::default()
                };
                return Ok(());
            }
            other => {
                return Err(format!(
                    "unknown preset {other:?}; expected s3-standard, s3-express or none (or OP.SETTING=VALUE)"
                ));
            }
        };
        for (op, p50, p99) in table {
            self.op_mut(op).latency = Latency::LogNormal {
                p50: ms(p50),
                p99: ms(p99),
            };
        }
        Ok(())
    }
}

impl FromStr for FaultConfig {
    type Err = CacheError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        FaultConfig::parse(spec)
    }
}

fn parse_probability(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| format!("{value:?} is not a probability between 0 and 1"))
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("duration {value:?}: expected a number and a unit (us, ms, s)"))?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        _ => return Err(format!("duration {value:?}: the unit must be us, ms or s")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_latency(value: &str) -> Result<Latency, String> {
    let parts: Vec<&str> = value.split(':').collect();
    match parts.as_slice() {
        ["none"] | ["0"] => Ok(Latency::None),
        ["fixed", d] => Ok(Latency::Fixed(parse_duration(d)?)),
        ["uniform", min, max] => {
            let (min, max) = (parse_duration(min)?, parse_duration(max)?);
            if max < min {
                return Err(format!(
                    "uniform latency {value:?}: the maximum is below the minimum"
                ));
            }
            Ok(Latency::Uniform { min, max })
        }
        ["lognormal", p50, p99] => {
            let (p50, p99) = (parse_duration(p50)?, parse_duration(p99)?);
            if p99 < p50 || p50.is_zero() {
                return Err(format!("lognormal latency {value:?}: needs 0 < p50 <= p99"));
            }
            Ok(Latency::LogNormal { p50, p99 })
        }
        _ => Err(format!(
            "latency {value:?}: expected none, fixed:D, uniform:MIN:MAX or lognormal:P50:P99"
        )),
    }
}

/// The source of every error [`FaultyStore`] makes up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("injected fault on {op} call #{call}: {what}")]
pub struct InjectedFault {
    pub op: Op,
    pub call: u64,
    pub what: String,
}

/// What happens to one call.
#[derive(Debug)]
struct Plan {
    delay: Duration,
    call: u64,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    Pass,
    Fail(InjectedError),
    /// The call is made; its caller gets an error.
    LoseResponse,
}

/// Counts of one operation, as [`FaultyStore::stats`] reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Calls made to the wrapper, failed ones included.
    pub calls: u64,
    /// Bytes sent (PUT) or received (GET) by calls that succeeded.
    pub bytes: u64,
    /// Calls that got an injected error without reaching the store.
    pub injected_errors: u64,
    /// PUTs that were made and reported as failed.
    pub lost_responses: u64,
}

#[derive(Debug, Default)]
struct OpCounters {
    calls: AtomicU64,
    bytes: AtomicU64,
    injected_errors: AtomicU64,
    lost_responses: AtomicU64,
}

/// Wraps a store and injects what a [`FaultConfig`] says; counts calls and bytes per
/// operation.
#[derive(Debug)]
pub struct FaultyStore<T: ObjectStore = Arc<dyn ObjectStore>> {
    inner: T,
    config: Mutex<Arc<FaultConfig>>,
    rng: Mutex<SmallRng>,
    counters: [OpCounters; 5],
}

impl<T: ObjectStore> FaultyStore<T> {
    pub fn new(inner: T, config: FaultConfig) -> Self {
        FaultyStore {
            rng: Mutex::new(SmallRng::seed_from_u64(config.seed)),
            inner,
            config: Mutex::new(Arc::new(config)),
            counters: Default::default(),
        }
    }

    pub fn config(&self) -> Arc<FaultConfig> {
        self.config.lock().clone()
    }

    /// Injects what `config` says from the next call on (calls under way keep their
    /// planned fate). The RNG goes on from where it was: `config.seed` is not applied.
    pub fn set_config(&self, config: FaultConfig) {
        *self.config.lock() = Arc::new(config);
    }

    /// The counts of `op` so far.
    pub fn stats(&self, op: Op) -> OpStats {
        let c = &self.counters[op.index()];
        OpStats {
            calls: c.calls.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            injected_errors: c.injected_errors.load(Ordering::Relaxed),
            lost_responses: c.lost_responses.load(Ordering::Relaxed),
        }
    }

    /// Draws the fate of the next call of `op`. Draws happen in call order under one
    /// lock, so a seed and a sequence of calls give the same faults every run.
    fn plan(&self, op: Op) -> Plan {
        let config = self.config();
        let faults = config.op(op);
        let counters = &self.counters[op.index()];
        let call = counters.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rng = self.rng.lock();
        let delay = faults.latency.sample(&mut rng);
        let pick = |rng: &mut SmallRng| {
            let errors = if faults.errors.is_empty() {
                &InjectedError::ALL[..]
            } else {
                &faults.errors[..]
            };
            errors[rng.random_range(0..errors.len())]
        };
        let outcome = if faults.fail_nth == Some(call) {
            Outcome::Fail(InjectedError::Internal)
        } else if faults.error_rate > 0.0 && rng.random::<f64>() < faults.error_rate {
            Outcome::Fail(pick(&mut rng))
        } else if faults.lost_response_rate > 0.0 && rng.random::<f64>() < faults.lost_response_rate
        {
            Outcome::LoseResponse
        } else {
            Outcome::Pass
        };
        match outcome {
            Outcome::Fail(_) => counters.injected_errors.fetch_add(1, Ordering::Relaxed),
            Outcome::LoseResponse => counters.lost_responses.fetch_add(1, Ordering::Relaxed),
            Outcome::Pass => 0,
        };
        Plan {
            delay,
            call,
            outcome,
        }
    }

    fn add_bytes(&self, op: Op, bytes: u64) {
        self.counters[op.index()]
            .bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }
}

fn injected(op: Op, call: u64, what: impl Into<String>) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: Box::new(InjectedFault {
            op,
            call,
            what: what.into(),
        }),
    }
}

impl Plan {
    /// Sleeps the planned delay; `Err` if the call must fail before reaching the store.
    async fn before(&self, op: Op) -> object_store::Result<()> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match self.outcome {
            Outcome::Fail(error) => Err(injected(op, self.call, error.describe())),
            Outcome::Pass | Outcome::LoseResponse => Ok(()),
        }
    }

    /// The caller's result once the store answered `result`.
    fn after<R>(&self, op: Op, result: object_store::Result<R>) -> object_store::Result<R> {
        match (&self.outcome, result) {
            (Outcome::LoseResponse, Ok(_)) => Err(injected(
                op,
                self.call,
                "the write succeeded but its response was lost (connection reset)",
            )),
            (_, result) => result,
        }
    }
}

impl<T: ObjectStore> FaultyStore<T> {
    /// `inner`, a listing, with the faults planned for the next LIST call.
    fn listing(
        &self,
        inner: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let plan = self.plan(Op::List);
        let cut_after = self.config().op(Op::List).cut_after;
        futures::stream::once(async move {
            if let Err(e) = plan.before(Op::List).await {
                return futures::stream::once(async move { Err(e) }).boxed();
            }
            let Some(n) = cut_after else {
                return inner;
            };
            // The key after the first n, if there is one, comes out as the error.
            let call = plan.call;
            let keep = usize::try_from(n).unwrap_or(usize::MAX);
            inner
                .enumerate()
                .map(move |(i, item)| match i < keep {
                    true => item,
                    false => Err(injected(
                        Op::List,
                        call,
                        format!("the listing was cut after {n} keys (a later page timed out)"),
                    )),
                })
                .take(keep.saturating_add(1))
                .boxed()
        })
        .flatten()
        .boxed()
    }
}

impl<T: ObjectStore> fmt::Display for FaultyStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for FaultyStore<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let plan = self.plan(Op::Put);
        plan.before(Op::Put).await?;
        let size = payload.content_length() as u64;
        let result = self.inner.put_opts(location, payload, opts).await;
        if result.is_ok() {
            self.add_bytes(Op::Put, size);
        }
        plan.after(Op::Put, result)
    }

    /// Multipart uploads count as one PUT when they start; their parts are not faulted.
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let plan = self.plan(Op::Put);
        plan.before(Op::Put).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        let plan = self.plan(op);
        plan.before(op).await?;
        let result = self.inner.get_opts(location, options).await;
        if let (Op::Get, Ok(got)) = (op, &result) {
            self.add_bytes(op, got.range.end - got.range.start);
        }
        result
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> object_store::Result<Bytes> {
        let plan = self.plan(Op::Get);
        plan.before(Op::Get).await?;
        let bytes = self.inner.get_range(location, range).await?;
        self.add_bytes(Op::Get, bytes.len() as u64);
        Ok(bytes)
    }

    async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
        let plan = self.plan(Op::Head);
        plan.before(Op::Head).await?;
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        let plan = self.plan(Op::Delete);
        plan.before(Op::Delete).await?;
        let result = self.inner.delete(location).await;
        plan.after(Op::Delete, result)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.listing(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // Passed down, not left to the trait's default (a full listing filtered here),
        // so the store lists from the offset as it would without the wrapper.
        self.listing(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let plan = self.plan(Op::List);
        plan.before(Op::List).await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[cfg(test)]
mod tests;
