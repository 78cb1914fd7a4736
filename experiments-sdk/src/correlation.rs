//! Correlation ids: the value every event of one request shares, taken from the request's
//! trace context when it has one.

use std::sync::Arc;

/// Longest `x-request-id` accepted as a correlation id, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A correlation id for the events of one request (v2 field 8, the `json` encoding's
/// `correlation_id`). Cheap to clone.
///
/// ```
/// use experiments_sdk::CorrelationId;
///
/// let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let id = CorrelationId::from_traceparent(tp).unwrap();
/// assert_eq!(id.as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert!(CorrelationId::from_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
/// assert_eq!(CorrelationId::from_request_id(" abc-123 ").unwrap().as_str(), "abc-123");
/// assert!(CorrelationId::from_request_id("bad\nid").is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CorrelationId(Arc<str>);

impl CorrelationId {
    /// The trace id of a W3C `traceparent` header (`version-traceid-parentid-flags`):
    /// 32 lower-case hex digits, not all zero. `None` for anything else (version `ff`, wrong
    /// lengths, upper case, non-hex), as the Trace Context specification requires.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        // Version 00 has exactly four parts; later versions may append more.
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && hex(trace, 32)
            && !zero(trace)
            && hex(parent, 16)
            && !zero(parent)
            && hex(flags, 2);
        valid.then(|| CorrelationId(Arc::from(trace)))
    }

    /// An `x-request-id` (or similar) header value, trimmed: at most
    /// [`MAX_REQUEST_ID_LEN`] bytes of visible ASCII. `None` for an empty or unfit value, so
    /// a client cannot inject control characters or unbounded text into every event.
    pub fn from_request_id(header: &str) -> Option<Self> {
        let id = header.trim();
        let fit = !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id.bytes().all(|b| b.is_ascii_graphic());
        fit.then(|| CorrelationId(Arc::from(id)))
    }

    /// A fresh random id (a UUID v4), for requests that arrive without one.
    pub fn random() -> Self {
        CorrelationId(Arc::from(uuid::Uuid::new_v4().to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string events carry.
    pub fn into_shared(self) -> Arc<str> {
        self.0
    }
}

impl std::fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_follows_the_specification() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(CorrelationId::from_traceparent(ok).is_some());
        assert!(
            CorrelationId::from_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"
            )
            .is_some(),
            "later versions may add parts"
        );
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e47é6-00f067aa0ba902b7-01",
        ] {
            assert!(CorrelationId::from_traceparent(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_are_bounded_visible_ascii() {
        assert!(CorrelationId::from_request_id(&"a".repeat(MAX_REQUEST_ID_LEN)).is_some());
        assert!(CorrelationId::from_request_id(&"a".repeat(MAX_REQUEST_ID_LEN + 1)).is_none());
        for bad in ["", "   ", "a b", "tab\there", "ünï"] {
            assert!(CorrelationId::from_request_id(bad).is_none(), "{bad:?}");
        }
        assert_ne!(CorrelationId::random(), CorrelationId::random());
    }
}
