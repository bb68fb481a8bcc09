//! The Weir agent: Kafka listener, produce batching and upload, fetch. Lands with the agent issue.
