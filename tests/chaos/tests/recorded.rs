//! The checker on recorded histories (`tests/chaos/histories/`): each file, the classes
//! it must be found to hold, through the library and through `weir-chaos check`.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_chaos::checker::{self, Class};
use weir_chaos::history;

/// Each history and exactly the classes the checker must find in it. `recorded-*` were
/// recorded by `weir-chaos run` against deliberately broken builds (docs/reliability.md
/// says how); `handwritten-*` are small ones written to show each case plainly.
const HISTORIES: &[(&str, &[Class])] = &[
    // The sequencer appended a producer's retry instead of answering it with the first
    // copy's offset (`--faults partition --seed 3 --duration 60 --producers 2 --rate 15
    // --partitions 3`): retries after cut client connections stored twice.
    (
        "recorded-sequencer-skips-idempotence.jsonl.gz",
        &[Class::Duplicates],
    ),
    // The agent acked each batch once its object was uploaded, before the commit
    // (`--faults partition,store,kill --seed 4`, same sizes): acks carry offsets the
    // commit never gave, and batches whose commit failed were acked anyway.
    (
        "recorded-agent-acks-before-commit.jsonl.gz",
        &[
            Class::InconsistentOffsets,
            Class::Duplicates,
            Class::LostWrites,
            Class::NonMonotonicSends,
            Class::Unseen,
        ],
    ),
    // The control plane read retention.ms as seconds (its value divided by 1,000, so
    // 30 ms for the topic's 30 s) with the data lifecycle on (`--seed 4 --duration 60
    // --subscribe`, same sizes): every record went within a second or two of its send,
    // two of them before anyone read them.
    (
        "recorded-lifecycle-retention-ms-read-as-seconds.jsonl.gz",
        &[Class::UnexplainedRemovals],
    ),
    ("handwritten-clean.jsonl", &[]),
    // A producer's retried batch stored a second time: its values at two offsets each.
    (
        "handwritten-sequencer-skips-idempotence.jsonl",
        &[Class::Duplicates],
    ),
    // Acks sent before the commit, then the agent killed: partition 0's acked offsets
    // handed again to later batches (two values at one offset, the producer's offsets
    // going back, the first value lost), partition 1's acked tail gone (never read, and
    // absent from the index).
    (
        "handwritten-acks-before-commit.jsonl",
        &[
            Class::InconsistentOffsets,
            Class::LostWrites,
            Class::NonMonotonicSends,
            Class::Unseen,
            Class::AckedNotInIndex,
        ],
    ),
];

fn histories() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("histories")
}

#[test]
fn the_checker_finds_what_each_recorded_history_holds() {
    for (name, expected) in HISTORIES {
        let events = history::read(&histories().join(name)).expect("read the history");
        let report = checker::check(&events);
        assert_eq!(report.found(), *expected, "{name}:\n{report}");
        // Histories recorded before the sampler read committed offsets, consumers logged
        // their fetch errors, the oracle read the agents' missing objects and waited for
        // the lifecycle to settle have nothing for those classes to check; the
        // `recorded-lifecycle-*` ones have everything.
        let lifecycle = name.starts_with("recorded-lifecycle-");
        for class in Class::ALL {
            let older_lack = matches!(
                class,
                Class::CommittedOffsetRegressions | Class::LiveFetchFailures | Class::LeakedObjects
            );
            assert!(
                report.checked(class) || (older_lack && !lifecycle),
                "{name}: {class} not checked"
            );
        }
        assert_eq!(report.warning_count, 0, "{name}:\n{report}");
    }
}

#[test]
fn every_recorded_history_is_in_the_table() {
    let mut files: Vec<String> = std::fs::read_dir(histories())
        .expect("list the histories")
        .map(|entry| {
            let entry = entry.expect("read the histories directory");
            entry.file_name().to_string_lossy().into_owned()
        })
        .filter(|name| name.ends_with(".jsonl") || name.ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    let mut table: Vec<String> = HISTORIES.iter().map(|(name, _)| name.to_string()).collect();
    table.sort();
    assert_eq!(files, table);
}

fn weir_chaos_check(file: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir-chaos"))
        .arg("check")
        .arg(file)
        .output()
        .expect("run weir-chaos check")
}

#[test]
fn check_exits_0_on_a_clean_history_and_1_naming_the_classes_found() {
    for (name, expected) in HISTORIES {
        let output = weir_chaos_check(&histories().join(name));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let code = if expected.is_empty() { 0 } else { 1 };
        assert_eq!(output.status.code(), Some(code), "{name}:\n{stdout}");
        for class in *expected {
            let line = format!("  {:<28}  FOUND ", class.name());
            assert!(stdout.contains(&line), "{name}: no {line:?} in\n{stdout}");
        }
        if expected.is_empty() {
            assert!(
                stdout.ends_with("verdict: no anomaly\n"),
                "{name}:\n{stdout}"
            );
        }
    }
}

#[test]
fn check_fails_on_a_file_that_is_not_a_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.jsonl");
    std::fs::write(&file, "{\"index\":0}\n").expect("write");
    let output = weir_chaos_check(&file);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.jsonl:1: not a history event"),
        "{stderr}"
    );
}
