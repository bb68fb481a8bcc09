//! One Kafka connection: frames are read and decoded in order, handled concurrently
//! (up to a cap), and answered in the order they arrived; their effects take place in
//! that order too where Kafka's clients rely on it (see [`crate::ordering`]).
//!
//! A frame over the size limit, garbage, an unknown API key or an unsupported version
//! (other than ApiVersions, which answers with its v0 fallback) closes this connection
//! only; the rest of the agent keeps serving.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::context::Context;
use crate::frame;
use crate::handlers;
use crate::handoffs::{Handoff, Held};
use crate::ordering::{self, Lane};
use crate::versions;

/// Why a connection was closed by the agent.
#[derive(Debug, thiserror::Error)]
pub enum Close {
    #[error("frame of {0} bytes is over the limit of {1} bytes")]
    FrameTooLarge(i64, usize),
    #[error("frame length {0} is negative")]
    NegativeLength(i32),
    #[error("frame of {0} bytes is too short for a request header")]
    FrameTooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{0:?} version {1} is not supported")]
    UnsupportedVersion(ApiKey, i16),
    #[error("malformed {0:?} v{1} request: {2}")]
    Malformed(ApiKey, i16, String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
}

/// A decoded request, ready for its handler.
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub key: ApiKey,
    pub version: i16,
    pub body: RequestKind,
    /// Bytes of the frame, for produce backpressure.
    pub size: usize,
}

/// Serves a connection until the client leaves, it breaks a rule, or shutdown.
pub async fn serve(
    ctx: Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let span = tracing::info_span!("connection", %peer);
    async move {
        match run(ctx, stream, peer, shutdown).await {
            Ok(()) => tracing::debug!("client closed the connection"),
            Err(Close::Io(e)) => tracing::debug!(error = %e, "connection ended"),
            Err(reason) => tracing::warn!(%reason, "closing connection"),
        }
    }
    .instrument(span)
    .await
}

async fn run(
    ctx: Arc<Context>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), Close> {
    let (read, write) = stream.into_split();
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let mut lane = Lane::default();
    let (responses, mut pending) = mpsc::channel::<tokio::task::JoinHandle<Option<Bytes>>>(
        ctx.config.max_in_flight_per_connection,
    );

    // Answers go out in request order, whatever order their handlers finish in.
    let writer = tokio::spawn(async move {
        let mut write = BufWriter::new(write);
        let mut next = None;
        loop {
            let handler = match next.take() {
                Some(handler) => handler,
                None => match pending.recv().await {
                    Some(handler) => handler,
                    None => break,
                },
            };
            match handler.await {
                Ok(Some(frame)) => write.write_all(&frame).await?,
                Ok(None) => {}
                // A handler that failed has logged why; the client sees a closed connection.
                Err(_) => break,
            }
            // Write on without flushing only while the next answer is ready too: one
            // waiting for its commit must not hold back the answers before it.
            next = pending.try_recv().ok();
            if !next
                .as_ref()
                .is_some_and(|h: &tokio::task::JoinHandle<_>| h.is_finished())
            {
                write.flush().await?;
            }
        }
        write.flush().await?;
        write.into_inner().shutdown().await
    });

    let result = loop {
        let frame = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            frame = read_frame(&mut read, ctx.config.max_frame_bytes) => frame,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let request = match decode_request(frame) {
            Ok(Decoded::Request(request)) => request,
            Ok(Decoded::Answer(answer)) => {
                let _ = responses
                    .send(tokio::spawn(async move { Some(answer) }))
                    .await;
                continue;
            }
            Err(e) => break Err(e),
        };
        // Produce bytes count against the agent-wide buffer: at its bound, stop reading.
        let permit = if request.key == ApiKey::Produce {
            let bytes = u32::try_from(request.size).unwrap_or(u32::MAX);
            let acquire = ctx.produce_bytes.clone().acquire_many_owned(bytes);
            match ctx.handoffs.wait(Handoff::ProduceBuffer, acquire).await {
                Ok(permit) => Some((
                    permit,
                    Held::new(&ctx.handoffs.buffered_produce_bytes, i64::from(bytes)),
                )),
                Err(_) => break Ok(()),
            }
        } else {
            None
        };
        let Request {
            header,
            key,
            version,
            body,
            ..
        } = *request;
        // In order, before the next frame is read: a produce request's hand-over to the
        // writer, and the turn of a request whose effects follow the connection's order.
        let admitted = handlers::admit(&ctx, body).await;
        let turn = ordering::in_order(key).then(|| lane.take_turn());
        let ctx = ctx.clone();
        let handler = tokio::spawn(async move {
            let mut turn = turn;
            if let Some(turn) = &mut turn {
                turn.wait().await;
            }
            let answer = handle(&ctx, header, peer, key, version, admitted).await;
            drop((turn, permit));
            answer
        });
        if responses.send(handler).await.is_err() {
            break Ok(());
        }
    };
    drop(responses);
    match writer.await {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "write responses"),
    }
    result
}

/// Reads one length-prefixed frame; `None` at a clean end of stream.
async fn read_frame<R: AsyncReadExt + Unpin>(
    read: &mut R,
    max: usize,
) -> Result<Option<Bytes>, Close> {
    let len = match read.read_i32().await {
        Ok(len) => len,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if len < 0 {
        return Err(Close::NegativeLength(len));
    }
    let len = len as usize;
    // Checked before allocating: a lying length must not cost memory.
    if len > max {
        return Err(Close::FrameTooLarge(len as i64, max));
    }
    let mut buf = BytesMut::zeroed(len);
    read.read_exact(&mut buf).await?;
    Ok(Some(buf.freeze()))
}

/// What a frame decodes to.
#[derive(Debug)]
pub enum Decoded {
    Request(Box<Request>),
    /// An answer that needs no handler (ApiVersions at an unsupported version).
    Answer(Bytes),
}

/// Decodes one frame (without its length prefix) as the connection does before
/// dispatching it: the header's API key and version checked against
/// [`versions::SUPPORTED`], then the header and body decoded with kafka-protocol.
/// An error closes the connection.
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, Close> {
    let size = frame.len();
    if size < 8 {
        return Err(Close::FrameTooShort(size));
    }
    let raw_key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let key = ApiKey::try_from(raw_key).map_err(|_| Close::UnknownApiKey(raw_key))?;
    if !versions::is_supported(key, version) {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer in v0 with UNSUPPORTED_VERSION and the versions we serve.
            let correlation_id = (&frame[4..8]).get_i32();
            return Ok(Decoded::Answer(handlers::api_versions::unsupported(
                correlation_id,
            )));
        }
        return Err(Close::UnsupportedVersion(key, version));
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| Close::Malformed(key, version, e.to_string()))?;
    let body = RequestKind::decode(key, &mut frame, version)
        .map_err(|e| Close::Malformed(key, version, e.to_string()))?;
    Ok(Decoded::Request(Box::new(Request {
        header,
        key,
        version,
        body,
        size,
    })))
}

async fn handle(
    ctx: &Context,
    header: RequestHeader,
    peer: SocketAddr,
    key: ApiKey,
    version: i16,
    admitted: handlers::Admitted,
) -> Option<Bytes> {
    let span = tracing::debug_span!(
        "request",
        api_key = ?key,
        api_version = version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
    );
    let correlation_id = header.correlation_id;
    let response = handlers::dispatch(ctx, &header, peer, version, admitted)
        .instrument(span)
        .await?;
    match frame::encode(key, version, correlation_id, &response) {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::error!(api_key = ?key, version, error = %e, "encode response");
            None
        }
    }
}
