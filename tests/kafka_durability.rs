//! Acknowledged means durable: records acknowledged by a `weir playground` are all there
//! after it is killed with SIGKILL (no flush, no goodbye) and started again on the same
//! data directory — including those acknowledged while more were in flight at the kill —
//! and producing afterwards continues at the high watermark, reusing no offset.

#[path = "support/mod.rs"]
mod support;

use support::Playground;
use support::scenarios;

#[test]
fn acknowledged_records_survive_kill_9_and_restart() {
    scenarios::acknowledged_records_survive_kill_9(&mut Playground::start(), "durable", 5_000, 3);
}
