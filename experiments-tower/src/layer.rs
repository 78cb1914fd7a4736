//! The layer and its service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use experiments_sdk::{ExperimentsClient, RequestExperiments};
use http::Request;
use http::request::Parts;
use tower::{Layer, Service};

use crate::context::ExperimentsContext;
use crate::correlation::{CorrelationHeader, CorrelationSource};
use crate::inputs::{InputsExtractor, NoInputs};

/// A [`tower::Layer`] giving every request its experiments: it wraps any service of
/// `http::Request<B>` (an axum `Router`, a hyper service, a `tower::service_fn`) in an
/// [`ExperimentsService`], which for each request
///
/// 1. picks a correlation id from the request's headers ([`CorrelationSource`]: by default
///    the `traceparent` trace id, then `x-request-id`, else none);
/// 2. starts a [`RequestExperiments`] from the shared client with that id, bound to the
///    config snapshot current now, with its own bucketing-event dedupe;
/// 3. builds the base inputs with the [`InputsExtractor`] (by default none);
/// 4. inserts an [`ExperimentsContext`] of both into the request's extensions; and
/// 5. runs the inner service — its `call` and its whole response future — inside
///    [`RequestExperiments::scope`], so [`RequestExperiments::current`] finds the request
///    (an OpenFeature provider in a handler shares its dedupe and correlation id).
///
/// It never rejects a request and never panics on a header value; responses and errors are
/// the inner service's.
///
/// ```
/// use experiments_sdk::{ExperimentsClient, Inputs};
/// use experiments_tower::{CorrelationHeader, ExperimentsLayer};
/// use http::request::Parts;
///
/// fn layer(client: ExperimentsClient) -> ExperimentsLayer<impl experiments_tower::InputsExtractor> {
///     ExperimentsLayer::new(client)
///         .correlation_headers([CorrelationHeader::x_request_id(), CorrelationHeader::traceparent()])
///         .random_correlation_id(true)
///         .inputs(|parts: &Parts| {
///             let user = parts.headers.get("x-user-id").and_then(|v| v.to_str().ok());
///             match user {
///                 Some(user) => Inputs::new().with("user_id", user).with("logged_in", true),
///                 None => Inputs::new().with("logged_in", false),
///             }
///         })
/// }
/// ```
#[derive(Clone)]
pub struct ExperimentsLayer<X = NoInputs> {
    client: ExperimentsClient,
    correlation: CorrelationSource,
    extractor: X,
}

impl<X> fmt::Debug for ExperimentsLayer<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExperimentsLayer")
            .field("client", &self.client)
            .field("correlation", &self.correlation)
            .field("extractor", &std::any::type_name::<X>())
            .finish()
    }
}

impl ExperimentsLayer<NoInputs> {
    /// A layer over `client` (cloned into every service it builds; all share its config
    /// store and event pipeline), with the default [`CorrelationSource`] and no base inputs.
    pub fn new(client: ExperimentsClient) -> Self {
        ExperimentsLayer { client, correlation: CorrelationSource::default(), extractor: NoInputs }
    }
}

impl<X> ExperimentsLayer<X> {
    /// Builds each request's base inputs with `extractor` (a `Fn(&Parts) -> Inputs`
    /// closure or any [`InputsExtractor`]).
    pub fn inputs<Y: InputsExtractor>(self, extractor: Y) -> ExperimentsLayer<Y> {
        ExperimentsLayer { client: self.client, correlation: self.correlation, extractor }
    }

    /// Takes correlation ids as `source` says (headers, order, random fallback).
    #[must_use]
    pub fn correlation(mut self, source: CorrelationSource) -> Self {
        self.correlation = source;
        self
    }

    /// Reads correlation ids from these headers, the first usable one winning; keeps the
    /// random-fallback choice. An empty list reads none.
    #[must_use]
    pub fn correlation_headers(
        mut self,
        headers: impl IntoIterator<Item = CorrelationHeader>,
    ) -> Self {
        let random = self.correlation.has_random_fallback();
        self.correlation = CorrelationSource::new(headers).random_fallback(random);
        self
    }

    /// Whether a request without a usable correlation header gets a random id (a UUID v4)
    /// instead of none. Off by default.
    #[must_use]
    pub fn random_correlation_id(mut self, on: bool) -> Self {
        self.correlation = self.correlation.random_fallback(on);
        self
    }

    /// The client requests are started from.
    pub fn client(&self) -> &ExperimentsClient {
        &self.client
    }

    /// Where correlation ids come from.
    pub fn correlation_source(&self) -> &CorrelationSource {
        &self.correlation
    }
}

impl<S, X: Clone> Layer<S> for ExperimentsLayer<X> {
    type Service = ExperimentsService<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        ExperimentsService {
            inner,
            shared: Arc::new(Shared {
                client: self.client.clone(),
                correlation: self.correlation.clone(),
                extractor: self.extractor.clone(),
            }),
        }
    }
}

/// What every clone of a service shares: one `Arc`, so cloning the service per request (as
/// axum does) costs one reference count.
struct Shared<X> {
    client: ExperimentsClient,
    correlation: CorrelationSource,
    extractor: X,
}

impl<X: InputsExtractor> Shared<X> {
    /// Starts the request's experiments and puts its context into `parts.extensions`.
    fn start(&self, parts: &mut Parts) -> Arc<RequestExperiments> {
        let mut builder = self.client.request_builder();
        if let Some(id) = self.correlation.resolve(&parts.headers) {
            builder = builder.correlation_id(id);
        }
        let request = Arc::new(builder.start());
        let inputs = self.extractor.inputs(parts);
        parts.extensions.insert(ExperimentsContext::new(Arc::clone(&request), inputs));
        request
    }
}

/// The service [`ExperimentsLayer`] wraps around an inner service (see the layer for what
/// it does per request).
///
/// Readiness is the inner service's. `call` moves the inner service it was polled ready
/// through into the response future (leaving a clone in its place, tower's usual pattern
/// for services that call their inner service from a future), so the inner `call` itself
/// runs inside the request's [`RequestExperiments::scope`] too; hence the `Clone` bound.
pub struct ExperimentsService<S, X = NoInputs> {
    inner: S,
    shared: Arc<Shared<X>>,
}

impl<S: Clone, X> Clone for ExperimentsService<S, X> {
    fn clone(&self) -> Self {
        ExperimentsService { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<S: fmt::Debug, X> fmt::Debug for ExperimentsService<S, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExperimentsService")
            .field("inner", &self.inner)
            .field("client", &self.shared.client)
            .field("correlation", &self.shared.correlation)
            .finish_non_exhaustive()
    }
}

impl<S, X> ExperimentsService<S, X> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The client requests are started from.
    pub fn client(&self) -> &ExperimentsClient {
        &self.shared.client
    }
}

impl<S, X, B> Service<Request<B>> for ExperimentsService<S, X>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    X: InputsExtractor,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let request = self.shared.start(&mut parts);
        let req = Request::from_parts(parts, body);
        // The ready service goes into the future; its clone waits for the next poll_ready.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture { inner: Box::pin(request.scope(async move { ready.call(req).await })) }
    }
}

/// The response future of [`ExperimentsService`]: the inner service's call and response,
/// run inside the request's [`RequestExperiments::scope`]. Resolves to exactly what the
/// inner service returns.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<T, E> {
    inner: Pin<Box<dyn Future<Output = Result<T, E>> + Send>>,
}

impl<T, E> fmt::Debug for ResponseFuture<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<T, E> Future for ResponseFuture<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
