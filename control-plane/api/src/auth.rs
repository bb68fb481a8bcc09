//! The bearer token every call carries when the control plane has one.

use std::sync::Arc;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Server side: rejects calls without the configured token. With no token configured
/// (the playground), every call is let through.
#[derive(Clone, Debug, Default)]
pub struct RequireToken {
    expected: Option<Arc<[u8]>>,
}

impl RequireToken {
    pub fn new(token: Option<&str>) -> Self {
        RequireToken {
            expected: token.map(|t| format!("Bearer {t}").into_bytes().into()),
        }
    }
}

/// Compares without an early exit, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        match request.metadata().get("authorization") {
            None => Err(Status::unauthenticated(
                "missing control-plane token: send `authorization: Bearer <token>`",
            )),
            Some(given) if same(given.as_bytes(), expected) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid control-plane token")),
        }
    }
}

/// Client side: adds the token to every call.
#[derive(Clone, Debug, Default)]
pub struct BearerToken {
    header: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl BearerToken {
    /// Fails if the token holds characters a header cannot carry.
    pub fn new(token: Option<&str>) -> Result<Self, String> {
        let header = token
            .map(|t| {
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| "the control-plane token must be printable ASCII".to_string())
            })
            .transpose()?;
        Ok(BearerToken { header })
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(server: &mut RequireToken, token: Option<&str>) -> Result<(), Status> {
        let request = BearerToken::new(token)
            .expect("ascii")
            .call(Request::new(()))?;
        server.call(request).map(|_| ())
    }

    #[test]
    fn tokens_are_checked() {
        let mut server = RequireToken::new(Some("s3cret"));
        assert!(call(&mut server, Some("s3cret")).is_ok());
        let err = call(&mut server, Some("guess")).expect_err("wrong token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let err = call(&mut server, None).expect_err("no token");
        assert!(err.message().contains("missing"), "{}", err.message());
        assert!(call(&mut RequireToken::new(None), None).is_ok());
    }
}
