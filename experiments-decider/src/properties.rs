//! `$properties` (SPEC §2.4): a property registry validated at load and otherwise inert.
//!
//! The reference (1.18) checks each property's `type`, `fallback_value` and `targeted_values`,
//! and each targeting rule against a grammar stricter than feature targeting. No API exposes
//! properties, so only whether the registry is accepted is observable; the messages follow the
//! reference's wording.

use serde_json::{Map, Value};

const TYPES: [&str; 4] = ["Boolean", "Integer", "Float", "String"];

/// Validates the registry; the error is the reference's message (without its prefix).
pub(crate) fn validate(registry: &Value) -> Result<(), String> {
    let props = registry.as_object().ok_or("registry must be an object")?;
    for (name, def) in props {
        if name.is_empty() {
            return Err("property name must not be empty".into());
        }
        property(def).map_err(|e| format!("property {name:?}: {e}"))?;
    }
    Ok(())
}

fn property(def: &Value) -> Result<(), String> {
    let def = def.as_object().ok_or("definition must be an object")?;
    let ty = match def.get("type") {
        None => return Err("type is required".into()),
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.as_str(),
        Some(Value::String(t)) => return Err(format!("type {t:?} is not supported")),
        Some(_) => return Err("type must be a string".into()),
    };
    let fallback = def.get("fallback_value").ok_or("fallback_value is required")?;
    check_type(ty, fallback).map_err(|e| format!("fallback_value: {e}"))?;
    let targeted = def.get("targeted_values").ok_or("targeted_values is required")?;
    let targeted = targeted.as_array().ok_or("targeted_values must be an array")?;
    for (i, t) in targeted.iter().enumerate() {
        targeted_value(ty, t).map_err(|e| format!("targeted_values[{i}]: {e}"))?;
    }
    Ok(())
}

fn targeted_value(ty: &str, t: &Value) -> Result<(), String> {
    let t = t.as_object().ok_or("entry must be an object")?;
    let value = t.get("value").ok_or("value is required")?;
    check_type(ty, value).map_err(|e| format!("value: {e}"))?;
    let rule = t.get("targeting_rule").ok_or("targeting_rule is required")?;
    check_rule(rule).map_err(|e| format!("targeting_rule: {e}"))
}

fn check_type(ty: &str, v: &Value) -> Result<(), String> {
    let ok = match ty {
        "Boolean" => v.is_boolean(),
        "Integer" => v.is_i64() || v.is_u64(),
        "Float" => v.is_number(),
        _ => v.is_string(),
    };
    if ok { Ok(()) } else { Err(format!("value does not match {ty}")) }
}

fn check_rule(rule: &Value) -> Result<(), String> {
    const NODE: &str = "direct targeting node must be an object with one operator";
    let node = rule.as_object().filter(|o| o.len() == 1).ok_or(NODE)?;
    let Some((op, operand)) = node.iter().next() else {
        return Err(NODE.into());
    };
    let in_op = |e: String| format!("{op}: {e}");
    match op.as_str() {
        "ALL" | "ANY" => {
            let children =
                operand.as_array().ok_or_else(|| format!("{op} operand must be an array"))?;
            children.iter().try_for_each(check_rule).map_err(in_op)
        }
        "NOT" => check_rule(operand).map_err(in_op),
        "EQ" | "NE" => equality(op == "EQ", operand).map_err(in_op),
        "GT" | "GE" | "LT" | "LE" => comparison(operand).map_err(in_op),
        other => Err(format!("operator {other:?} is not supported for direct property targeting")),
    }
}

fn field_is_string(o: &Map<String, Value>) -> Result<(), String> {
    match o.get("field") {
        Some(Value::String(_)) => Ok(()),
        _ => Err("field must be a string".into()),
    }
}

fn scalar(v: &Value) -> bool {
    matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_))
}

fn equality(eq: bool, operand: &Value) -> Result<(), String> {
    let o = operand.as_object().ok_or("operand must be an object")?;
    if o.keys().any(|k| !matches!(k.as_str(), "field" | "value" | "values")) {
        return Err("operand contains unsupported fields".into());
    }
    field_is_string(o)?;
    match (o.get("value"), o.get("values")) {
        (Some(_), Some(_)) => Err("only one of value or values may be set".into()),
        (_, Some(_)) if !eq => Err("values is not supported".into()),
        (None, None) => Err("one of value or values must be set".into()),
        (Some(v), None) if scalar(v) => Ok(()),
        (Some(_), None) => Err("must be a non-null JSON scalar".into()),
        (None, Some(Value::Array(vs))) => match vs.iter().position(|v| !scalar(v)) {
            Some(i) => Err(format!("values[{i}]: must be a non-null JSON scalar")),
            None => Ok(()),
        },
        (None, Some(_)) => Err("values must be an array".into()),
    }
}

fn comparison(operand: &Value) -> Result<(), String> {
    let o = operand.as_object().ok_or("operand must be an object")?;
    if o.len() != 2 || !o.contains_key("field") || !o.contains_key("value") {
        return Err("operand must contain only field and value".into());
    }
    field_is_string(o)?;
    match o.get("value").and_then(Value::as_f64) {
        Some(f) if f.is_finite() => Ok(()),
        _ => Err("value must be a finite number".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepted_and_rejected_registries() {
        let ok = json!({"p": {"type": "Integer", "fallback_value": 1, "targeted_values": [
            {"value": 2, "targeting_rule": {"ALL": [{"GT": {"field": "build_number", "value": 5}},
                {"NOT": {"EQ": {"field": "user_id", "values": ["a", 1]}}}]}}]}});
        assert_eq!(validate(&ok), Ok(()));
        assert_eq!(validate(&json!({})), Ok(()));
        let bad = [
            (json!([]), "registry must be an object"),
            (json!({"": {}}), "property name must not be empty"),
            (
                json!({"p": {"type": "Map", "fallback_value": {}, "targeted_values": []}}),
                "property \"p\": type \"Map\" is not supported",
            ),
            (
                json!({"p": {"type": "Integer", "fallback_value": 1.5, "targeted_values": []}}),
                "property \"p\": fallback_value: value does not match Integer",
            ),
            (
                json!({"p": {"type": "String", "fallback_value": "x", "targeted_values": [
                {"value": "y", "targeting_rule": {"PREQ": {"field": "user_id", "values": ["t2"]}}}]}}),
                "property \"p\": targeted_values[0]: targeting_rule: operator \"PREQ\" is not supported for direct property targeting",
            ),
            (
                json!({"p": {"type": "String", "fallback_value": "x", "targeted_values": [
                {"value": "y", "targeting_rule": {"EQ": {"field": "user_id", "values": [null]}}}]}}),
                "property \"p\": targeted_values[0]: targeting_rule: EQ: values[0]: must be a non-null JSON scalar",
            ),
        ];
        let rule = |r: Value| {
            json!({"p": {"type": "Boolean", "fallback_value": false,
                "targeted_values": [{"value": true, "targeting_rule": r, "extra": 1}]}})
        };
        // Probed on reddit-decider 1.18.2: accepted.
        for r in [
            json!({"EQ": {"field": "", "value": 1}}),
            json!({"GE": {"field": "", "value": 1}}),
            json!({"EQ": {"field": "a", "values": []}}),
            json!({"ANY": [{"ALL": []}]}),
        ] {
            assert_eq!(validate(&rule(r.clone())), Ok(()), "{r}");
        }
        // ... and rejected.
        for r in [
            json!({"EQ": {"value": 1}}),
            json!({"EQ": {"field": 5, "value": 1}}),
            json!({"GE": {"value": 1}}),
            json!({"ALL": {}}),
            json!({"NOT": []}),
            json!({"EQ": {"field": "a", "value": null}}),
            json!({"EQ": {"field": "a", "value": [1]}}),
            json!({"GE": {"field": "a", "value": 1, "x": 1}}),
            json!({"NE": {"field": "a", "values": ["b"]}}),
            json!({}),
            json!({"EQ": {"field": "a", "value": 1}, "NE": {"field": "a", "value": 1}}),
        ] {
            assert!(validate(&rule(r.clone())).is_err(), "{r}");
        }
        assert!(validate(&Value::Null).is_err());
        for (registry, message) in bad {
            assert_eq!(validate(&registry).err().as_deref(), Some(message), "{registry}");
        }
    }
}
