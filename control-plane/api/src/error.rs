//! Why the client could not reach the control plane. Calls themselves fail with a
//! `tonic::Status`.

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A URL or token that can never work.
    #[error("{0}")]
    Invalid(String),
    /// No instance could be reached, or the one reached refused us.
    #[error("connect to the control plane at {url}: {reason}")]
    Connect { url: String, reason: String },
}

impl ClientError {
    /// Whether trying again later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }
}
