//! The OFREP endpoints: single and bulk evaluation and the configuration extension, over
//! [`ExperimentsProvider::evaluate`] inside the request's experiments scope.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use experiments_openfeature::Evaluation;
use experiments_sdk::RequestExperiments;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use open_feature::{
    EvaluationContext, EvaluationContextFieldValue, EvaluationError, EvaluationErrorCode,
    EvaluationReason, FlagMetadataValue,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::server::Shared;

/// The `Content-Type` of every JSON answer.
const JSON: &str = "application/json";

/// An OFREP error answer: the status, the error code and the details.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) details: String,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, details: impl Into<String>) -> Self {
        Failure { status, code, details: details.into() }
    }

    /// The answer's body: `{"key", "errorCode", "errorDetails"}` (no `key` for a request
    /// that is not about one flag).
    fn body(&self, key: Option<&str>) -> Value {
        let mut m = Map::new();
        if let Some(key) = key {
            m.insert("key".into(), key.into());
        }
        m.insert("errorCode".into(), self.code.into());
        m.insert("errorDetails".into(), self.details.clone().into());
        Value::Object(m)
    }

    fn response(&self, key: Option<&str>) -> Response {
        let mut response = json_response(self.status, &self.body(key));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON response of `status`.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    // Serializing a `Value` cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// Reads the request body within the size limit (the whole request runs under the
/// server's timeout).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Failure> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PARSE_ERROR",
            format!("the request body is larger than {limit} bytes"),
        )),
        Err(e) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "PARSE_ERROR",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// The `context` of an evaluation request body (`{}` and an empty body: no context).
fn request_context(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let parse = |why: String| Failure::new(StatusCode::BAD_REQUEST, "PARSE_ERROR", why);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| parse(format!("the request body is not JSON: {e}")))?;
    let Value::Object(mut request) = value else {
        return Err(parse("the request body must be a JSON object".to_owned()));
    };
    match request.remove("context") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(context)) => Ok(context),
        Some(other) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
            format!("`context` must be an object, not {}", json_type(&other)),
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The OpenFeature evaluation context of an OFREP context: `targetingKey` (a string) as
/// the targeting key, every other member as a custom field of its JSON type (integers that
/// do not fit `i64`, `null`, arrays and objects as JSON, which the provider reads as is).
pub(crate) fn evaluation_context(
    context: Map<String, Value>,
) -> Result<EvaluationContext, Failure> {
    let mut ctx = EvaluationContext::default();
    for (name, value) in context {
        if name == "targetingKey" {
            match value {
                Value::String(key) => ctx.targeting_key = Some(key),
                Value::Null => {}
                other => {
                    return Err(Failure::new(
                        StatusCode::BAD_REQUEST,
                        "INVALID_CONTEXT",
                        format!("`targetingKey` must be a string, not {}", json_type(&other)),
                    ));
                }
            }
            continue;
        }
        let field = match value {
            Value::Bool(b) => EvaluationContextFieldValue::Bool(b),
            Value::String(s) => EvaluationContextFieldValue::String(s),
            Value::Number(n) => match (n.as_i64(), n.is_f64()) {
                (Some(i), false) => EvaluationContextFieldValue::Int(i),
                (_, true) => match n.as_f64() {
                    Some(x) => EvaluationContextFieldValue::Float(x),
                    None => EvaluationContextFieldValue::new_struct(Value::Number(n)),
                },
                _ => EvaluationContextFieldValue::new_struct(Value::Number(n)),
            },
            other => EvaluationContextFieldValue::new_struct(other),
        };
        ctx.custom_fields.insert(name, field);
    }
    Ok(ctx)
}

/// The OFREP name of a reason (`DEFAULT`, `SPLIT`, ...).
pub(crate) fn reason_name(reason: &EvaluationReason) -> &'static str {
    match reason {
        EvaluationReason::Static => "STATIC",
        EvaluationReason::Default => "DEFAULT",
        EvaluationReason::TargetingMatch => "TARGETING_MATCH",
        EvaluationReason::Split => "SPLIT",
        EvaluationReason::Cached => "CACHED",
        EvaluationReason::Disabled => "DISABLED",
        EvaluationReason::Error => "ERROR",
        EvaluationReason::Unknown | EvaluationReason::Other(_) => "UNKNOWN",
    }
}

/// The OFREP answer to a provider error: `404 FLAG_NOT_FOUND`, `400` with the protocol's
/// codes for what the request got wrong, `503 PROVIDER_NOT_READY` before a config is
/// loaded.
pub(crate) fn failure_of(error: &EvaluationError) -> Failure {
    let details = error.message.clone().unwrap_or_default();
    let (status, code) = match &error.code {
        EvaluationErrorCode::FlagNotFound => (StatusCode::NOT_FOUND, "FLAG_NOT_FOUND"),
        EvaluationErrorCode::ParseError => (StatusCode::BAD_REQUEST, "PARSE_ERROR"),
        EvaluationErrorCode::TargetingKeyMissing => {
            (StatusCode::BAD_REQUEST, "TARGETING_KEY_MISSING")
        }
        EvaluationErrorCode::InvalidContext => (StatusCode::BAD_REQUEST, "INVALID_CONTEXT"),
        EvaluationErrorCode::ProviderNotReady => {
            (StatusCode::SERVICE_UNAVAILABLE, "PROVIDER_NOT_READY")
        }
        // The engine raised on these inputs (where baseplate / reddit-decider raise), or
        // a type mismatch, which an untyped evaluation never gives.
        _ => (StatusCode::BAD_REQUEST, "GENERAL"),
    };
    Failure::new(status, code, details)
}

/// The success body of an evaluation: `key`, `value` (absent when there is no variant: the
/// protocol's code-default answer, `variant: null`), `reason`, `variant`, `metadata`.
pub(crate) fn success_body(key: &str, evaluation: Evaluation) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), key.into());
    if let Some(value) = evaluation.value {
        m.insert("value".into(), value);
    }
    m.insert("reason".into(), reason_name(&evaluation.reason).into());
    m.insert("variant".into(), evaluation.variant.map_or(Value::Null, Value::String));
    let metadata: BTreeMap<String, Value> = evaluation
        .metadata
        .values
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                FlagMetadataValue::Bool(b) => Value::Bool(b),
                FlagMetadataValue::Int(i) => Value::from(i),
                FlagMetadataValue::Float(x) => {
                    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
                }
                FlagMetadataValue::String(s) => Value::String(s),
            };
            (k, v)
        })
        .collect();
    m.insert("metadata".into(), Value::Object(metadata.into_iter().collect()));
    Value::Object(m)
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub(crate) async fn evaluate_flag(
    State(shared): State<Arc<Shared>>,
    key: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let key = match key {
        Ok(Path(key)) => key,
        Err(rejection) => {
            let failure = Failure::new(
                StatusCode::BAD_REQUEST,
                "PARSE_ERROR",
                format!("the flag key in the path: {}", rejection.body_text()),
            );
            shared.metrics.evaluation("", false, failure.code);
            return failure.response(None);
        }
    };
    let ctx = match read_body(request.into_body(), shared.settings.max_body_bytes)
        .await
        .and_then(|body| request_context(&body))
        .and_then(evaluation_context)
    {
        Ok(ctx) => ctx,
        Err(failure) => {
            shared.metrics.evaluation(&key, false, failure.code);
            return failure.response(Some(&key));
        }
    };
    match shared.provider.evaluate(&key, &ctx) {
        Ok(evaluation) => {
            shared.metrics.evaluation(&key, true, reason_name(&evaluation.reason));
            json_response(StatusCode::OK, &success_body(&key, evaluation))
        }
        Err(error) => {
            let failure = failure_of(&error);
            let known = failure.code != "FLAG_NOT_FOUND";
            shared.metrics.evaluation(&key, known, failure.code);
            failure.response(Some(&key))
        }
    }
}

/// The entity tag of a bulk answer: the served config's digest and version and the
/// context, canonical (object members sorted), hashed.
fn bulk_etag(request: &RequestExperiments, context: &Map<String, Value>) -> Option<HeaderValue> {
    let snapshot = request.snapshot()?;
    let mut hash = Sha256::new();
    hash.update(snapshot.digest.as_bytes());
    hash.update(snapshot.version.to_le_bytes());
    canonical_object(context, &mut hash);
    Some(entity_tag(&hash.finalize()))
}

/// A strong entity tag: the first 16 bytes of a SHA-256 digest in hex, quoted.
fn entity_tag(digest: &[u8]) -> HeaderValue {
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    // Quoted hex is always a valid header value.
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Feeds an object to `hash` in the canonical form of [`canonical`].
fn canonical_object(m: &Map<String, Value>, hash: &mut Sha256) {
    let mut members: Vec<(&String, &Value)> = m.iter().collect();
    members.sort_unstable_by(|a, b| a.0.cmp(b.0));
    hash.update(b"{");
    hash.update((members.len() as u64).to_le_bytes());
    for (k, v) in members {
        hash.update((k.len() as u64).to_le_bytes());
        hash.update(k.as_bytes());
        canonical(v, hash);
    }
}

/// Feeds `v` to `hash` in a canonical form: object members sorted by name, every string and
/// scalar length-prefixed. Recursion is bounded: the JSON parser refuses documents nested
/// more than 128 deep.
fn canonical(v: &Value, hash: &mut Sha256) {
    match v {
        Value::Object(m) => canonical_object(m, hash),
        Value::Array(items) => {
            hash.update(b"[");
            hash.update((items.len() as u64).to_le_bytes());
            for item in items {
                canonical(item, hash);
            }
        }
        scalar => {
            let text = scalar.to_string();
            hash.update(b"=");
            hash.update((text.len() as u64).to_le_bytes());
            hash.update(text.as_bytes());
        }
    }
}

/// `304` with the tag when an `If-None-Match` header names `etag` (in a list, a weak tag
/// compared weakly, or `*`).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> Option<Response> {
    fn bare(t: &str) -> &str {
        t.trim().trim_start_matches("W/")
    }
    let tag = bare(etag.to_str().ok()?);
    let named = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| list.split(',').any(|t| t.trim() == "*" || bare(t) == tag));
    named.then(|| {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(ETAG, etag.clone());
        response
    })
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the config for one context, with an
/// `ETag`; `304` while the config and the context are those of `If-None-Match`. Exposures
/// are logged unless `serve.bulk_exposures` is false.
pub(crate) async fn evaluate_bulk(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let context = match read_body(body, shared.settings.max_body_bytes)
        .await
        .and_then(|body| request_context(&body))
    {
        Ok(context) => context,
        Err(failure) => return failure.response(None),
    };
    let Some(current) = RequestExperiments::current() else {
        return Failure::new(StatusCode::SERVICE_UNAVAILABLE, "GENERAL", "no request scope")
            .response(None);
    };
    let Some(etag) = bulk_etag(&current, &context) else {
        return Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "PROVIDER_NOT_READY",
            "no experiments config is loaded yet",
        )
        .response(None);
    };
    if let Some(response) = not_modified(&parts.headers, &etag) {
        return response;
    }
    let ctx = match evaluation_context(context) {
        Ok(ctx) => ctx,
        Err(failure) => return failure.response(None),
    };
    let evaluations = if shared.settings.bulk_exposures {
        shared.provider.evaluate_all(&ctx)
    } else {
        shared.provider.evaluate_all_without_exposure(&ctx)
    };
    let flags: Vec<Value> = evaluations
        .into_iter()
        .map(|(key, evaluation)| match evaluation {
            Ok(evaluation) => {
                shared.metrics.evaluation(&key, true, reason_name(&evaluation.reason));
                success_body(&key, evaluation)
            }
            Err(error) => {
                let failure = failure_of(&error);
                shared.metrics.evaluation(&key, true, failure.code);
                failure.body(Some(&key))
            }
        })
        .collect();
    let mut response = json_response(StatusCode::OK, &serde_json::json!({ "flags": flags }));
    response.headers_mut().insert(ETAG, etag);
    response
}

/// The configuration extension's answer and its tag: the same for the process's life.
static CONFIGURATION: LazyLock<(Bytes, HeaderValue)> = LazyLock::new(|| {
    let body = serde_json::json!({
        "name": "experiments",
        "capabilities": {
            "cacheInvalidation": {
                "polling": {"enabled": true, "minPollingInterval": 1000, "minPollingIntervalMs": 1000}
            },
            "flagEvaluation": {
                "supportedTypes": ["string", "boolean", "int", "float", "object"],
                "unsupportedTypes": []
            }
        }
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let etag = entity_tag(&Sha256::digest(&bytes));
    (Bytes::from(bytes), etag)
});

/// `GET /ofrep/v1/configuration`: the protocol's configuration extension (name and
/// capabilities), with an `ETag` and `304`.
pub(crate) async fn configuration(headers: HeaderMap) -> Response {
    let (body, etag) = &*CONFIGURATION;
    if let Some(response) = not_modified(&headers, etag) {
        return response;
    }
    let mut response = (StatusCode::OK, Body::from(body.clone())).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response.headers_mut().insert(ETAG, etag.clone());
    response
}
