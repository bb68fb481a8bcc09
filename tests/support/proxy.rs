//! A TCP proxy that cuts connections mid-flight: each connection it forwards is given a
//! random byte budget (from a seeded RNG) and is closed, both ways, as soon as that many
//! bytes have passed — mid-frame, so requests arrive half-sent and answers go missing.
//! It cuts only while armed, and after `max_cuts` cuts it forwards faithfully, so a test
//! can set up and check through it and always finishes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How a proxy cuts.
#[derive(Clone, Copy, Debug)]
pub struct Cutting {
    pub seed: u64,
    /// Each connection's budget is drawn uniformly from this range of bytes.
    pub min_bytes: u64,
    pub max_bytes: u64,
    /// Cuts at most this many connections in all.
    pub max_cuts: usize,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port now; forwards each connection to `target`, which
    /// need not be listening yet.
    pub fn start(target: SocketAddr, cutting: Cutting) -> Proxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("proxy address");
        let cuts = Arc::new(AtomicUsize::new(0));
        let armed = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        let (counted, stop, arming) = (cuts.clone(), cancel.clone(), armed.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(std_listener).expect("tokio listener");
                let mut rng = SmallRng::seed_from_u64(cutting.seed);
                loop {
                    let (client, _) = tokio::select! {
                        () = stop.cancelled() => break,
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(_) => continue,
                        },
                    };
                    let budget = rng.random_range(cutting.min_bytes..=cutting.max_bytes);
                    let limits = Limits {
                        budget,
                        max_cuts: cutting.max_cuts,
                        cuts: counted.clone(),
                        armed: arming.clone(),
                    };
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = forward(client, target, limits) => {}
                        }
                    });
                }
            });
        });
        Proxy {
            addr,
            cuts,
            armed,
            cancel,
            thread: Some(thread),
        }
    }

    /// Starts or stops cutting (connections open now included).
    pub fn arm(&self, armed: bool) {
        self.armed.store(armed, Ordering::SeqCst);
    }

    /// Connections cut so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// When one connection is cut.
#[derive(Clone)]
struct Limits {
    budget: u64,
    max_cuts: usize,
    cuts: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
}

/// Copies both ways until either side closes or, while armed, `budget` bytes (both ways
/// together) have passed; then closes both.
async fn forward(client: TcpStream, target: SocketAddr, limits: Limits) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let passed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cut = CancellationToken::new();
    let pump = |mut from: tokio::net::tcp::OwnedReadHalf,
                mut to: tokio::net::tcp::OwnedWriteHalf| {
        let (passed, cut, limits) = (passed.clone(), cut.clone(), limits.clone());
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = tokio::select! {
                    () = cut.cancelled() => return,
                    read = from.read(&mut buf) => match read {
                        Ok(0) | Err(_) => { cut.cancel(); return; }
                        Ok(n) => n,
                    },
                };
                let before = passed.fetch_add(n as u64, Ordering::SeqCst);
                if before + n as u64 > limits.budget
                    && limits.armed.load(Ordering::SeqCst)
                    && limits
                        .cuts
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                            (c < limits.max_cuts).then_some(c + 1)
                        })
                        .is_ok()
                {
                    // Send what fits in the budget, then cut both ways.
                    let fits = usize::try_from(limits.budget.saturating_sub(before)).unwrap_or(n);
                    let _ = to.write_all(&buf[..fits.min(n)]).await;
                    cut.cancel();
                    return;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    cut.cancel();
                    return;
                }
            }
        }
    };
    tokio::join!(
        pump(client_read, server_write),
        pump(server_read, client_write)
    );
}
