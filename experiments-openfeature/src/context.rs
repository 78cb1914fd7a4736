//! OpenFeature evaluation contexts turned into what the engines read: baseplate [`Inputs`]
//! and a reddit-decider `DeciderContext`.

use std::any::Any;
use std::sync::Arc;

use experiments_sdk::decider::WrapperContext;
use experiments_sdk::{Inputs, Value};
use open_feature::{EvaluationContext, EvaluationContextFieldValue, StructValue};
use serde_json::{Map, Number};
use time::format_description::well_known::Rfc3339;

/// Deepest nesting of a structure field converted to JSON (the engines' own limit,
/// [`experiments_sdk::core::MAX_DEPTH`]); deeper values are an invalid context.
const MAX_DEPTH: usize = experiments_sdk::core::MAX_DEPTH;

/// Why a custom field could not become an engine input (an `INVALID_CONTEXT` error).
#[derive(Debug)]
pub(crate) struct ContextError {
    pub(crate) field: String,
    pub(crate) why: &'static str,
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "custom field `{}`: {}", self.field, self.why)
    }
}

/// The JSON value of one custom field.
pub(crate) fn field_to_json(
    name: &str,
    value: &EvaluationContextFieldValue,
) -> Result<Value, ContextError> {
    let fail = |why| ContextError { field: name.to_owned(), why };
    Ok(match value {
        EvaluationContextFieldValue::Bool(b) => Value::Bool(*b),
        EvaluationContextFieldValue::Int(i) => Value::from(*i),
        EvaluationContextFieldValue::Float(x) => {
            Value::Number(Number::from_f64(*x).ok_or_else(|| fail("a float that is not finite"))?)
        }
        EvaluationContextFieldValue::String(s) => Value::String(s.clone()),
        EvaluationContextFieldValue::DateTime(t) => {
            Value::String(t.format(&Rfc3339).map_err(|_| fail("a datetime RFC 3339 cannot write"))?)
        }
        EvaluationContextFieldValue::Struct(any) => struct_to_json(any).map_err(fail)?,
    })
}

/// A structure field: an `open_feature::StructValue` or `open_feature::Value` (converted
/// recursively), or a `serde_json::Value` / `serde_json::Map` (taken as is, any JSON kind).
fn struct_to_json(any: &Arc<dyn Any + Send + Sync>) -> Result<Value, &'static str> {
    if let Some(v) = any.downcast_ref::<Value>() {
        return Ok(v.clone());
    }
    if let Some(m) = any.downcast_ref::<Map<String, Value>>() {
        return Ok(Value::Object(m.clone()));
    }
    if let Some(s) = any.downcast_ref::<StructValue>() {
        return of_struct_to_json(s, 1);
    }
    if let Some(v) = any.downcast_ref::<open_feature::Value>() {
        return of_value_to_json(v, 1);
    }
    Err("a structure of a type the provider cannot read (use open_feature::StructValue, \
         open_feature::Value, serde_json::Value or serde_json::Map)")
}

pub(crate) fn of_struct_to_json(s: &StructValue, depth: usize) -> Result<Value, &'static str> {
    if depth > MAX_DEPTH {
        return Err("a structure nested too deeply");
    }
    // `StructValue` is a hash map: sort the keys so that the inputs do not depend on its order.
    let mut keys: Vec<&String> = s.fields.keys().collect();
    keys.sort();
    let mut out = Map::with_capacity(keys.len());
    for k in keys {
        out.insert(k.clone(), of_value_to_json(&s.fields[k], depth + 1)?);
    }
    Ok(Value::Object(out))
}

fn of_value_to_json(v: &open_feature::Value, depth: usize) -> Result<Value, &'static str> {
    if depth > MAX_DEPTH {
        return Err("a structure nested too deeply");
    }
    Ok(match v {
        open_feature::Value::Bool(b) => Value::Bool(*b),
        open_feature::Value::Int(i) => Value::from(*i),
        open_feature::Value::Float(x) => {
            Value::Number(Number::from_f64(*x).ok_or("a float that is not finite")?)
        }
        open_feature::Value::String(s) => Value::String(s.clone()),
        open_feature::Value::Array(items) => Value::Array(
            items.iter().map(|i| of_value_to_json(i, depth + 1)).collect::<Result<_, _>>()?,
        ),
        open_feature::Value::Struct(s) => of_struct_to_json(s, depth)?,
    })
}

/// The custom fields in key order (`EvaluationContext` keeps them in a hash map), as JSON.
fn sorted_fields(ctx: &EvaluationContext) -> Result<Vec<(&str, Value)>, ContextError> {
    let mut names: Vec<&String> = ctx.custom_fields.keys().collect();
    names.sort();
    names.into_iter().map(|k| Ok((k.as_str(), field_to_json(k, &ctx.custom_fields[k])?))).collect()
}

/// Baseplate inputs: every custom field in key order, then the targeting key as
/// `targeting_field` (last, so that it wins over a custom field of the same name in any case,
/// as baseplate's `{k.lower(): v}` keeps the last key).
pub(crate) fn inputs(
    ctx: &EvaluationContext,
    targeting_field: &str,
) -> Result<Inputs, ContextError> {
    let fields = sorted_fields(ctx)?;
    let mut inputs = Inputs::with_capacity(fields.len() + 1);
    for (k, v) in fields {
        if ctx.targeting_key.is_none() || k != targeting_field {
            inputs.insert(k, v);
        }
    }
    if let Some(key) = &ctx.targeting_key {
        inputs.insert(targeting_field, key.as_str());
    }
    Ok(inputs)
}

/// The `DeciderContext` of an evaluation: the targeting key as the `targeting_field`
/// keyword (`user_id`), custom fields named like one of its keywords
/// ([`WrapperContext::KEYWORDS`]) as that keyword with their JSON value, every other custom
/// field as an extracted field. Values keep their JSON types: a mistyped keyword makes the
/// decision fail as it does in `reddit_decider`.
pub(crate) fn decider_context(
    ctx: &EvaluationContext,
    targeting_field: &str,
) -> Result<WrapperContext, ContextError> {
    let is_keyword = |k: &str| k != "extracted_fields" && WrapperContext::KEYWORDS.contains(&k);
    let mut kwargs = Map::new();
    let mut extracted = Map::new();
    for (k, v) in sorted_fields(ctx)? {
        if ctx.targeting_key.is_some() && k == targeting_field {
            continue;
        }
        if is_keyword(k) {
            kwargs.insert(k.to_owned(), v);
        } else {
            extracted.insert(k.to_owned(), v);
        }
    }
    if let Some(key) = &ctx.targeting_key {
        let target = if is_keyword(targeting_field) { &mut kwargs } else { &mut extracted };
        target.insert(targeting_field.to_owned(), Value::from(key.as_str()));
    }
    if !extracted.is_empty() {
        kwargs.insert("extracted_fields".to_owned(), Value::Object(extracted));
    }
    // Only known keywords and an object `extracted_fields` are given: this cannot fail.
    WrapperContext::from_kwargs(kwargs)
        .map_err(|_| ContextError { field: String::new(), why: "not a DeciderContext" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_their_json_types() {
        let dt = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ctx = EvaluationContext::default()
            .with_targeting_key("t2_a")
            .with_custom_field("b", true)
            .with_custom_field("i", 7)
            .with_custom_field("f", 1.5)
            .with_custom_field("s", "x")
            .with_custom_field("when", dt)
            .with_custom_field(
                "st",
                EvaluationContextFieldValue::new_struct(
                    StructValue::default()
                        .with_field("n", 1)
                        .with_field("l", vec![open_feature::Value::from("a")]),
                ),
            )
            .with_custom_field("j", EvaluationContextFieldValue::new_struct(Value::Null));
        let inputs = inputs(&ctx, "user_id").unwrap();
        let got: Vec<(&str, &Value)> = inputs.iter().collect();
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            serde_json::json!([
                ["b", true], ["f", 1.5], ["i", 7], ["j", null], ["s", "x"],
                ["st", {"l": ["a"], "n": 1}], ["when", "2023-11-14T22:13:20Z"],
                ["user_id", "t2_a"]
            ])
        );
    }

    #[test]
    fn unreadable_structures_and_nan_are_refused() {
        let ctx = EvaluationContext::default()
            .with_custom_field("x", EvaluationContextFieldValue::new_struct(42_u8));
        assert_eq!(inputs(&ctx, "user_id").unwrap_err().field, "x");
        let ctx = EvaluationContext::default().with_custom_field("x", f64::NAN);
        assert!(inputs(&ctx, "user_id").is_err());
        let mut deep = StructValue::default();
        for _ in 0..(MAX_DEPTH + 2) {
            deep = StructValue::default().with_field("d", deep);
        }
        let ctx = EvaluationContext::default()
            .with_custom_field("x", EvaluationContextFieldValue::new_struct(deep));
        assert!(inputs(&ctx, "user_id").is_err());
    }

    #[test]
    fn the_targeting_key_wins() {
        let ctx = EvaluationContext::default()
            .with_targeting_key("t2_a")
            .with_custom_field("user_id", "t2_b")
            .with_custom_field("USER_ID", "t2_c");
        let inputs = inputs(&ctx, "user_id").unwrap();
        let keys: Vec<&str> = inputs.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["USER_ID", "user_id"]);
        assert_eq!(inputs.get("user_id"), Some(&Value::from("t2_a")));
    }

    #[test]
    fn decider_contexts_split_keywords_from_extracted_fields() {
        let ctx = EvaluationContext::default()
            .with_targeting_key("t2_a")
            .with_custom_field("logged_in", true)
            .with_custom_field("app_name", "ios")
            .with_custom_field("build_number", 12);
        let d = decider_context(&ctx, "user_id").unwrap();
        assert_eq!(d.get("user_id"), Some(&Value::from("t2_a")));
        assert_eq!(d.get("logged_in"), Some(&Value::Bool(true)));
        assert_eq!(
            Value::Object(d.extracted_fields().clone()),
            serde_json::json!({"app_name": "ios", "build_number": 12})
        );
        // A targeting field that is not a keyword goes to the extracted fields.
        let d = decider_context(&ctx, "subreddit_id").unwrap();
        assert_eq!(d.get("user_id"), None);
        assert_eq!(d.extracted_fields().get("subreddit_id"), Some(&Value::from("t2_a")));
    }
}
