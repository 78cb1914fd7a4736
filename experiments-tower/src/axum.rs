//! The axum extractor (feature `axum`): [`ExperimentsContext`] as a handler argument.

use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::context::ExperimentsContext;

/// The rejection of the [`ExperimentsContext`] extractor on a route that is not behind an
/// [`ExperimentsLayer`](crate::ExperimentsLayer): a server bug, answered with
/// `500 Internal Server Error` and a plain-text body saying how to fix it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingExperimentsLayer;

impl MissingExperimentsLayer {
    /// The response body (and `Display` text).
    pub const MESSAGE: &'static str = "experiments-tower: no ExperimentsContext in the \
        request's extensions: this route is not behind ExperimentsLayer (add \
        `.layer(ExperimentsLayer::new(client))` to the Router after its routes)";
}

impl fmt::Display for MissingExperimentsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MESSAGE)
    }
}

impl std::error::Error for MissingExperimentsLayer {}

impl IntoResponse for MissingExperimentsLayer {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, Self::MESSAGE).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ExperimentsContext {
    type Rejection = MissingExperimentsLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<ExperimentsContext>().cloned().ok_or(MissingExperimentsLayer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ExperimentsContext {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ExperimentsContext>().cloned())
    }
}
