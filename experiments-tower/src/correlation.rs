//! Where a request's correlation id comes from: an ordered list of headers, each read in its
//! own format, and an optional random fallback.

use experiments_sdk::CorrelationId;
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Longest header value read as a correlation id, in bytes. Longer values are skipped
/// without being scanned (a valid `traceparent` is 55 bytes, a request id at most
/// [`experiments_sdk::MAX_REQUEST_ID_LEN`] once trimmed).
pub const MAX_CORRELATION_HEADER_LEN: usize = 512;

/// One header a correlation id may come from, and how its value is read.
///
/// ```
/// use experiments_tower::CorrelationHeader;
/// use http::{HeaderName, HeaderValue};
///
/// let tp = CorrelationHeader::traceparent();
/// assert_eq!(tp.name().as_str(), "traceparent");
/// let v = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert_eq!(tp.parse(&v).unwrap().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
///
/// let custom = CorrelationHeader::RequestId(HeaderName::from_static("x-correlation-id"));
/// assert_eq!(custom.parse(&HeaderValue::from_static(" abc-1 ")).unwrap().as_str(), "abc-1");
/// assert!(custom.parse(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()).is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorrelationHeader {
    /// A W3C Trace Context `traceparent` value: the trace id becomes the correlation id
    /// ([`CorrelationId::from_traceparent`]; invalid trace contexts are skipped).
    TraceParent(HeaderName),
    /// A request id (`x-request-id` and the like): the trimmed value, when it is visible
    /// ASCII of bounded length ([`CorrelationId::from_request_id`]).
    RequestId(HeaderName),
}

impl CorrelationHeader {
    /// The W3C `traceparent` header.
    pub fn traceparent() -> Self {
        CorrelationHeader::TraceParent(HeaderName::from_static("traceparent"))
    }

    /// The conventional `x-request-id` header (set by many proxies and load balancers).
    pub fn x_request_id() -> Self {
        CorrelationHeader::RequestId(HeaderName::from_static("x-request-id"))
    }

    /// The header's name.
    pub fn name(&self) -> &HeaderName {
        match self {
            CorrelationHeader::TraceParent(name) | CorrelationHeader::RequestId(name) => name,
        }
    }

    /// The correlation id one value of this header gives, if it is usable. Never panics:
    /// values that are not visible ASCII (obs-text, non-UTF-8) or longer than
    /// [`MAX_CORRELATION_HEADER_LEN`] give `None`.
    pub fn parse(&self, value: &HeaderValue) -> Option<CorrelationId> {
        if value.len() > MAX_CORRELATION_HEADER_LEN {
            return None;
        }
        let text = value.to_str().ok()?;
        match self {
            CorrelationHeader::TraceParent(_) => CorrelationId::from_traceparent(text),
            CorrelationHeader::RequestId(_) => CorrelationId::from_request_id(text),
        }
    }
}

/// How the layer picks each request's correlation id: the first header in the list that
/// gives a usable id wins; when none does, a random id (a UUID v4) if the fallback is on,
/// else none.
///
/// The default reads `traceparent` (its trace id), then `x-request-id`, with no random
/// fallback. A header that appears more than once in a request is ambiguous and skipped, as
/// is any value its format rejects; the next header in the list is tried instead.
///
/// ```
/// use experiments_tower::{CorrelationHeader, CorrelationSource};
/// use http::{HeaderMap, HeaderName, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-request-id", HeaderValue::from_static("req-42"));
/// headers.insert("traceparent", HeaderValue::from_static("not a trace context"));
/// assert_eq!(CorrelationSource::default().resolve(&headers).unwrap().as_str(), "req-42");
///
/// let custom = CorrelationSource::new([
///     CorrelationHeader::RequestId(HeaderName::from_static("x-amzn-trace-id")),
///     CorrelationHeader::x_request_id(),
/// ])
/// .random_fallback(true);
/// assert_eq!(custom.resolve(&HeaderMap::new()).unwrap().as_str().len(), 36);
/// assert!(CorrelationSource::none().resolve(&headers).is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrelationSource {
    headers: Vec<CorrelationHeader>,
    random_fallback: bool,
}

impl Default for CorrelationSource {
    /// `traceparent`, then `x-request-id`, no random fallback.
    fn default() -> Self {
        CorrelationSource::new([
            CorrelationHeader::traceparent(),
            CorrelationHeader::x_request_id(),
        ])
    }
}

impl CorrelationSource {
    /// These headers, tried in this order, without a random fallback.
    pub fn new(headers: impl IntoIterator<Item = CorrelationHeader>) -> Self {
        CorrelationSource { headers: headers.into_iter().collect(), random_fallback: false }
    }

    /// No header and no fallback: requests carry no correlation id.
    pub fn none() -> Self {
        CorrelationSource::new([])
    }

    /// Appends a header, tried after the ones already listed.
    #[must_use]
    pub fn header(mut self, header: CorrelationHeader) -> Self {
        self.headers.push(header);
        self
    }

    /// Whether a request without a usable header gets a fresh random id
    /// ([`CorrelationId::random`]) instead of none.
    #[must_use]
    pub fn random_fallback(mut self, on: bool) -> Self {
        self.random_fallback = on;
        self
    }

    /// The headers, in the order they are tried.
    pub fn headers(&self) -> &[CorrelationHeader] {
        &self.headers
    }

    /// Whether requests without a usable header get a random id.
    pub fn has_random_fallback(&self) -> bool {
        self.random_fallback
    }

    /// The correlation id of a request with these headers (see the type's documentation).
    pub fn resolve(&self, headers: &HeaderMap) -> Option<CorrelationId> {
        self.headers
            .iter()
            .find_map(|h| {
                let mut values = headers.get_all(h.name()).iter();
                let first = values.next()?;
                if values.next().is_some() {
                    return None; // several values: ambiguous
                }
                h.parse(first)
            })
            .or_else(|| self.random_fallback.then(CorrelationId::random))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn resolve(source: &CorrelationSource, pairs: &[(&str, &[u8])]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        source.resolve(&headers).map(|id| id.as_str().to_owned())
    }

    #[test]
    fn traceparent_first_then_request_id_then_nothing() {
        let s = CorrelationSource::default();
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            resolve(&s, &[("x-request-id", b"r1"), ("traceparent", TP.as_bytes())]).as_deref(),
            Some(trace)
        );
        assert_eq!(resolve(&s, &[("x-request-id", b"r1")]).as_deref(), Some("r1"));
        assert_eq!(
            resolve(&s, &[("traceparent", b"00-zz"), ("x-request-id", b"r1")]).as_deref(),
            Some("r1")
        );
        assert_eq!(resolve(&s, &[]), None);
        assert_eq!(resolve(&s, &[("x-request-id", b"   ")]), None);
    }

    #[test]
    fn repeated_headers_are_ambiguous_and_skipped() {
        let s = CorrelationSource::default();
        assert_eq!(
            resolve(&s, &[("x-request-id", b"a"), ("x-request-id", b"b")]),
            None,
            "two request ids"
        );
        assert_eq!(
            resolve(
                &s,
                &[
                    ("traceparent", TP.as_bytes()),
                    ("traceparent", TP.as_bytes()),
                    ("x-request-id", b"r")
                ]
            )
            .as_deref(),
            Some("r")
        );
    }

    #[test]
    fn hostile_values_never_panic_and_give_nothing() {
        let s = CorrelationSource::default();
        let huge = vec![b'a'; 1 << 20];
        let long_ok = vec![b'a'; MAX_CORRELATION_HEADER_LEN + 1];
        for value in [
            &b"\xff\xfe\x80"[..],
            "café".as_bytes(),
            b"a\tb",
            &huge,
            &long_ok,
            b"",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\xff",
        ] {
            assert_eq!(resolve(&s, &[("x-request-id", value), ("traceparent", value)]), None);
        }
    }

    #[test]
    fn order_and_random_fallback_are_configurable() {
        let s = CorrelationSource::new([CorrelationHeader::x_request_id()])
            .header(CorrelationHeader::traceparent());
        assert_eq!(
            resolve(&s, &[("x-request-id", b"r1"), ("traceparent", TP.as_bytes())]).as_deref(),
            Some("r1")
        );
        let random = CorrelationSource::none().random_fallback(true);
        assert!(random.has_random_fallback());
        let (a, b) = (resolve(&random, &[]).unwrap(), resolve(&random, &[]).unwrap());
        assert_ne!(a, b);
        assert_eq!(resolve(&CorrelationSource::none(), &[("x-request-id", b"r1")]), None);
    }
}
