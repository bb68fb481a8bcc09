use std::sync::Arc;

use object_store::memory::InMemory;
use tokio::time::Instant;

use super::*;

fn store(spec: &str) -> (FaultyStore, Arc<InMemory>) {
    let inner = Arc::new(InMemory::new());
    let config = FaultConfig::parse(spec).expect("valid spec");
    (
        FaultyStore::new(inner.clone() as Arc<dyn ObjectStore>, config),
        inner,
    )
}

fn payload() -> PutPayload {
    PutPayload::from_static(b"0123456789")
}

fn is_injected(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::Generic {
            store: "FaultyStore",
            ..
        }
    )
}

#[test]
fn specs_parse_presets_overrides_and_every_setting() {
    let config = FaultConfig::parse(
        "s3-standard, put.error_rate=0.1, get.latency=uniform:0ms:2s, *.fail_nth=3, \
         put.lost_response_rate=0.25, delete.errors=slowdown|timeout, head.latency=fixed:1.5ms, seed=7",
    )
    .expect("valid spec");
    assert_eq!(config.seed, 7);
    let put = config.op(Op::Put);
    assert_eq!(
        put.latency,
        Latency::LogNormal {
            p50: Duration::from_millis(100),
            p99: Duration::from_millis(300)
        }
    );
    assert_eq!(put.error_rate, 0.1);
    assert_eq!(put.lost_response_rate, 0.25);
    assert_eq!(put.fail_nth, Some(3));
    assert_eq!(
        config.op(Op::Get).latency,
        Latency::Uniform {
            min: Duration::ZERO,
            max: Duration::from_secs(2)
        }
    );
    assert_eq!(config.op(Op::List).fail_nth, Some(3));
    assert_eq!(
        config.op(Op::Delete).errors,
        vec![InjectedError::SlowDown, InjectedError::Timeout]
    );
    assert_eq!(
        config.op(Op::Head).latency,
        Latency::Fixed(Duration::from_micros(1500))
    );
    assert!(FaultConfig::parse("").expect("empty spec").is_none());
    assert!(
        FaultConfig::parse("s3-express,none")
            .expect("none resets")
            .is_none()
    );
}

#[test]
fn bad_specs_name_the_item_and_what_is_wrong() {
    for (spec, expected) in [
        ("s3-glacier", "unknown preset"),
        ("put.error_rate=1.5", "not a probability"),
        ("get.lost_response_rate=0.1", "put only"),
        ("put.latency=lognormal:300ms:100ms", "p50 <= p99"),
        ("put.latency=fixed:10 minutes", "unit"),
        ("copy.latency=none", "unknown operation"),
        ("put.fail_nth=0", "from 1"),
        ("put.cut_after=3", "list only"),
        ("list.cut_after=some", "number of keys"),
        ("seed=x", "seed"),
    ] {
        let err = FaultConfig::parse(spec).expect_err(spec);
        let message = err.to_string();
        assert!(message.contains(expected), "{spec}: {message}");
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
    }
}

#[test]
fn lognormal_draws_have_the_asked_median_and_99th_percentile() {
    let latency = Latency::LogNormal {
        p50: Duration::from_millis(100),
        p99: Duration::from_millis(300),
    };
    let mut rng = SmallRng::seed_from_u64(1);
    let mut draws: Vec<Duration> = (0..20_000).map(|_| latency.sample(&mut rng)).collect();
    draws.sort();
    let p50 = draws[draws.len() / 2].as_secs_f64() * 1e3;
    let p99 = draws[draws.len() * 99 / 100].as_secs_f64() * 1e3;
    assert!((90.0..110.0).contains(&p50), "p50 {p50} ms");
    assert!((260.0..340.0).contains(&p99), "p99 {p99} ms");
}

#[tokio::test(start_paused = true)]
async fn calls_wait_their_latency() {
    let (store, _) = store("put.latency=fixed:100ms,get.latency=uniform:200ms:400ms");
    let path = Path::from("data/a");
    let start = Instant::now();
    store.put(&path, payload()).await.expect("put");
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    let start = Instant::now();
    store.get(&path).await.expect("get");
    let waited = start.elapsed();
    assert!(
        (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&waited),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_faults() {
    async fn run(seed: u64) -> Vec<bool> {
        let (store, _) = store(&format!("put.error_rate=0.5,seed={seed}"));
        let mut outcomes = Vec::new();
        for i in 0..64 {
            let path = Path::from(format!("data/{i}"));
            outcomes.push(store.put(&path, payload()).await.is_ok());
        }
        outcomes
    }
    let first = run(7).await;
    assert_eq!(first, run(7).await);
    assert_ne!(first, run(8).await);
    let failures = first.iter().filter(|ok| !**ok).count();
    assert!(
        (16..48).contains(&failures),
        "{failures} of 64 failed at rate 0.5"
    );
}

#[tokio::test]
async fn failing_calls_never_reach_the_store_and_say_they_were_injected() {
    let (store, inner) = store("put.error_rate=1,put.errors=slowdown");
    let path = Path::from("data/a");
    let err = store
        .put(&path, payload())
        .await
        .expect_err("every put fails");
    assert!(is_injected(&err), "{err}");
    assert!(err.to_string().contains("503 SlowDown"), "{err}");
    assert!(
        err.to_string().contains("injected fault on put call #1"),
        "{err}"
    );
    assert!(inner.head(&path).await.is_err(), "nothing was written");
    let stats = store.stats(Op::Put);
    assert_eq!((stats.calls, stats.injected_errors, stats.bytes), (1, 1, 0));
}

#[tokio::test]
async fn the_nth_call_fails_and_only_it() {
    let (store, _) = store("get.fail_nth=2");
    let path = Path::from("data/a");
    store.put(&path, payload()).await.expect("put");
    let outcomes: Vec<bool> = futures::future::join_all((0..4).map(|_| store.get(&path)))
        .await
        .iter()
        .map(Result::is_ok)
        .collect();
    assert_eq!(outcomes.iter().filter(|ok| !**ok).count(), 1);
    assert_eq!(store.stats(Op::Get).injected_errors, 1);
}

#[tokio::test]
async fn a_lost_put_response_is_an_error_for_a_write_that_happened() {
    let (store, inner) = store("put.lost_response_rate=1");
    let path = Path::from("data/a");
    let err = store
        .put(&path, payload())
        .await
        .expect_err("response lost");
    assert!(is_injected(&err), "{err}");
    assert!(err.to_string().contains("response was lost"), "{err}");
    let stored = inner
        .get(&path)
        .await
        .expect("written")
        .bytes()
        .await
        .expect("read");
    assert_eq!(&stored[..], b"0123456789");
    let stats = store.stats(Op::Put);
    assert_eq!((stats.calls, stats.lost_responses, stats.bytes), (1, 1, 10));
}

#[tokio::test]
async fn calls_and_bytes_are_counted_per_operation() {
    let (store, _) = store("");
    let path = Path::from("data/a");
    store.put(&path, payload()).await.expect("put");
    store.get_range(&path, 0..4).await.expect("get range");
    store.get(&path).await.expect("get");
    store.head(&path).await.expect("head");
    let listed: Vec<_> = store.list(Some(&Path::from("data"))).collect().await;
    assert_eq!(listed.len(), 1);
    store.delete(&path).await.expect("delete");
    assert_eq!(
        store.stats(Op::Put),
        OpStats {
            calls: 1,
            bytes: 10,
            ..OpStats::default()
        }
    );
    assert_eq!(
        store.stats(Op::Get),
        OpStats {
            calls: 2,
            bytes: 14,
            ..OpStats::default()
        }
    );
    assert_eq!(store.stats(Op::Head).calls, 1);
    assert_eq!(store.stats(Op::List).calls, 1);
    assert_eq!(store.stats(Op::Delete).calls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_list_yields_one_error() {
    let (store, _) = store("list.error_rate=1,list.latency=fixed:50ms");
    store
        .put(&Path::from("data/a"), payload())
        .await
        .expect("put");
    let start = Instant::now();
    let listed: Vec<_> = store.list(None).collect().await;
    assert_eq!(start.elapsed(), Duration::from_millis(50));
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_err());
}

#[tokio::test]
async fn a_cut_listing_yields_its_first_keys_then_an_error_in_place_of_the_rest() {
    let (store, _) = store("list.cut_after=3");
    for i in 0..5 {
        store
            .put(&Path::from(format!("data/{i}")), payload())
            .await
            .expect("put");
    }
    let listed = |items: Vec<object_store::Result<ObjectMeta>>| -> (Vec<String>, Vec<String>) {
        let (ok, err): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
        (
            ok.into_iter()
                .map(|m| m.expect("ok").location.to_string())
                .collect(),
            err.into_iter()
                .map(|e| e.expect_err("err").to_string())
                .collect(),
        )
    };
    let (keys, errors) = listed(store.list(Some(&Path::from("data"))).collect().await);
    assert_eq!(keys, ["data/0", "data/1", "data/2"]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("cut after 3 keys"), "{errors:?}");

    // From an offset, the cut counts from the first key listed.
    let (keys, errors) = listed(
        store
            .list_with_offset(Some(&Path::from("data")), &Path::from("data/0"))
            .collect()
            .await,
    );
    assert_eq!((keys.len(), errors.len()), (3, 1), "{keys:?} {errors:?}");
    assert_eq!(keys[0], "data/1");

    // A listing no longer than the cut ends cleanly.
    let (keys, errors) = listed(
        store
            .list_with_offset(Some(&Path::from("data")), &Path::from("data/1"))
            .collect()
            .await,
    );
    assert_eq!(keys, ["data/2", "data/3", "data/4"]);
    assert!(errors.is_empty(), "{errors:?}");
}
