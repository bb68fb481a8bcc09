//! Block cache over object storage with single-flight loads. Lands with the agent issue.
