use apache_avro::to_avro_datum;

use super::*;
use crate::Record;
use crate::path::FieldPath;
use crate::scan::tests::title;

const TITLE: &str = include_str!("../../../plugins/enrich/schemas/title.avsc");

fn title_lazy() -> (Schema, Vec<u8>, Lazy) {
    let schema = Schema::parse_str(TITLE).expect("title");
    let layout = Layout::of(&schema, &Names::of(&schema)).expect("title is supported");
    let bytes = to_avro_datum(&schema, title()).expect("encodes");
    let lazy = Lazy::new(bytes.clone(), layout).expect("a title");
    (schema, bytes, lazy)
}

fn decoded(lazy: &Lazy) -> Vec<&str> {
    lazy.slots
        .iter()
        .filter(|slot| slot.value.get().is_some())
        .map(|slot| lazy.name(slot))
        .collect()
}

fn encoded(lazy: &Lazy, schema: &Schema) -> Result<Vec<u8>, Unsupported> {
    let target = Target::new(&lazy.layout, schema, &Names::of(schema)).expect("a record");
    let mut out = Vec::new();
    lazy.encode(&target, &mut out)?;
    Ok(out)
}

#[test]
fn reading_a_field_decodes_that_field_alone() {
    let (_, _, lazy) = title_lazy();
    assert!(decoded(&lazy).is_empty());
    assert_eq!(lazy.get(3), Some(&Value::Int(2001)));
    assert_eq!(decoded(&lazy), ["year"]);
}

#[test]
fn an_unchanged_record_is_its_input_bytes_and_a_changed_field_is_encoded() {
    let (schema, bytes, lazy) = title_lazy();
    lazy.get(6);
    assert_eq!(encoded(&lazy, &schema).expect("encodes"), bytes);

    let email = FieldPath::resolve(&schema, "owner.email").expect("a path");
    let mut record = Record::lazy(lazy);
    *record.get_mut(&email).expect("a string") = Value::String("x".into());
    let mut expected = title();
    if let Value::Record(fields) = &mut expected
        && let Value::Record(owner) = &mut fields[6].1
    {
        owner[1].1 = Value::String("x".into());
    }
    assert_eq!(record.value(), &expected);
    let mut out = Vec::new();
    record
        .encode(&schema, None, &Names::of(&schema), &mut out)
        .expect("encodes");
    assert_eq!(out, to_avro_datum(&schema, expected).expect("encodes"));
}

#[test]
fn a_selection_copies_the_fields_it_keeps_and_never_decodes_the_others() {
    let (_, _, mut lazy) = title_lazy();
    lazy.select([(0, "id"), (3, "released"), (6, "owner")]);
    assert!(decoded(&lazy).is_empty());
    let output = Schema::parse_str(
        r#"{"type": "record", "name": "T", "fields": [{"name": "id", "type": "long"},
            {"name": "released", "type": "int"},
            {"name": "owner", "type": {"type": "record", "name": "Owner", "fields": [
                {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}}]}"#,
    )
    .expect("schema");
    let Value::Record(fields) = title() else {
        unreachable!()
    };
    let expected = Value::Record(vec![
        ("id".into(), fields[0].1.clone()),
        ("released".into(), fields[3].1.clone()),
        ("owner".into(), fields[6].1.clone()),
    ]);
    assert_eq!(
        encoded(&lazy, &output).expect("encodes"),
        to_avro_datum(&output, expected.clone()).expect("encodes")
    );
    assert!(decoded(&lazy).is_empty(), "copied, not decoded");
    assert_eq!(lazy.into_value(), expected);
}

#[test]
fn bytes_are_not_copied_into_a_field_of_another_layout() {
    let (_, _, lazy) = title_lazy();
    // The same names, but `rating`'s union branches the other way round: its input bytes
    // (branch 1, a double) would read as a null here.
    let swapped =
        Schema::parse_str(&TITLE.replace(r#"["null", "double"]"#, r#"["double", "null"]"#))
            .expect("schema");
    let expected = crate::encode::encode(&title(), &swapped, &Names::of(&swapped), &mut Vec::new());
    assert!(
        expected.is_err(),
        "the value does not fit the swapped union"
    );
    assert!(encoded(&lazy, &swapped).is_err());
}

#[test]
fn named_references_and_their_definitions_have_the_same_layout() {
    let inline = Schema::parse_str(
        r#"{"type": "record", "name": "R", "fields": [
            {"name": "a", "type": {"type": "fixed", "name": "F", "size": 2}},
            {"name": "b", "type": "F"}, {"name": "c", "type": "int"},
            {"name": "d", "type": "long"}]}"#,
    )
    .expect("schema");
    let Schema::Record(record) = &inline else {
        unreachable!()
    };
    let keys = layout_keys(&record.fields, &Names::of(&inline));
    assert_eq!(keys[0], keys[1]);
    assert_ne!(keys[2], keys[3], "int and long differ in their values");
}

#[test]
fn a_field_picked_twice_or_out_of_range_is_null_as_for_a_plain_record() {
    let (_, _, lazy) = title_lazy();
    let picks = [(3, "year"), (3, "again"), (99, "nowhere"), (1, "name")];
    let mut plain = Record::new(title()).expect("a record");
    plain.select(picks);
    let mut record = Record::lazy(lazy);
    record.select(picks);
    assert_eq!(record, plain);
    assert_eq!(
        record
            .fields()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["year", "again", "nowhere", "name"]
    );
    assert_eq!(record.fields()[1].1, Value::Null);
}

/// The title with `owner`'s fields set to `name` and `email`.
fn title_owned_by(name: &str, email: &str) -> Value {
    let mut expected = title();
    if let Value::Record(fields) = &mut expected
        && let Value::Record(owner) = &mut fields[6].1
    {
        owner[0].1 = Value::String(name.into());
        owner[1].1 = Value::String(email.into());
    }
    expected
}

fn encode_record(record: &Record, schema: &Schema) -> Vec<u8> {
    let names = Names::of(schema);
    let layout = Layout::of(schema, &names).expect("supported");
    let target = Target::new(&layout, schema, &names).expect("a record");
    let mut out = Vec::new();
    record
        .encode(schema, Some(&target), &names, &mut out)
        .expect("encodes");
    out
}

#[test]
fn a_nested_field_changes_alone_and_the_bytes_around_it_are_copied() {
    let (schema, _, mut lazy) = title_lazy();
    let email = FieldPath::resolve(&schema, "owner.email").expect("a path");
    assert!(lazy.can_edit(6, &email.steps[1..]));
    *lazy.nested_mut(6, &email.steps[1..]).expect("a string") = Value::String("h".into());
    assert!(decoded(&lazy).is_empty(), "owner itself is not decoded");
    // Through the record API, as a processor does it.
    let mut record = Record::lazy(lazy);
    *record.get_mut(&email).expect("a string") = Value::String("hidden".into());
    let expected = title_owned_by("Ada", "hidden");
    assert_eq!(
        encode_record(&record, &schema),
        to_avro_datum(&schema, expected.clone()).expect("encodes")
    );
    // Reading it back, as a field or whole, sees the change.
    assert_eq!(record.get(&email), Some(&Value::String("hidden".into())));
    assert_eq!(record.value(), &expected);
}

#[test]
fn a_second_nested_change_in_the_same_record_and_a_read_in_between_keep_both() {
    let (schema, _, lazy) = title_lazy();
    let name = FieldPath::resolve(&schema, "owner.name").expect("a path");
    let email = FieldPath::resolve(&schema, "owner.email").expect("a path");
    let mut record = Record::lazy(lazy);
    *record.get_mut(&email).expect("a string") = Value::String("e".into());
    assert_eq!(record.get(&email), Some(&Value::String("e".into())));
    *record.get_mut(&name).expect("a string") = Value::String("n".into());
    *record.get_mut(&email).expect("a string") = Value::String("e2".into());
    let expected = title_owned_by("n", "e2");
    assert_eq!(
        encode_record(&record, &schema),
        to_avro_datum(&schema, expected.clone()).expect("encodes")
    );
    assert_eq!(record.into_value(), expected);
}

#[test]
fn a_nested_change_survives_a_selection_and_follows_its_field() {
    let (schema, _, lazy) = title_lazy();
    let email = FieldPath::resolve(&schema, "owner.email").expect("a path");
    let mut record = Record::lazy(lazy);
    *record.get_mut(&email).expect("a string") = Value::String("x".into());
    record.select([(6, "owner"), (0, "id")]);
    let output = Schema::parse_str(
        r#"{"type": "record", "name": "T", "fields": [
            {"name": "owner", "type": {"type": "record", "name": "Owner", "fields": [
                {"name": "name", "type": "string"}, {"name": "email", "type": "string"}]}},
            {"name": "id", "type": "long"}]}"#,
    )
    .expect("schema");
    let Value::Record(fields) = title_owned_by("Ada", "x") else {
        unreachable!()
    };
    let expected = Value::Record(vec![
        ("owner".into(), fields[6].1.clone()),
        ("id".into(), fields[0].1.clone()),
    ]);
    let input_names = Names::of(&schema);
    let layout = Layout::of(&schema, &input_names).expect("supported");
    let target = Target::new(&layout, &output, &Names::of(&output)).expect("a record");
    let mut out = Vec::new();
    record
        .encode(&output, Some(&target), &Names::of(&output), &mut out)
        .expect("encodes");
    assert_eq!(out, to_avro_datum(&output, expected).expect("encodes"));
}

#[test]
fn a_path_through_a_union_or_resolved_elsewhere_goes_through_the_decoded_field() {
    // `owner` nullable: the way down holds a union, so the field is decoded whole.
    let nullable = Schema::parse_str(
        &TITLE
            .replace(
                r#""type": {
        "type": "record",
        "name": "Owner","#,
                r#""type": ["null", {
        "type": "record",
        "name": "Owner","#,
            )
            .replace(
                r#"{ "name": "email", "type": "string" }
        ]
      }"#,
                r#"{ "name": "email", "type": "string" }
        ]
      }]"#,
            ),
    )
    .expect("schema");
    let Value::Record(mut fields) = title() else {
        unreachable!()
    };
    fields[6].1 = Value::Union(1, Box::new(fields[6].1.clone()));
    let value = Value::Record(fields);
    let names = Names::of(&nullable);
    let layout = Layout::of(&nullable, &names).expect("supported");
    let bytes = to_avro_datum(&nullable, value.clone()).expect("encodes");
    let email = FieldPath::resolve(&nullable, "owner.email").expect("a path");
    let lazy = Lazy::new(bytes, layout.clone()).expect("a title");
    assert!(!lazy.can_edit(6, &email.steps[1..]));
    let mut record = Record::lazy(lazy);
    *record.get_mut(&email).expect("a string") = Value::String("x".into());
    let mut expected = value;
    if let Value::Record(fields) = &mut expected
        && let Value::Union(_, owner) = &mut fields[6].1
        && let Value::Record(owner) = owner.as_mut()
    {
        owner[1].1 = Value::String("x".into());
    }
    assert_eq!(
        encode_record(&record, &nullable),
        to_avro_datum(&nullable, expected).expect("encodes")
    );

    // A path resolved against a schema whose nested field sits elsewhere: the names
    // disagree with the record's, so no edit is made by position.
    let (_, _, lazy) = title_lazy();
    let swapped = Schema::parse_str(&TITLE.replace(
        r#"{ "name": "name", "type": "string" },
          { "name": "email", "type": "string" }"#,
        r#"{ "name": "email", "type": "string" },
          { "name": "name", "type": "string" }"#,
    ))
    .expect("schema");
    let elsewhere = FieldPath::resolve(&swapped, "owner.email").expect("a path");
    assert!(!lazy.can_edit(6, &elsewhere.steps[1..]));
}
