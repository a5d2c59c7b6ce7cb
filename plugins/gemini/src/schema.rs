//! JSON Schema (as OpenAI clients write it for tool parameters and `json_schema` response
//! formats) narrowed to Gemini's `Schema` object, an OpenAPI 3.0 subset.
//!
//! Gemini refuses the whole request when a schema holds a field it does not know
//! (`additionalProperties`, `$schema`, `strict`, ...) or a string `format` other than `enum`
//! and `date-time`, so unknown fields are dropped rather than passed on. Local `$ref`s into
//! `$defs`/`definitions` (what Pydantic generates) are inlined, `["string","null"]` type lists
//! become `nullable`, `oneOf` becomes `anyOf` and `const` a one-value `enum`. Type names are
//! upper-cased, the spelling of Gemini's `Type` enum.

use serde_json::{Map, Value};

/// How deep `$ref`s are followed; recursive schemas (a tree node holding nodes) cannot be
/// expressed in Gemini's `Schema` and are cut here.
const MAX_REF_DEPTH: usize = 8;

const KEPT_AS_IS: &[&str] = &[
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];

const FORMATS: &[&str] = &["enum", "date-time", "int32", "int64", "float", "double"];

/// Gemini's form of `schema`.
pub(crate) fn to_gemini(schema: &Value) -> Value {
    convert(schema, schema, 0)
}

fn convert(schema: &Value, root: &Value, depth: usize) -> Value {
    let Value::Object(object) = schema else {
        // `true` / `false` schemas and garbage: "anything", which Gemini spells as no schema.
        return Value::Object(Map::new());
    };
    if let Some(Value::String(reference)) = object.get("$ref") {
        if depth >= MAX_REF_DEPTH {
            return Value::Object(Map::new());
        }
        return match resolve(reference, root) {
            Some(target) => {
                let mut resolved = convert(target, root, depth + 1);
                // Siblings of `$ref` (a description, say) refine the referenced schema.
                if let (Value::Object(resolved), Value::Object(local)) =
                    (&mut resolved, convert_without_ref(object, root, depth))
                {
                    resolved.extend(local);
                }
                resolved
            }
            None => convert_without_ref(object, root, depth),
        };
    }
    convert_without_ref(object, root, depth)
}

fn convert_without_ref(object: &Map<String, Value>, root: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => set_type(&mut out, value),
            // Other formats (`uri`, `email`, ...) are dropped: Gemini refuses them.
            "format"
                if value
                    .as_str()
                    .is_some_and(|format| FORMATS.contains(&format)) =>
            {
                out.insert(key.clone(), value.clone());
            }
            "properties" => {
                if let Value::Object(properties) = value {
                    let converted = properties
                        .iter()
                        .map(|(name, property)| (name.clone(), convert(property, root, depth)))
                        .collect();
                    out.insert(key.clone(), Value::Object(converted));
                }
            }
            "items" => {
                out.insert(key.clone(), convert(value, root, depth));
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(options) = value {
                    let (nulls, options): (Vec<&Value>, Vec<&Value>) = options
                        .iter()
                        .partition(|option| option.get("type") == Some(&Value::from("null")));
                    if !nulls.is_empty() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    let converted: Vec<Value> = options
                        .into_iter()
                        .map(|option| convert(option, root, depth))
                        .collect();
                    match converted.len() {
                        0 => {}
                        // `Optional[X]` from Pydantic: anyOf [X, null] is just a nullable X.
                        1 => {
                            if let Some(Value::Object(only)) = converted.into_iter().next() {
                                out.extend(only);
                            }
                        }
                        _ => {
                            out.insert("anyOf".into(), Value::Array(converted));
                        }
                    }
                }
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            _ if KEPT_AS_IS.contains(&key.as_str()) => {
                out.insert(key.clone(), value.clone());
            }
            // additionalProperties, $schema, $defs, $id, strict, examples, ...
            _ => {}
        }
    }
    Value::Object(out)
}

/// `type` as Gemini's enum; a list with `"null"` becomes `nullable`, several other types an
/// `anyOf`.
fn set_type(out: &mut Map<String, Value>, value: &Value) {
    let upper = |name: &str| Value::String(name.to_ascii_uppercase());
    match value {
        Value::String(name) => {
            out.insert("type".into(), upper(name));
        }
        Value::Array(names) => {
            let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            if names.contains(&"null") {
                out.insert("nullable".into(), Value::Bool(true));
            }
            let types: Vec<&str> = names.into_iter().filter(|name| *name != "null").collect();
            match types.as_slice() {
                [] => {}
                [only] => {
                    out.insert("type".into(), upper(only));
                }
                several => {
                    let options = several
                        .iter()
                        .map(|name| {
                            let mut option = Map::new();
                            option.insert("type".into(), upper(name));
                            Value::Object(option)
                        })
                        .collect();
                    out.insert("anyOf".into(), Value::Array(options));
                }
            }
        }
        _ => {}
    }
}

/// The schema a local reference (`#/$defs/Name`, `#/definitions/Name`, any JSON pointer)
/// points at.
fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

/// Whether a converted schema is an object without properties, which Gemini refuses as a
/// function's `parameters` ("properties: should be non-empty for OBJECT type").
pub(crate) fn is_empty_object(schema: &Value) -> bool {
    let Value::Object(object) = schema else {
        return true;
    };
    let properties_empty = object
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    properties_empty && object.get("type").is_none_or(|kind| kind == "OBJECT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_dropped_and_types_upper_cased() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "Weather",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City name", "minLength": 1, "format": "hostname"},
                "when": {"type": "string", "format": "date-time"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "array", "items": {"type": "integer", "format": "int32", "exclusiveMinimum": 0}}
            },
            "required": ["city"],
            "strict": true
        });
        assert_eq!(
            to_gemini(&schema),
            json!({
                "type": "OBJECT",
                "title": "Weather",
                "properties": {
                    "city": {"type": "STRING", "description": "City name", "minLength": 1},
                    "when": {"type": "STRING", "format": "date-time"},
                    "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "ARRAY", "items": {"type": "INTEGER", "format": "int32"}}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn nullable_forms_const_and_one_of() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
                "c": {"const": "fixed"},
                "d": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "e": {"type": ["string", "number"]}
            }
        });
        assert_eq!(
            to_gemini(&schema)["properties"],
            json!({
                "a": {"type": "STRING", "nullable": true},
                "b": {"type": "INTEGER", "nullable": true, "default": null},
                "c": {"enum": ["fixed"]},
                "d": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
                "e": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}
            })
        );
    }

    #[test]
    fn pydantic_refs_are_inlined_and_recursion_is_cut() {
        let schema = json!({
            "$defs": {
                "Step": {"type": "object", "properties": {"explanation": {"type": "string"}}, "required": ["explanation"]},
                "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}
            },
            "type": "object",
            "properties": {
                "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}},
                "tree": {"$ref": "#/$defs/Node", "description": "A tree"},
                "missing": {"$ref": "#/$defs/Nope", "description": "kept"}
            }
        });
        let converted = to_gemini(&schema);
        assert_eq!(
            converted["properties"]["steps"],
            json!({"type": "ARRAY", "items": {"type": "OBJECT", "properties": {"explanation": {"type": "STRING"}}, "required": ["explanation"]}})
        );
        assert_eq!(converted["properties"]["tree"]["description"], "A tree");
        assert_eq!(
            converted["properties"]["missing"],
            json!({"description": "kept"})
        );
        assert!(converted.get("$defs").is_none());
        // Eight levels of Node, then an empty schema.
        let mut node = &converted["properties"]["tree"];
        let mut levels = 0;
        while let Some(child) = node.get("properties").and_then(|p| p.get("child")) {
            node = child;
            levels += 1;
        }
        assert_eq!(levels, MAX_REF_DEPTH);
    }

    #[test]
    fn empty_objects() {
        assert!(is_empty_object(&to_gemini(
            &json!({"type": "object", "properties": {}})
        )));
        assert!(is_empty_object(&to_gemini(&json!({}))));
        assert!(!is_empty_object(&to_gemini(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}})
        )));
        assert!(!is_empty_object(&to_gemini(&json!({"type": "string"}))));
        assert_eq!(to_gemini(&json!(true)), json!({}));
    }
}
