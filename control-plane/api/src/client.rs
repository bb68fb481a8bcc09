//! A client for agents and tools: every service over one [`Failover`] channel, each call
//! carrying the token.
//!
//! The client is given one or more control-plane URLs (every instance, or one load
//! balancer) and sends each call to the instance it believes holds the sequencer lease:
//! a standby marks every answer with the `weir-lease-holder` header. When it names
//! another URL, the client moves there; when it names none, the client tries the next
//! URL it was given; when it names the URL the client used (a load balancer's), or
//! names none and the client has only that URL, the client opens a new connection,
//! which a load balancer that checks `/readyz` sends to the holder. A call that cannot reach its instance moves
//! the client on to the next URL it was given. The call that found out fails (callers
//! retry their retriable errors); the ones after it go to the right place. See
//! docs/control-plane.md, "Failover".

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tonic::body::Body;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tower::ServiceExt;

use crate::LEASE_HOLDER_HEADER;
use crate::auth::BearerToken;
use crate::error::ClientError as Error;

type Result<T, E = Error> = std::result::Result<T, E>;
use crate::proto::agents_client::AgentsClient;
use crate::proto::groups_client::GroupsClient;
use crate::proto::index_client::IndexClient;
use crate::proto::jobs_client::JobsClient;
use crate::proto::producers_client::ProducersClient;
use crate::proto::sequencer_client::SequencerClient;
use crate::proto::topics_client::TopicsClient;

type Authed = InterceptedService<Failover, BearerToken>;

/// Large enough for a commit of the most batches one object may carry.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct ControlPlaneClient {
    pub topics: TopicsClient<Authed>,
    pub sequencer: SequencerClient<Authed>,
    pub index: IndexClient<Authed>,
    pub agents: AgentsClient<Authed>,
    pub producers: ProducersClient<Authed>,
    pub groups: GroupsClient<Authed>,
    pub jobs: JobsClient<Authed>,
}

/// How to reach the control plane.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Its instances' URLs (`http://host:port` or `https://host:port`), or one load
    /// balancer's.
    pub urls: Vec<String>,
    pub token: Option<String>,
    /// PEM certificates to trust for `https://` URLs instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl ClientOptions {
    /// `urls` is one URL or several separated by commas.
    pub fn new(urls: &str, token: Option<&str>) -> Self {
        ClientOptions {
            urls: urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            token: token.map(str::to_string),
            ca_pem: None,
        }
    }
}

impl ControlPlaneClient {
    /// Connects to `urls` (one URL, or several separated by commas) with `token`.
    pub async fn connect(urls: &str, token: Option<&str>) -> Result<Self> {
        Self::connect_with(ClientOptions::new(urls, token)).await
    }

    /// Connects to the first instance that answers, and checks it accepts us: a wrong
    /// URL, CA, scheme or token fails here, with what went wrong, rather than on the
    /// first produce.
    pub async fn connect_with(options: ClientOptions) -> Result<Self> {
        let failover = Failover::new(&options)?;
        let mut failures = Vec::new();
        for url in &options.urls {
            match failover.inner.endpoint(url)?.connect().await {
                Ok(channel) => {
                    failover.inner.use_connected(url, channel);
                    let client = Self::from_failover(failover, options.token.as_deref())?;
                    let mut agents = client.agents.clone();
                    match agents
                        .list_agents(crate::proto::ListAgentsRequest::default())
                        .await
                    {
                        Ok(_) => return Ok(client),
                        Err(status) => {
                            return Err(Error::Connect {
                                url: url.clone(),
                                reason: probe_failure(url, &status),
                            });
                        }
                    }
                }
                Err(e) => failures.push((url, connect_failure(url, &e, options.ca_pem.is_some()))),
            }
        }
        let reason = match failures.as_slice() {
            [(_, only)] => only.clone(),
            all => all
                .iter()
                .map(|(url, why)| format!("{url}: {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        };
        Err(Error::Connect {
            url: options.urls.join(","),
            reason,
        })
    }

    fn from_failover(failover: Failover, token: Option<&str>) -> Result<Self> {
        let auth = BearerToken::new(token).map_err(Error::Invalid)?;
        let authed = || InterceptedService::new(failover.clone(), auth.clone());
        Ok(ControlPlaneClient {
            topics: TopicsClient::new(authed()),
            sequencer: SequencerClient::new(authed())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            index: IndexClient::new(authed()).max_decoding_message_size(MAX_MESSAGE_BYTES),
            agents: AgentsClient::new(authed()),
            producers: ProducersClient::new(authed()),
            groups: GroupsClient::new(authed()),
            jobs: JobsClient::new(authed())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        })
    }
}

/// The whole chain of an error's causes: tonic's own message is "transport error".
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn connect_failure(url: &str, error: &tonic::transport::Error, ca_given: bool) -> String {
    let text = causes(error);
    if !(url.starts_with("https://") && text.contains("certificate")) {
        text
    } else if ca_given {
        format!(
            "{text} (is the CA given with --control-plane-ca the one that signed the control plane's certificate?)"
        )
    } else {
        format!(
            "{text} (the system's roots do not trust it: name the CA that signed it with --control-plane-ca)"
        )
    }
}

fn probe_failure(url: &str, status: &tonic::Status) -> String {
    let text = match std::error::Error::source(status) {
        Some(source) => format!("{}: {}", status.message(), causes(source)),
        None => status.message().to_string(),
    };
    match status.code() {
        tonic::Code::Unauthenticated => format!("the control plane refused the token: {text}"),
        _ if url.starts_with("http://") => {
            format!("{text} (if the control plane serves TLS, use an https:// URL)")
        }
        _ => text,
    }
}

/// A gRPC channel that follows the sequencer lease between control-plane instances.
#[derive(Clone, Debug)]
pub struct Failover {
    inner: Arc<Targets>,
}

#[derive(Debug)]
struct Targets {
    /// The URLs configured, in order: where to go when the current one cannot be reached.
    configured: Vec<String>,
    tls: ClientTlsConfig,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    current: String,
    channels: HashMap<String, Channel>,
    /// When the current URL's connection was last replaced because a standby answered
    /// on it: at most one new connection a second.
    reconnected: Option<Instant>,
}

/// How often a client reconnects to a URL whose answers come from a standby.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

impl Failover {
    fn new(options: &ClientOptions) -> Result<Self> {
        let Some(first) = options.urls.first() else {
            return Err(Error::Invalid("no control-plane URL given".to_string()));
        };
        let tls = match &options.ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        let targets = Targets {
            configured: options.urls.clone(),
            tls,
            state: Mutex::new(State {
                current: first.clone(),
                channels: HashMap::new(),
                reconnected: None,
            }),
        };
        for url in &options.urls {
            targets.endpoint(url)?;
        }
        Ok(Failover {
            inner: Arc::new(targets),
        })
    }
}

impl Targets {
    fn endpoint(&self, url: &str) -> Result<Endpoint> {
        let invalid = |why: String| Error::Invalid(format!("control-plane URL {url:?}: {why}"));
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("it must start with http:// or https://".into()));
        }
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls.clone())
                .map_err(|e| invalid(causes(&e)))?;
        }
        Ok(endpoint)
    }

    fn use_connected(&self, url: &str, channel: Channel) {
        let mut state = self.state.lock();
        state.channels.insert(url.to_string(), channel);
        state.current = url.to_string();
    }

    /// The current URL and its channel (connected lazily the first time).
    fn current(&self) -> Result<(String, Channel)> {
        let mut state = self.state.lock();
        let url = state.current.clone();
        if let Some(channel) = state.channels.get(&url) {
            return Ok((url, channel.clone()));
        }
        let channel = self.endpoint(&url)?.connect_lazy();
        state.channels.insert(url.clone(), channel.clone());
        Ok((url, channel))
    }

    /// A standby answered at `from`, naming `holder` (or no one). Go to the holder;
    /// when it names no one, try the next URL given; when it names `from` itself (a
    /// load balancer's URL), open a new connection to it. At most once a second.
    fn follow(&self, from: &str, holder: &str) {
        let mut state = self.state.lock();
        if state.current != from {
            return;
        }
        if !holder.is_empty() && holder != from {
            tracing::info!(
                from,
                to = holder,
                "the control plane at {from} is a standby: following the lease to {holder}"
            );
            state.current = holder.to_string();
            return;
        }
        if state
            .reconnected
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY)
        {
            return;
        }
        state.reconnected = Some(Instant::now());
        let position = self.configured.iter().position(|u| u == from);
        if holder.is_empty()
            && self.configured.len() > 1
            && let Some(i) = position
        {
            let next = self.configured[(i + 1) % self.configured.len()].clone();
            tracing::info!(
                from,
                to = %next,
                "the control plane at {from} is a standby and knows no holder: trying {next}"
            );
            state.current = next;
        } else if let Ok(endpoint) = self.endpoint(from) {
            tracing::info!(
                url = from,
                "a standby answered at {from}: connecting again to reach the lease holder"
            );
            state
                .channels
                .insert(from.to_string(), endpoint.connect_lazy());
        }
    }

    /// `failed` could not be reached: move to the next configured URL.
    fn move_on(&self, failed: &str) {
        let mut state = self.state.lock();
        if state.current != failed {
            return;
        }
        let next = match self.configured.iter().position(|u| u == failed) {
            // The only one there is: its channel keeps reconnecting.
            Some(_) if self.configured.len() == 1 => return,
            Some(i) => &self.configured[(i + 1) % self.configured.len()],
            // A holder learned from a header that is gone: back to the first configured.
            None => &self.configured[0],
        };
        tracing::warn!(failed, next = %next, "control plane unreachable: trying the next one");
        state.current = next.clone();
    }
}

impl tower::Service<http::Request<Body>> for Failover {
    type Response = http::Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, std::result::Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        // Each call readies the channel it picks.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let targets = self.inner.clone();
        Box::pin(async move {
            let (url, channel) = match targets.current() {
                Ok(current) => current,
                // Only a URL learned from a header can fail to parse: drop it.
                Err(e) => {
                    tracing::warn!(error = %e, "bad lease-holder URL");
                    let first = targets.configured[0].clone();
                    targets.state.lock().current = first;
                    targets.current().expect("configured URLs were checked")
                }
            };
            match channel.oneshot(request).await {
                Ok(response) => {
                    if let Some(holder) = response
                        .headers()
                        .get(LEASE_HOLDER_HEADER)
                        .and_then(|v| v.to_str().ok())
                    {
                        targets.follow(&url, holder);
                    }
                    Ok(response)
                }
                Err(e) => {
                    targets.move_on(&url);
                    Err(e)
                }
            }
        })
    }
}
