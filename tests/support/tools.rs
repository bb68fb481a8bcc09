//! External Kafka clients the tests drive. `scripts/test` installs them, so a missing
//! one fails the test (it is never skipped).

use std::path::PathBuf;
use std::process::Command;

/// Debian's `kcat` (librdkafka 2.0.2).
pub fn kcat() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("kcat"))
        .find(|candidate| candidate.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "kcat is not installed; scripts/test installs it (apt-get install kcat). \
             This test fails rather than skips without it."
        )
    })
}

/// A Python with `confluent-kafka`: `$WEIR_TEST_PYTHON`, else the virtualenv that
/// `scripts/test` makes under `~/.cache/weir/kafka-clients` (or `$XDG_CACHE_HOME`).
pub fn python() -> PathBuf {
    let python = match std::env::var_os("WEIR_TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .expect("HOME or XDG_CACHE_HOME is set");
            cache.join("weir/kafka-clients/bin/python")
        }
    };
    let works = Command::new(&python)
        .args(["-c", "import confluent_kafka"])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        works,
        "{} cannot import confluent_kafka; scripts/test installs it into a virtualenv \
         (or set WEIR_TEST_PYTHON). This test fails rather than skips without it.",
        python.display()
    );
    python
}

/// The directory of the client scripts (`tests/clients`).
pub fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs `command` with `input` on its stdin; returns its stdout. Panics if it fails or
/// is still running after `kafka::PATIENCE` (a bound against hanging, not a timing
/// assertion).
pub fn run(command: &mut Command, input: &[u8]) -> String {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {shown}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + super::kafka::PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{shown} was still running after {:?}; stderr:\n{}",
                super::kafka::PATIENCE,
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    assert!(
        status.success(),
        "{shown} failed ({status}); stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    stdout
}
