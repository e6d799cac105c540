use weft_guest::avro::types::Value;
use weft_guest::testing::{TestOutcome, configure_record};

use super::{Mask, Mode};

const SCHEMA: &str = r#"{"type": "record", "name": "User", "fields": [
    {"name": "id", "type": "long"},
    {"name": "email", "type": ["null", "string"], "default": null},
    {"name": "aliases", "type": {"type": "array", "items": "string"}},
    {"name": "owner", "type": {"type": "record", "name": "Owner", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": "int"}]}}
]}"#;

fn user(email: Option<&str>) -> Value {
    Value::Record(vec![
        ("id".into(), Value::Long(1)),
        (
            "email".into(),
            match email {
                Some(e) => Value::Union(1, Box::new(Value::String(e.into()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        (
            "aliases".into(),
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
        ),
        (
            "owner".into(),
            Value::Record(vec![
                ("name".into(), Value::String("Ada".into())),
                ("age".into(), Value::Int(36)),
            ]),
        ),
    ])
}

fn masked(params: &[(&str, &str)], input: Value) -> Value {
    let mut stage = configure_record::<Mask>(params, SCHEMA).expect("configure");
    assert_eq!(stage.output_schema(), SCHEMA);
    match stage.process_one(input).expect("process") {
        TestOutcome::Emit(mut values) if values.len() == 1 => values.remove(0),
        other => panic!("expected one record, got {other:?}"),
    }
}

fn string(s: &str) -> Value {
    Value::String(s.into())
}

fn field(value: &Value, name: &str) -> Value {
    match value {
        Value::Record(fields) => fields
            .iter()
            .find(|(n, _)| n == name)
            .expect("field")
            .1
            .clone(),
        _ => panic!("not a record"),
    }
}

#[test]
fn redact_replaces_strings_and_keeps_nulls() {
    let params = [("fields", "email, owner.name, aliases")];
    let out = masked(&params, user(Some("ada@example.com")));
    assert_eq!(
        field(&out, "email"),
        Value::Union(1, Box::new(string("***")))
    );
    assert_eq!(
        field(&out, "aliases"),
        Value::Array(vec![string("***"), string("***")])
    );
    assert_eq!(
        field(&out, "owner"),
        Value::Record(vec![
            ("name".into(), string("***")),
            ("age".into(), Value::Int(36))
        ])
    );
    assert_eq!(field(&out, "id"), Value::Long(1));
    let out = masked(&params, user(None));
    assert_eq!(field(&out, "email"), Value::Union(0, Box::new(Value::Null)));
}

#[test]
fn hash_is_salted_sha256_hex() {
    let out = masked(
        &[("fields", "email"), ("mode", "hash"), ("salt", "pepper")],
        user(Some("ada@example.com")),
    );
    // sha256("pepperada@example.com")
    let expected = Mode::Hash {
        salt: "pepper".into(),
    }
    .mask("ada@example.com");
    assert_eq!(expected.len(), 64);
    assert_eq!(
        field(&out, "email"),
        Value::Union(1, Box::new(string(&expected)))
    );
    assert_ne!(
        expected,
        Mode::Hash {
            salt: "salt".into()
        }
        .mask("ada@example.com")
    );
    assert_eq!(
        Mode::Hash { salt: "a".into() }.mask("bc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn config_errors() {
    let err = |params: &[(&str, &str)]| {
        configure_record::<Mask>(params, SCHEMA)
            .map(|_| ())
            .expect_err("configuration error")
            .to_string()
    };
    assert_eq!(
        err(&[]),
        "parameter 'fields': required parameter is missing"
    );
    assert_eq!(
        err(&[("fields", " , ")]),
        "parameter 'fields': no field to mask"
    );
    assert_eq!(
        err(&[("fields", "owner.age")]),
        "parameter 'fields': field 'owner.age' is of type int; mask only masks strings, nullable strings and arrays of strings"
    );
    assert_eq!(
        err(&[("fields", "mail")]),
        "parameter 'fields': unknown field 'mail': no field 'mail'; available: id, email, aliases, owner"
    );
    assert_eq!(
        err(&[("fields", "email"), ("mode", "hash")]),
        "parameter 'salt': mode = hash needs a non-empty salt"
    );
    assert_eq!(
        err(&[("fields", "email"), ("mode", "blur")]),
        "parameter 'mode': unknown mode 'blur'; expected redact or hash"
    );
}

#[test]
fn mask_new_checks_fields_directly() {
    let schema = weft_guest::avro::Schema::parse_str(SCHEMA).expect("schema");
    assert!(Mask::new(&["email"], Mode::Redact, &schema).is_ok());
    assert!(Mask::new(&["id"], Mode::Redact, &schema).is_err());
}

#[test]
fn mask_reads_the_fields_it_masks() {
    let stage = configure_record::<Mask>(&[("fields", "email, owner.name, email")], SCHEMA)
        .expect("configure");
    assert_eq!(
        stage.reads().expect("mask says what it reads"),
        ["email", "owner.name", "email"]
    );
}
