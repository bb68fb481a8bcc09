//! `weir-bench metadata`: what many partitions cost a Metadata request. Creates
//! `--topics` topics of `--partitions` partitions each (skipping those that exist),
//! then times full Metadata requests (every topic) as a client makes them.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

#[derive(Debug, clap::Args)]
pub(crate) struct MetadataArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    #[arg(long, default_value = "weir-bench-meta")]
    prefix: String,
    #[arg(long, default_value_t = 100)]
    topics: usize,
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    /// Full Metadata requests to time.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
}

pub(crate) async fn run(args: MetadataArgs) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .create()
        .context("create admin client")?;
    let names: Vec<String> = (0..args.topics)
        .map(|i| format!("{}-{i}", args.prefix))
        .collect();
    let created_at = Instant::now();
    let options = AdminOptions::new().request_timeout(Some(rdkafka::util::Timeout::After(
        Duration::from_secs(120),
    )));
    for chunk in names.chunks(50) {
        let topics: Vec<NewTopic<'_>> = chunk
            .iter()
            .map(|n| NewTopic::new(n, args.partitions, TopicReplication::Fixed(1)))
            .collect();
        for result in admin
            .create_topics(&topics, &options)
            .await
            .context("create topics")?
        {
            match result {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => anyhow::bail!("create topic {name}: {code}"),
            }
        }
    }
    let create_secs = created_at.elapsed().as_secs_f64();
    let bootstrap = args.bootstrap.clone();
    let rounds = args.rounds;
    let (samples_ms, partitions_seen) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .create()
                .context("create client")?;
            let mut samples = Vec::with_capacity(rounds);
            let mut seen = 0;
            for _ in 0..rounds {
                let started = Instant::now();
                let metadata = consumer
                    .fetch_metadata(None, Duration::from_secs(120))
                    .context("Metadata request")?;
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
                seen = metadata
                    .topics()
                    .iter()
                    .map(|t| t.partitions().len())
                    .sum::<usize>();
            }
            Ok((samples, seen))
        })
        .await??;
    let mut sorted = samples_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let report = serde_json::json!({
        "workload": "metadata",
        "revision": crate::revision(),
        "config": {
            "bootstrap": args.bootstrap, "topics": args.topics,
            "partitions_per_topic": args.partitions, "rounds": args.rounds,
        },
        "partitions_in_response": partitions_seen,
        "create_seconds": create_secs,
        "metadata_ms": {
            "min": sorted.first(), "median": sorted.get(sorted.len() / 2), "max": sorted.last(),
            "samples": samples_ms,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
