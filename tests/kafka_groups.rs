//! Consumer groups with librdkafka: members joining late, leaving and being killed -9
//! while a producer writes, with the eager and the cooperative assignors; static
//! membership across a restart; committed offsets across a playground kill -9; and
//! Kafka's errors for calls that name the wrong member, generation, topic or group.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use support::Playground;
use support::kafka::{self, PATIENCE, Record};
use support::protocol::{self, Connection};

const TOPIC_PARTITIONS: i32 = 12;

/// A group member's settings: short sessions and heartbeats so departures are noticed
/// within seconds.
fn member_config(bootstrap: &str, group: &str, assignor: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "weir-e2e-member")
        .set("group.id", group)
        .set("partition.assignment.strategy", assignor)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "200")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.wait.max.ms", "100");
    config
}

/// Records every assignment change a member sees.
#[derive(Clone, Default)]
struct Rebalances(Arc<Mutex<Vec<String>>>);

impl ClientContext for Rebalances {}

impl Rebalances {
    /// Whether the member has been given at least one partition.
    fn assigned_some(&self) -> bool {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .any(|e| e.starts_with("assign ") && e != "assign 0")
    }
}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _base: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(tpl) => format!("assign {}", tpl.count()),
            Rebalance::Revoke(tpl) => format!("revoke {}", tpl.count()),
            Rebalance::Error(e) => format!("error {e}"),
        };
        self.0.lock().expect("lock").push(event);
    }
}

/// Consumes as a group member until `stop`, handing each record (partition, offset,
/// value) to `processed` before the next poll — so an offset auto-committed is one
/// already processed (at-least-once). Leaves the group on the way out.
fn run_member(
    config: &ClientConfig,
    topic: &str,
    context: Rebalances,
    stop: &AtomicBool,
    mut processed: impl FnMut(i32, i64, &[u8]),
) {
    let consumer: BaseConsumer<Rebalances> = config
        .create_with_context(context)
        .expect("create a group member");
    consumer.subscribe(&[topic]).expect("subscribe");
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => processed(
                message.partition(),
                message.offset(),
                message.payload().unwrap_or_default(),
            ),
            Some(Err(e)) => eprintln!("group member: {e}"),
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        eprintln!("final commit: {e}");
    }
    consumer.unsubscribe();
}

/// A member as its own process (this test binary running [`member_process`]), so the
/// test can kill it -9. It writes what it processed, one line per record, to a file.
struct ChildMember {
    child: Child,
    output: PathBuf,
}

impl ChildMember {
    fn start(bootstrap: &str, group: &str, topic: &str, assignor: &str, output: &Path) -> Self {
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--ignored", "--exact", "member_process", "--nocapture"])
            .env("WEIR_MEMBER_BOOTSTRAP", bootstrap)
            .env("WEIR_MEMBER_GROUP", group)
            .env("WEIR_MEMBER_TOPIC", topic)
            .env("WEIR_MEMBER_ASSIGNOR", assignor)
            .env("WEIR_MEMBER_OUTPUT", output)
            .stdout(Stdio::null())
            .spawn()
            .expect("start a member process");
        ChildMember {
            child,
            output: output.to_path_buf(),
        }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("kill -9 the member process");
        self.child.wait().expect("reap the member process");
    }

    /// (partition, offset, value) of each record it processed.
    fn processed(&self) -> Vec<(i32, i64, String)> {
        let Ok(file) = std::fs::File::open(&self.output) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let mut parts = line.splitn(3, ' ');
                Some((
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.to_string(),
                ))
            })
            .collect()
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test of its own: the body of [`ChildMember`], run by the group tests as a
/// separate process.
#[test]
#[ignore = "runs only as a child process of the group tests"]
fn member_process() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let config = member_config(
        &var("WEIR_MEMBER_BOOTSTRAP"),
        &var("WEIR_MEMBER_GROUP"),
        &var("WEIR_MEMBER_ASSIGNOR"),
    );
    let mut output = std::fs::File::create(var("WEIR_MEMBER_OUTPUT")).expect("output file");
    let never = AtomicBool::new(false);
    run_member(
        &config,
        &var("WEIR_MEMBER_TOPIC"),
        Rebalances::default(),
        &never,
        |partition, offset, value| {
            // Written before the next poll, so whatever it committed is on record.
            writeln!(
                output,
                "{partition} {offset} {}",
                String::from_utf8_lossy(value)
            )
            .expect("record a processed record");
            output.flush().expect("flush");
        },
    );
}

/// An in-process member on a thread.
struct ThreadMember {
    stop: Arc<AtomicBool>,
    processed: Arc<Mutex<Vec<(i32, i64, String)>>>,
    count: Arc<AtomicUsize>,
    rebalances: Rebalances,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadMember {
    fn start(config: ClientConfig, topic: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let processed = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let rebalances = Rebalances::default();
        let thread = std::thread::spawn({
            let (stop, processed, count) = (stop.clone(), processed.clone(), count.clone());
            let rebalances = rebalances.clone();
            let topic = topic.to_string();
            move || {
                run_member(&config, &topic, rebalances, &stop, |p, o, v| {
                    processed.lock().expect("lock").push((
                        p,
                        o,
                        String::from_utf8_lossy(v).into_owned(),
                    ));
                    count.fetch_add(1, Ordering::SeqCst);
                })
            }
        });
        ThreadMember {
            stop,
            processed,
            count,
            rebalances,
            thread: Some(thread),
        }
    }

    /// Leaves the group (committing first) and waits for the member to finish.
    fn leave(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("member thread");
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for ThreadMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Watches the group through DescribeGroups: in every stable generation it sees, no
/// partition may be assigned to two members. Returns (generations checked, violations).
fn watch_assignments(
    bootstrap: String,
    group: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let mut connection = Connection::open(&bootstrap);
        let (mut checked, mut violations) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            let view = protocol::describe_group(&mut connection, &group);
            if view.state == "Stable" {
                checked += 1;
                let mut owners: BTreeMap<(String, i32), &str> = BTreeMap::new();
                for (member, partitions) in &view.members {
                    for partition in partitions {
                        if let Some(other) = owners.insert(partition.clone(), member) {
                            violations.push(format!(
                                "{partition:?} assigned to both {other} and {member}"
                            ));
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (checked, violations)
    })
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Committed offsets of the client's group for the partitions of `topic` that have one.
fn committed_so_far(client: &BaseConsumer, topic: &str) -> BTreeMap<i32, i64> {
    let mut partitions = TopicPartitionList::new();
    for p in 0..TOPIC_PARTITIONS {
        partitions.add_partition(topic, p);
    }
    std::thread::sleep(Duration::from_millis(200));
    client
        .committed_offsets(partitions, PATIENCE)
        .expect("OffsetFetch")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Committed offsets of `group` for every partition of `topic`.
fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = member_config(bootstrap, group, "range")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for p in 0..TOPIC_PARTITIONS {
        partitions.add_partition(topic, p);
    }
    consumer
        .committed_offsets(partitions, PATIENCE)
        .expect("OffsetFetch")
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                other => panic!(
                    "partition {} has no committed offset: {other:?}",
                    e.partition()
                ),
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Three members share 12 partitions while `total` records are written: a fourth joins
/// late, one leaves, one is killed -9. Every record is processed, the final commits
/// reach each partition's end, and no stable generation gives a partition to two
/// members.
fn members_come_and_go(assignor: &str, total: usize) {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = "orders";
    let group = format!("workers-{assignor}");
    kafka::create_topic(&bootstrap, topic, TOPIC_PARTITIONS);

    let watching = Arc::new(AtomicBool::new(false));
    let watcher = watch_assignments(bootstrap.clone(), group.clone(), watching.clone());
    let mut a = ThreadMember::start(member_config(&bootstrap, &group, assignor), topic);
    let mut b = ThreadMember::start(member_config(&bootstrap, &group, assignor), topic);
    let scratch = tempfile::TempDir::new().expect("temp dir");
    let mut c = ChildMember::start(
        &bootstrap,
        &group,
        topic,
        assignor,
        &scratch.path().join("member-c.txt"),
    );

    // The second half of the records waits for the late member to hold partitions, so
    // it has records to consume however fast the others are.
    let late_member_assigned = Arc::new(AtomicBool::new(false));
    let producer = std::thread::spawn({
        let bootstrap = bootstrap.clone();
        let late_member_assigned = late_member_assigned.clone();
        move || {
            let producer = kafka::producer(&bootstrap);
            let chunks = total / 10_000;
            for chunk in 0..chunks {
                if chunk == chunks / 2 {
                    while !late_member_assigned.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                let records: Vec<Record> = (chunk * 10_000..(chunk + 1) * 10_000)
                    .map(|i| Record::new(format!("k{i}"), format!("v{i}")))
                    .collect();
                kafka::produce_ok(&producer, topic, None, &records);
            }
        }
    });

    let in_process = |members: &[&ThreadMember]| members.iter().map(|m| m.count()).sum::<usize>();
    wait_until("the first members to consume", || {
        in_process(&[&a, &b]) >= total / 6
    });
    let mut d = ThreadMember::start(member_config(&bootstrap, &group, assignor), topic);
    wait_until("the late member to be given partitions", || {
        d.rebalances.assigned_some()
    });
    late_member_assigned.store(true, Ordering::SeqCst);
    wait_until("more progress after the late join", || {
        in_process(&[&a, &b, &d]) >= total * 2 / 5
    });
    b.leave();
    wait_until("more progress after a member left", || {
        in_process(&[&a, &b, &d]) >= total * 3 / 5
    });
    c.kill9();
    producer.join().expect("producer");

    let expected: HashSet<String> = (0..total).map(|i| format!("v{i}")).collect();
    let seen = |members: &[&ThreadMember], child: &ChildMember| -> HashSet<String> {
        let mut seen: HashSet<String> = child.processed().into_iter().map(|r| r.2).collect();
        for m in members {
            seen.extend(
                m.processed
                    .lock()
                    .expect("lock")
                    .iter()
                    .map(|r| r.2.clone()),
            );
        }
        seen
    };
    wait_until("every record to be processed", || {
        expected.is_subset(&seen(&[&a, &b, &d], &c))
    });

    // At least once: the survivors go on until the group's commits reach every
    // partition's end (the killed member's partitions included, once they are
    // reassigned), so nothing is left for a restart to miss.
    let consumer = kafka::consumer(&bootstrap);
    let ends: BTreeMap<i32, i64> = (0..TOPIC_PARTITIONS)
        .map(|p| (p, kafka::watermarks(&consumer, topic, p).1))
        .collect();
    assert_eq!(ends.values().sum::<i64>(), total as i64);
    let committer: BaseConsumer = member_config(&bootstrap, &group, "range")
        .create()
        .expect("consumer");
    wait_until("the group's commits to reach every partition's end", || {
        committed_so_far(&committer, topic) == ends
    });
    a.leave();
    d.leave();
    watching.store(true, Ordering::SeqCst);
    let (checked, violations) = watcher.join().expect("watcher");

    assert!(d.count() > 0, "the late member got partitions and consumed");
    assert!(
        !c.processed().is_empty(),
        "the killed member consumed before it died"
    );
    assert!(checked > 0, "the watcher saw stable generations");
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(
        committed(&bootstrap, &group, topic),
        ends,
        "leaving does not move the commits back"
    );
}

#[test]
fn members_join_leave_and_die_with_the_default_assignors() {
    members_come_and_go("range,roundrobin", 300_000);
}

#[test]
fn members_join_leave_and_die_with_the_cooperative_sticky_assignor() {
    members_come_and_go("cooperative-sticky", 100_000);
}

/// The partitions a member holds, once it holds any.
fn assigned(member: &ThreadMember) -> usize {
    member
        .rebalances
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.starts_with("assign"))
        .count()
}

#[test]
fn a_static_member_restarts_within_its_session_without_a_rebalance() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = "static";
    let group = "static-group";
    kafka::create_topic(&bootstrap, topic, TOPIC_PARTITIONS);
    let static_config = || {
        let mut config = member_config(&bootstrap, group, "range");
        config
            .set("group.instance.id", "instance-1")
            .set("session.timeout.ms", "30000");
        config
    };
    let mut s = ThreadMember::start(static_config(), topic);
    let other = ThreadMember::start(member_config(&bootstrap, group, "range"), topic);
    let mut connection = Connection::open(&bootstrap);
    let stable_with_two = |connection: &mut Connection| {
        let view = protocol::describe_group(connection, group);
        view.state == "Stable"
            && view.members.len() == 2
            && view.members.iter().all(|(_, p)| !p.is_empty())
    };
    wait_until("both members to hold partitions", || {
        stable_with_two(&mut connection) && assigned(&other) > 0 && assigned(&s) > 0
    });
    let before = protocol::describe_group(&mut connection, group);
    let events_before = other.rebalances.0.lock().expect("lock").len();

    // A static member leaves no LeaveGroup behind; its successor takes its place.
    s.leave();
    let s2 = ThreadMember::start(static_config(), topic);
    wait_until("the restarted member to get its partitions back", || {
        assigned(&s2) > 0
    });
    std::thread::sleep(Duration::from_secs(2));

    let after = protocol::describe_group(&mut connection, group);
    assert_eq!(after.state, "Stable");
    let partitions = |view: &protocol::GroupView| -> BTreeSet<Vec<(String, i32)>> {
        view.members.iter().map(|(_, p)| p.clone()).collect()
    };
    assert_eq!(
        partitions(&after),
        partitions(&before),
        "the same split of partitions"
    );
    assert_eq!(
        other.rebalances.0.lock().expect("lock").len(),
        events_before,
        "the other member saw no rebalance"
    );
}

#[test]
fn committed_offsets_survive_a_kill_9_of_the_playground() {
    let mut playground = Playground::start();
    let bootstrap = playground.bootstrap();
    let topic = "durable-commits";
    let group = "durable-group";
    kafka::create_topic(&bootstrap, topic, TOPIC_PARTITIONS);
    let producer = kafka::producer(&bootstrap);
    let first: Vec<Record> = (0..1200)
        .map(|i| Record::new(format!("k{i}"), format!("first {i}")))
        .collect();
    kafka::produce_ok(&producer, topic, None, &first);
    drop(producer);

    let mut member = ThreadMember::start(member_config(&bootstrap, group, "range"), topic);
    wait_until("the first records to be processed", || {
        member.count() >= first.len()
    });
    member.leave();
    let before = committed(&bootstrap, group, topic);
    assert_eq!(before.values().sum::<i64>(), first.len() as i64);

    playground.kill9();
    playground.restart();
    assert_eq!(
        committed(&bootstrap, group, topic),
        before,
        "commits survive the restart"
    );

    // A member of the same group resumes after the commits: it reads only new records.
    let producer = kafka::producer(&bootstrap);
    let second: Vec<Record> = (0..300)
        .map(|i| Record::new(format!("k{i}"), format!("second {i}")))
        .collect();
    kafka::produce_ok(&producer, topic, None, &second);
    let mut member = ThreadMember::start(member_config(&bootstrap, group, "range"), topic);
    wait_until("the new records to be processed", || {
        member.count() >= second.len()
    });
    std::thread::sleep(Duration::from_millis(500));
    member.leave();
    let values: Vec<String> = member
        .processed
        .lock()
        .expect("lock")
        .iter()
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(
        values.len(),
        second.len(),
        "nothing before the commit again"
    );
    assert!(
        values.iter().all(|v| v.starts_with("second ")),
        "{values:?}"
    );
}

fn group_id(id: &str) -> GroupId {
    GroupId(StrBytes::from_string(id.to_string()))
}

fn join(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group_id(group))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(bytes::Bytes::from_static(b"\0\0\0\0\0\0")),
        ])
}

#[test]
fn calls_naming_the_wrong_member_generation_topic_or_group_get_kafkas_errors() {
    let playground = Playground::start();
    let bootstrap = playground.bootstrap();
    kafka::create_topic(&bootstrap, "t", 2);
    let mut connection = Connection::open(&bootstrap);

    // A member joins (the member-id round trip of v4+) and settles a generation.
    let first = connection.call(5, &join("g", ""));
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let joined = connection.call(5, &join("g", &first.member_id));
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.clone();
    let generation = joined.generation_id;
    let synced = connection.call(
        3,
        &SyncGroupRequest::default()
            .with_group_id(group_id("g"))
            .with_generation_id(generation)
            .with_member_id(member.clone())
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(member.clone())
                    .with_assignment(bytes::Bytes::from_static(b"mine")),
            ]),
    );
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"mine");

    let heartbeat = |connection: &mut Connection, member: &StrBytes, generation: i32| {
        connection
            .call(
                4,
                &HeartbeatRequest::default()
                    .with_group_id(group_id("g"))
                    .with_generation_id(generation)
                    .with_member_id(member.clone()),
            )
            .error_code
    };
    let stranger = StrBytes::from_static_str("stranger");
    assert_eq!(
        heartbeat(&mut connection, &stranger, generation),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        heartbeat(&mut connection, &member, generation + 1),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        connection.call(5, &join("g", "stranger")).error_code,
        25,
        "a join naming an unknown member: UNKNOWN_MEMBER_ID"
    );
    let stranger_sync = connection.call(
        3,
        &SyncGroupRequest::default()
            .with_group_id(group_id("g"))
            .with_generation_id(generation)
            .with_member_id(stranger.clone()),
    );
    assert_eq!(stranger_sync.error_code, 25, "SyncGroup from a non-member");

    let commit = |topic: &str| {
        OffsetCommitRequest::default()
            .with_group_id(group_id("g"))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(member.clone())
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(10),
                    ]),
            ])
    };
    let answer = connection.call(8, &commit("no-such-topic"));
    assert_eq!(
        answer.topics[0].partitions[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );

    // Only flexible versions (compact strings) can carry a 300 KB id.
    let huge = "g".repeat(300 * 1024);
    assert_eq!(
        connection.call(6, &join(&huge, "")).error_code,
        24,
        "a 300 KB group id: INVALID_GROUP_ID"
    );

    // Nothing changed: the member heartbeats in its generation, holds its assignment,
    // and a good commit still works.
    assert_eq!(heartbeat(&mut connection, &member, generation), 0);
    let view = protocol::describe_group(&mut connection, "g");
    assert_eq!(view.state, "Stable");
    assert_eq!(view.members.len(), 1);
    let answer = connection.call(8, &commit("t"));
    assert_eq!(answer.topics[0].partitions[0].error_code, 0);
}
