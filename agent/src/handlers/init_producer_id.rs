//! InitProducerId: an id and epoch for an idempotent producer, from the control plane,
//! which keeps the id counter and the epochs in the metadata store.
//!
//! With a transactional id the request is refused with
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED: Weir does not do transactions yet, and that
//! code is fatal in librdkafka and the Java client, so the application learns at once
//! instead of retrying forever (as it would on COORDINATOR_NOT_AVAILABLE), and Produce
//! refuses transactional requests with the same code.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use weir_control_plane_api::admin::ProducerIdentity;

use crate::context::Context;
use crate::error::kafka_error;

pub async fn handle(ctx: &Context, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let refused = |error: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    // Fields of v3+; before that they decode as their defaults (-1, -1): a new id.
    let current = (request.producer_id.0 >= 0).then_some(ProducerIdentity {
        id: request.producer_id.0,
        epoch: request.producer_epoch,
    });
    match ctx.control.init_producer_id(current).await {
        Ok(Ok(producer)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer.id))
            .with_producer_epoch(producer.epoch),
        Ok(Err(refusal)) => {
            tracing::info!(message = %refusal.message, "InitProducerId refused");
            refused(kafka_error(refusal.code as i32))
        }
        Err(status) => {
            tracing::warn!(error = %status, "InitProducerId at the control plane");
            // Retriable for the clients: they ask again after a backoff.
            refused(match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    ResponseError::CoordinatorNotAvailable
                }
                _ => ResponseError::UnknownServerError,
            })
        }
    }
}
