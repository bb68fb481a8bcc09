//! A client for agents and tools: every service over one channel, each call
//! carrying the token.

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::BearerToken;
use crate::error::{Error, Result};
use crate::proto::agents_client::AgentsClient;
use crate::proto::groups_client::GroupsClient;
use crate::proto::index_client::IndexClient;
use crate::proto::producers_client::ProducersClient;
use crate::proto::sequencer_client::SequencerClient;
use crate::proto::topics_client::TopicsClient;

type Authed = InterceptedService<Channel, BearerToken>;

/// Large enough for a commit of the most batches one object may carry.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ControlPlaneClient {
    pub topics: TopicsClient<Authed>,
    pub sequencer: SequencerClient<Authed>,
    pub index: IndexClient<Authed>,
    pub agents: AgentsClient<Authed>,
    pub producers: ProducersClient<Authed>,
    pub groups: GroupsClient<Authed>,
}

impl ControlPlaneClient {
    /// Connects to `url` (`http://host:port`).
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self> {
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::InvalidRequest(format!("control-plane URL {url:?}: {e}")))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|source| Error::Connect {
            url: url.to_string(),
            source,
        })?;
        Self::from_channel(channel, token)
    }

    pub fn from_channel(channel: Channel, token: Option<&str>) -> Result<Self> {
        let auth = BearerToken::new(token).map_err(Error::InvalidRequest)?;
        let authed = || InterceptedService::new(channel.clone(), auth.clone());
        Ok(ControlPlaneClient {
            topics: TopicsClient::new(authed()),
            sequencer: SequencerClient::new(authed())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            index: IndexClient::new(authed()).max_decoding_message_size(MAX_MESSAGE_BYTES),
            agents: AgentsClient::new(authed()),
            producers: ProducersClient::new(authed()),
            groups: GroupsClient::new(authed()),
        })
    }
}
