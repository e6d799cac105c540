//! A pipeline definition as a request body: the TOML of a pipeline file, or JSON of the
//! same structure, turned into the TOML text the daemon validates and writes to the folder.

use axum::http::{HeaderMap, header};

/// Why a JSON body cannot become a pipeline file: each problem with its path.
pub type Problems = Vec<String>;

/// The pipeline file text of a PUT body: TOML as it is when the content type says TOML,
/// otherwise JSON converted to TOML.
pub fn pipeline_text(headers: &HeaderMap, body: &[u8]) -> Result<String, Problems> {
    let text =
        std::str::from_utf8(body).map_err(|e| vec![format!("the body is not UTF-8 text: {e}")])?;
    if is_toml(headers) {
        return Ok(text.to_string());
    }
    json_to_toml(text)
}

/// `text/toml` or `application/toml`, with or without parameters.
fn is_toml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| essence == "text/toml" || essence == "application/toml")
}

/// JSON of a pipeline file's structure as TOML text. TOML has no null and no integers past
/// i64, so those are refused, every one with its path.
pub fn json_to_toml(text: &str) -> Result<String, Problems> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        vec![format!(
            "invalid JSON body: {e} (send a pipeline file with `Content-Type: application/toml`, or its structure as JSON)"
        )]
    })?;
    let serde_json::Value::Object(_) = json else {
        return Err(vec![
            "the JSON body must be an object with the pipeline file's sections".into(),
        ]);
    };
    let mut problems = Vec::new();
    let value = to_toml(&json, "", &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    toml::to_string(&value).map_err(|e| vec![format!("cannot write the JSON body as TOML: {e}")])
}

/// Converts a JSON value; `path` names it in problems (`sink.path`, `processor[1].params`).
/// serde_json stops parsing at 128 levels of nesting, so the recursion is bounded.
fn to_toml(value: &serde_json::Value, path: &str, problems: &mut Problems) -> toml::Value {
    use serde_json::Value as J;
    let at = |p: &str| {
        if p.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{p}`")
        }
    };
    match value {
        J::Null => {
            problems.push(format!(
                "null at {}: TOML has no null; leave the key out instead",
                at(path)
            ));
            toml::Value::Boolean(false)
        }
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(_)) if n.is_u64() => {
                problems.push(format!(
                    "{n} at {} is larger than a TOML integer (at most {})",
                    at(path),
                    i64::MAX
                ));
                toml::Value::Integer(0)
            }
            (None, Some(f)) => toml::Value::Float(f),
            (None, None) => {
                problems.push(format!("{n} at {} is not a number TOML can hold", at(path)));
                toml::Value::Integer(0)
            }
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_toml(item, &format!("{path}[{i}]"), problems))
                .collect(),
        ),
        J::Object(map) => toml::Value::Table(
            map.iter()
                .map(|(key, item)| {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    (key.clone(), to_toml(item, &child, problems))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("header"),
        );
        headers
    }

    #[test]
    fn json_becomes_the_same_pipeline_file() {
        let json = r#"{
            "pipeline": {"name": "titles"},
            "source": [{"kind": "generate", "schema": "../plugins/enrich/schemas/title.avsc", "count": 10, "rate": 2.5}],
            "processor": [{"plugin": "filter@^0.1", "params": {"condition": "year > 2000", "strict": true}}],
            "sink": {"kind": "jsonl", "path": "out.jsonl"},
            "limits": {"batch_size": 100}
        }"#;
        let text =
            pipeline_text(&with_type("application/json"), json.as_bytes()).expect("converts");
        let from_json: toml::Value = toml::from_str(&text).expect("valid TOML");
        let written = r#"
            [pipeline]
            name = "titles"
            [[source]]
            kind = "generate"
            schema = "../plugins/enrich/schemas/title.avsc"
            count = 10
            rate = 2.5
            [[processor]]
            plugin = "filter@^0.1"
            params = { condition = "year > 2000", strict = true }
            [sink]
            kind = "jsonl"
            path = "out.jsonl"
            [limits]
            batch_size = 100
        "#;
        let from_toml: toml::Value = toml::from_str(written).expect("valid TOML");
        assert_eq!(from_json, from_toml, "TOML written:\n{text}");
        // The config loader reads it like the file.
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::config::parse_str(&text, &base.join("titles.toml"), base)
            .expect("the converted text loads as a pipeline file");
    }

    #[test]
    fn toml_bodies_pass_through_whatever_the_parameters() {
        let body = "[sink]\nkind = \"null\"\n";
        for content_type in ["application/toml", "text/toml; charset=utf-8", "TEXT/TOML"] {
            assert_eq!(
                pipeline_text(&with_type(content_type), body.as_bytes()).expect("toml"),
                body
            );
        }
        // Anything else is JSON, and TOML is not JSON.
        let problems = pipeline_text(&HeaderMap::new(), body.as_bytes()).expect_err("not JSON");
        assert!(problems[0].starts_with("invalid JSON body"), "{problems:?}");
    }

    #[test]
    fn every_unrepresentable_json_value_is_named() {
        let problems = json_to_toml(
            r#"{"sink": {"kind": null}, "source": [{"count": 18446744073709551615}], "x": [1, null]}"#,
        )
        .expect_err("refused");
        assert_eq!(
            problems,
            vec![
                "null at `sink.kind`: TOML has no null; leave the key out instead".to_string(),
                "18446744073709551615 at `source[0].count` is larger than a TOML integer (at most 9223372036854775807)".to_string(),
                "null at `x[1]`: TOML has no null; leave the key out instead".to_string(),
            ]
        );
        assert_eq!(
            json_to_toml("[1, 2]").expect_err("not an object"),
            vec!["the JSON body must be an object with the pipeline file's sections".to_string()]
        );
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let problems = json_to_toml(&format!("{{\"a\": {deep}}}")).expect_err("too deep");
        assert!(problems[0].contains("recursion limit"), "{problems:?}");
        assert!(pipeline_text(&HeaderMap::new(), b"\xff\xfe").is_err());
    }
}
