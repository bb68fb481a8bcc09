//! A bound on hanging: a test whose `weir` process has run for longer than any test
//! needs (five minutes; `WEIR_TEST_HANG_SECS` to change it) is taken to hang. The
//! watchdog prints what it can see — every thread's stack of the test and of its `weir`
//! processes (when `gdb` is installed) and the end of their logs — kills those
//! processes and ends the test binary with a failure, so the rest of the suite still
//! runs. The longest test binary takes under a minute; this is not a timing assertion.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

struct Watched {
    id: u64,
    name: String,
    pid: u32,
    log: PathBuf,
    since: Instant,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static START: Once = Once::new();

fn limit() -> Duration {
    let secs = std::env::var("WEIR_TEST_HANG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// Watches a running `weir` process until [`forget`] is called with the id returned.
pub fn watch(name: &str, pid: u32, log: PathBuf) -> u64 {
    START.call_once(|| {
        std::thread::Builder::new()
            .name("hang-watchdog".into())
            .spawn(run)
            .expect("start the hang watchdog");
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    WATCHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Watched {
            id,
            name: name.to_string(),
            pid,
            log,
            since: Instant::now(),
        });
    id
}

/// Stops watching a process (it was stopped or killed).
pub fn forget(id: u64) {
    WATCHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|w| w.id != id);
}

fn run() {
    let limit = limit();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let watched = WATCHED.lock().unwrap_or_else(|e| e.into_inner());
        let Some(hung) = watched.iter().find(|w| w.since.elapsed() > limit) else {
            continue;
        };
        say(format!(
            "\n---- HANG: {} (pid {}) has run for over {limit:?}; no test needs that long, so \
             this test binary is taken to hang. What it was doing:",
            hung.name, hung.pid
        ));
        backtrace("this test binary", std::process::id());
        for w in watched.iter() {
            backtrace(&w.name, w.pid);
            let text = std::fs::read(&w.log).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let lines: Vec<&str> = text.lines().collect();
            say(format!(
                "---- last lines of {} ({}):\n{}",
                w.name,
                w.log.display(),
                lines[lines.len().saturating_sub(80)..].join("\n")
            ));
        }
        for w in watched.iter() {
            let _ = Command::new("kill")
                .args(["-KILL", &w.pid.to_string()])
                .status();
        }
        say("---- HANG: ending the test binary with a failure".to_string());
        std::process::exit(101);
    }
}

/// Straight to the process's stderr: the test harness captures `eprintln!` from
/// threads a test started, and would drop it on exit.
fn say(text: String) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Every thread's stack of `pid`, through gdb when it is installed.
fn backtrace(what: &str, pid: u32) {
    match Command::new("gdb")
        .args([
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt 30",
        ])
        .output()
    {
        Ok(out) => say(format!(
            "---- stacks of {what} (pid {pid}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )),
        Err(e) => say(format!("---- no stacks of {what} (pid {pid}): gdb: {e}")),
    }
}
