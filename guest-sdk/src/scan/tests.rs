use apache_avro::to_avro_datum;
use apache_avro::types::Value;

use super::*;

const TITLE: &str = include_str!("../../../plugins/enrich/schemas/title.avsc");

/// Named references, unions of records, maps, enums, fixed: what the walk must follow.
const MIXED: &str = r#"{"type": "record", "name": "M", "fields": [
    {"name": "t", "type": "boolean"}, {"name": "f", "type": "float"},
    {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["a", "b"]}},
    {"name": "x", "type": {"type": "fixed", "name": "X", "size": 3}},
    {"name": "o", "type": {"type": "record", "name": "O", "fields": [
        {"name": "s", "type": "string"}, {"name": "b", "type": "bytes"}]}},
    {"name": "u", "type": ["null", "O", "long"]},
    {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "E"}}},
    {"name": "again", "type": "X"}]}"#;

fn mixed(n: usize) -> Value {
    let o = |s: &str| {
        Value::Record(vec![
            ("s".into(), Value::String(s.into())),
            ("b".into(), Value::Bytes(vec![1; n])),
        ])
    };
    Value::Record(vec![
        ("t".into(), Value::Boolean(n.is_multiple_of(2))),
        ("f".into(), Value::Float(n as f32)),
        ("e".into(), Value::Enum(1, "b".into())),
        ("x".into(), Value::Fixed(3, vec![1, 2, 3])),
        ("o".into(), o("é")),
        (
            "u".into(),
            match n % 3 {
                0 => Value::Union(0, Box::new(Value::Null)),
                1 => Value::Union(1, Box::new(o("ü"))),
                _ => Value::Union(2, Box::new(Value::Long(-7))),
            },
        ),
        (
            "m".into(),
            Value::Map(
                (0..n)
                    .map(|k| {
                        let items = vec![Value::Enum(0, "a".into()); k];
                        (format!("k{k}"), Value::Array(items))
                    })
                    .collect(),
            ),
        ),
        ("again".into(), Value::Fixed(3, vec![9, 9, 9])),
    ])
}

pub(crate) fn title() -> Value {
    Value::Record(vec![
        ("id".into(), Value::Long(42)),
        ("title".into(), Value::String("Amélie".into())),
        ("kind".into(), Value::String("movie".into())),
        ("year".into(), Value::Int(2001)),
        (
            "rating".into(),
            Value::Union(1, Box::new(Value::Double(7.5))),
        ),
        (
            "genres".into(),
            Value::Array(vec![Value::String("drama".into()); 3]),
        ),
        (
            "owner".into(),
            Value::Record(vec![
                ("name".into(), Value::String("Ada".into())),
                ("email".into(), Value::String("ada@example.com".into())),
            ]),
        ),
    ])
}

/// The full decoder's verdict on `bytes`, as the SDK reports it.
fn decoded(schema: &Schema, names: &Names, bytes: &[u8]) -> Result<Value, String> {
    crate::codec::decode(schema, names, None, bytes)
}

/// The scan's verdict on `bytes`, then each field decoded from its span (where the
/// strings' UTF-8 is checked).
fn scanned(schema: &Schema, names: &Names, bytes: &[u8]) -> Result<Vec<Value>, String> {
    let Schema::Record(record) = schema else {
        panic!("a record schema")
    };
    let mut spans = Vec::new();
    Walker::new(record, names)
        .expect("supported")
        .record_spans(bytes, |s| spans.push(s))
        .map_err(crate::codec::decode_error)?;
    record
        .fields
        .iter()
        .zip(spans)
        .map(|(field, span)| {
            let mut rest = &bytes[span];
            let value = decode::decode(&field.schema, names, &mut rest)
                .map_err(crate::codec::decode_error)?;
            assert!(rest.is_empty(), "the span is the field's datum exactly");
            Ok(value)
        })
        .collect()
}

/// `value` as text that is equal for equal values: NaNs by their bits, maps sorted.
fn comparable(value: &Value) -> String {
    match value {
        Value::Float(f) => format!("f{:x}", f.to_bits()),
        Value::Map(entries) => {
            let mut entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", comparable(v)))
                .collect();
            entries.sort();
            format!("{{{}}}", entries.join(","))
        }
        Value::Record(fields) => {
            let fields: Vec<String> = fields.iter().map(|(_, v)| comparable(v)).collect();
            format!("({})", fields.join(","))
        }
        Value::Union(i, inner) => format!("{i}:{}", comparable(inner)),
        other => format!("{other:?}"),
    }
}

/// Scanning, then decoding each span, accepts exactly what decoding accepts, refuses with
/// the same reason, and its spans decode to the fields of the whole value. The one
/// difference: the scan leaves UTF-8 to the decoder, so where the decoder first meets a
/// string that is not UTF-8, the scan may find a fault further on and name that one.
fn agrees(schema: &Schema, bytes: &[u8]) {
    let names = Names::of(schema);
    match (
        decoded(schema, &names, bytes),
        scanned(schema, &names, bytes),
    ) {
        (Ok(Value::Record(fields)), Ok(values)) => {
            let whole: Vec<String> = fields.iter().map(|(_, v)| comparable(v)).collect();
            let values: Vec<String> = values.iter().map(comparable).collect();
            assert_eq!(whole, values);
        }
        (Err(full), Err(scan)) if full.contains("not UTF-8") => {
            assert!(scan.starts_with("cannot decode the input event"), "{scan}")
        }
        (Err(full), Err(scan)) => assert_eq!(full, scan, "{bytes:?}"),
        (full, scan) => panic!("{bytes:?}: decode {full:?}, scan {scan:?}"),
    }
}

#[test]
fn scanning_refuses_what_decoding_refuses_with_the_same_reason() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (json, datums) in [
        (
            TITLE,
            vec![
                to_avro_datum(&Schema::parse_str(TITLE).expect("title"), title()).expect("encodes"),
            ],
        ),
        (
            MIXED,
            (0..6)
                .map(|n| {
                    to_avro_datum(&Schema::parse_str(MIXED).expect("mixed"), mixed(n))
                        .expect("encodes")
                })
                .collect(),
        ),
    ] {
        let schema = Schema::parse_str(json).expect("schema");
        for datum in datums {
            // Whole, cut short anywhere, with a byte too many, and with bytes flipped.
            agrees(&schema, &datum);
            for end in 0..datum.len() {
                agrees(&schema, &datum[..end]);
            }
            agrees(&schema, &[&datum[..], &[0]].concat());
            for _ in 0..2000 {
                let mut bent = datum.clone();
                let at = next() as usize % bent.len();
                bent[at] = next() as u8;
                agrees(&schema, &bent);
            }
        }
        for len in 0..500 {
            let garbage: Vec<u8> = (0..len % 61).map(|_| next() as u8).collect();
            agrees(&schema, &garbage);
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let schema = Schema::parse_str(
        r#"{"type": "record", "name": "Node", "fields": [
            {"name": "next", "type": ["null", "Node"]}]}"#,
    )
    .expect("schema");
    let names = Names::of(&schema);
    let Schema::Record(record) = &schema else {
        unreachable!()
    };
    let walker = Walker::new(record, &names).expect("supported");
    let walk = |depth: usize| {
        let list = [vec![2; depth], vec![0]].concat();
        walker.record_spans(&list, |_| {})
    };
    // A debug build's frames are large: walk on a thread with room for them.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(scope, || {
                assert_eq!(walk(MAX_DEPTH - 1), Ok(()));
                assert_eq!(
                    walk(MAX_DEPTH + 10),
                    Err(Error::Malformed(format!(
                        "nested deeper than {MAX_DEPTH} levels"
                    )))
                );
            })
            .expect("a thread")
            .join()
            .expect("the walk ends");
    });
}

#[test]
fn a_huge_count_of_nulls_is_walked_without_visiting_each() {
    let schema = Schema::parse_str(
        r#"{"type": "record", "name": "R", "fields": [
            {"name": "nothing", "type": {"type": "array", "items": "null"}}]}"#,
    )
    .expect("schema");
    // 500 million nulls (zig-zag 1,000,000,000), then the end of the array.
    let bytes = [0x80, 0x94, 0xeb, 0xdc, 0x03, 0];
    let names = Names::of(&schema);
    let Schema::Record(record) = &schema else {
        unreachable!()
    };
    let mut spans = Vec::new();
    assert_eq!(
        Walker::new(record, &names)
            .expect("supported")
            .record_spans(&bytes, |s| spans.push(s)),
        Ok(())
    );
    assert_eq!(spans, vec![0..bytes.len()]);
}

#[test]
fn decimals_and_unknown_references_are_left_to_apache_avro() {
    let walker = |json: &str, known: bool| {
        let schema = Schema::parse_str(json).expect("schema");
        let Schema::Record(record) = &schema else {
            panic!("a record")
        };
        let names = if known {
            Names::of(&schema)
        } else {
            Names::default()
        };
        Walker::new(record, &names).is_some()
    };
    let decimal = r#"{"type": "record", "name": "R", "fields": [{"name": "d", "type":
        {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}}]}"#;
    assert!(!walker(decimal, true));
    assert!(walker(TITLE, true));
    assert!(walker(MIXED, true));
    // A recursive type refers to the record being defined; an unknown name is refused.
    let recursive = r#"{"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]}"#;
    assert!(walker(recursive, true));
    let unknown = r#"{"type": "record", "name": "R", "fields": [{"name": "o", "type": "Other"}]}"#;
    if let Ok(schema) = Schema::parse_str(unknown) {
        let Schema::Record(record) = &schema else {
            panic!("a record")
        };
        assert!(Walker::new(record, &Names::default()).is_none());
    }
}
