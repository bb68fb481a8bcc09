//! A TCP proxy the nemesis controls, standing between two parts of the cluster (clients
//! and an agent, or an agent and the control plane), so it can cut them off from each
//! other as a network partition does.
//!
//! - [`Link::Up`]: bytes pass both ways.
//! - [`Link::Blackhole`]: bytes sent are silently dropped and nothing comes back, on
//!   connections open now and on new ones, which are accepted and never answered: the
//!   far side looks alive but mute, so callers wait for their timeouts (the harsh
//!   partition, where packets vanish).
//! - [`Link::Refuse`]: every connection is closed, and new ones are closed at once (the
//!   kind partition, where the peer resets).
//! - [`Link::Flaky`]: bytes pass, but each connection is closed once a random number of
//!   bytes (up to 64 KiB, drawn per connection) has passed, mid-request or mid-response:
//!   answers go missing after the work was done, so clients retry what succeeded.
//!
//! Each change closes the connections that were blackholed: their streams lost bytes
//! midway and cannot be resumed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a proxy lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Blackhole,
    Refuse,
    Flaky,
}

/// A flaky link closes a connection after this many bytes at most.
const FLAKY_MAX_BYTES: u64 = 64 * 1024;

/// A running proxy; it stops with the runtime that started it.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    pub target: SocketAddr,
    link: watch::Sender<Link>,
}

impl Proxy {
    /// Listens on `listen` (port 0 for any) and forwards to `target`, which need not be
    /// listening yet.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (link, watching) = watch::channel(Link::Up);
        tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(u64::from(addr.port()));
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let budget = rng.random_range(1..=FLAKY_MAX_BYTES);
                tokio::spawn(connection(client, target, watching.clone(), budget));
            }
        });
        Ok(Proxy { addr, target, link })
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }

    pub fn link(&self) -> Link {
        *self.link.borrow()
    }
}

async fn connection(
    client: TcpStream,
    target: SocketAddr,
    mut link: watch::Receiver<Link>,
    budget: u64,
) {
    let _ = client.set_nodelay(true);
    let current = *link.borrow_and_update();
    match current {
        Link::Refuse => {}
        Link::Blackhole => swallow(client, link).await,
        Link::Up | Link::Flaky => {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let passed = AtomicU64::new(0);
            let (passed, limit) = (&passed, Limit { budget });
            tokio::select! {
                () = pump(client_read, server_write, link.clone(), passed, limit) => {}
                () = pump(server_read, client_write, link.clone(), passed, limit) => {}
            }
        }
    }
}

/// A connection accepted while blackholed: read and drop until the link changes.
async fn swallow(mut client: TcpStream, mut link: watch::Receiver<Link>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            changed = link.changed() => if changed.is_err() || *link.borrow() != Link::Blackhole {
                return;
            },
            read = client.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Where a flaky link cuts one connection.
#[derive(Clone, Copy)]
struct Limit {
    budget: u64,
}

/// Copies `from` to `to` while the link is up, drops bytes while it is blackholed, and
/// returns (closing both directions) when it is refused, heals from a blackhole, or is
/// flaky and `passed` (both directions) reached the connection's budget.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut link: watch::Receiver<Link>,
    passed: &AtomicU64,
    limit: Limit,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut lost_bytes = false;
    loop {
        tokio::select! {
            changed = link.changed() => {
                let now = if changed.is_err() { Link::Refuse } else { *link.borrow() };
                match now {
                    Link::Refuse => return,
                    Link::Up | Link::Flaky if lost_bytes => return,
                    Link::Up | Link::Flaky | Link::Blackhole => {}
                }
            }
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let now = *link.borrow();
                match now {
                    Link::Up => {
                        if to.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    Link::Flaky => {
                        let before = passed.fetch_add(n as u64, Ordering::SeqCst);
                        let fits = usize::try_from(limit.budget.saturating_sub(before))
                            .unwrap_or(usize::MAX)
                            .min(n);
                        if to.write_all(&buf[..fits]).await.is_err() || fits < n {
                            return;
                        }
                    }
                    Link::Blackhole | Link::Refuse => lost_bytes = true,
                }
            }
        }
    }
}
