//! The base inputs of a request: what the layer knows about the user before a handler runs.

use experiments_sdk::Inputs;
use http::request::Parts;

/// Builds a request's base inputs (the `user_id`, `logged_in`, `app_name`, ... that every
/// evaluation of the request uses) from its head: headers, URI, or an authentication result
/// an earlier layer left in `parts.extensions`.
///
/// Implemented for every `Fn(&Parts) -> Inputs` closure that is `Clone + Send + Sync +
/// 'static`; the layer keeps one and calls it once per request, before the inner service.
///
/// ```
/// use experiments_sdk::Inputs;
/// use experiments_tower::InputsExtractor;
/// use http::request::Parts;
///
/// #[derive(Clone)]
/// struct Session { user_id: String }
///
/// let from_session = |parts: &Parts| match parts.extensions.get::<Session>() {
///     Some(s) => Inputs::new().with("user_id", s.user_id.as_str()).with("logged_in", true),
///     None => Inputs::new().with("logged_in", false),
/// };
/// let (mut parts, ()) = http::Request::new(()).into_parts();
/// parts.extensions.insert(Session { user_id: "t2_abc".into() });
/// assert_eq!(from_session.inputs(&parts).get("user_id"), Some(&"t2_abc".into()));
/// ```
pub trait InputsExtractor: Clone + Send + Sync + 'static {
    /// The base inputs of the request whose head is `parts`. Must not panic on any header
    /// value: headers come from the client.
    fn inputs(&self, parts: &Parts) -> Inputs;
}

impl<F> InputsExtractor for F
where
    F: Fn(&Parts) -> Inputs + Clone + Send + Sync + 'static,
{
    fn inputs(&self, parts: &Parts) -> Inputs {
        self(parts)
    }
}

/// The default extractor: every request starts with empty base inputs, and handlers pass
/// theirs to [`ExperimentsContext::variant_with`](crate::ExperimentsContext::variant_with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoInputs;

impl InputsExtractor for NoInputs {
    fn inputs(&self, _parts: &Parts) -> Inputs {
        Inputs::new()
    }
}
