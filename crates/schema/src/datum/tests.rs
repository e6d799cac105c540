use apache_avro::types::Value;
use apache_avro::{Schema, from_avro_datum, to_avro_datum};
use proptest::prelude::*;

use super::*;

/// The stack of the host's run thread (`weft_host::pipeline::RUN_STACK_BYTES`): apache-avro
/// needs it to decode what the checker accepts.
const RUN_STACK_BYTES: usize = 64 << 20;

const LIST: &str = r#"{"type":"record","name":"Node","namespace":"t","fields":[
    {"name":"name","type":"string"},
    {"name":"next","type":["null","Node"]}]}"#;

fn list_schema() -> Schema {
    Schema::parse_str(LIST).expect("valid schema")
}

/// The Avro bytes of a linked list `depth` nodes long, built without recursion.
fn list_bytes(depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..depth {
        out.extend_from_slice(&[2, b'n']); // name: "n"
        out.push(if i + 1 == depth { 0 } else { 2 }); // next: null, or the next node
    }
    out
}

#[test]
fn a_linked_list_within_the_limit_is_a_datum() {
    let schema = list_schema();
    let check = DatumCheck::new(&schema, 64).expect("compiles");
    let bytes = list_bytes(64);
    assert_eq!(check.check(&bytes), Ok(()));
    // apache-avro needs ~100 KiB of stack per level in a debug build: not on a test thread.
    let run = std::thread::Builder::new()
        .stack_size(RUN_STACK_BYTES)
        .spawn(move || {
            let value = from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("decodes");
            assert_eq!(to_avro_datum(&schema, value).expect("encodes"), bytes);
        })
        .expect("thread");
    run.join().expect("apache-avro agrees");
}

#[test]
fn nesting_around_the_frames_kept_inline_is_read_whole() {
    let check = DatumCheck::new(&list_schema(), 64).expect("compiles");
    for depth in INLINE_FRAMES - 1..=INLINE_FRAMES + 2 {
        let bytes = list_bytes(depth);
        assert_eq!(check.datum_len(&bytes), Ok(bytes.len()), "depth {depth}");
        // A datum followed by another: the check stops where the first ends.
        let twice = [bytes.clone(), bytes.clone()].concat();
        assert_eq!(check.datum_len(&twice), Ok(bytes.len()), "depth {depth}");
        let mut short = bytes.clone();
        short.pop();
        assert!(check.check(&short).is_err(), "depth {depth}");
    }
}

#[test]
fn a_linked_list_past_the_limit_is_too_deep_and_its_end_is_known() {
    let check = DatumCheck::new(&list_schema(), 64).expect("compiles");
    for depth in [65, 100, 10_000] {
        let bytes = list_bytes(depth);
        assert_eq!(
            check.check(&bytes),
            Err(DatumError::TooDeep {
                limit: 64,
                end: Some(bytes.len())
            }),
            "depth {depth}"
        );
    }
    let err = check.check(&list_bytes(100)).expect_err("too deep");
    assert_eq!(
        err.to_string(),
        "nested deeper than 64 levels (limits.max_depth)"
    );
}

#[test]
fn a_list_deeper_than_can_be_skipped_has_no_end() {
    let check = DatumCheck::new(&list_schema(), 64).expect("compiles");
    assert_eq!(
        check.datum_len(&list_bytes(SKIP_DEPTH + 10)),
        Err(DatumError::TooDeep {
            limit: 64,
            end: None
        })
    );
}

#[test]
fn trailing_bytes_garbage_and_bad_indices_are_refused() {
    let check = DatumCheck::new(&list_schema(), 64).expect("compiles");
    let mut junk = list_bytes(3);
    junk.extend_from_slice(b"junk");
    assert_eq!(
        check.check(&junk).expect_err("junk").to_string(),
        "4 bytes after the end of the datum at byte 9"
    );
    assert_eq!(
        check.check(&[0xff; 7]).expect_err("garbage").to_string(),
        "the datum ends early (1 bytes needed, 0 left) at byte 7"
    );
    // name "n", then union branch 2 of 2.
    assert_eq!(
        check
            .check(&[2, b'n', 4])
            .expect_err("bad branch")
            .to_string(),
        "union branch 2 out of range (0..2) at byte 2"
    );
    assert_eq!(
        check
            .check(&[2, 0xc3, 0])
            .expect_err("bad utf-8")
            .to_string(),
        "a string that is not UTF-8 (incomplete utf-8 byte sequence from index 0) at byte 0"
    );
    let e = Schema::parse_str(r#"{"type":"enum","name":"E","symbols":["a","b"]}"#).expect("enum");
    let check = DatumCheck::new(&e, 64).expect("compiles");
    assert_eq!(check.check(&[2]), Ok(()));
    assert_eq!(
        check.check(&[4]).expect_err("bad symbol").to_string(),
        "enum index 2 out of range (0..2) at byte 0"
    );
}

#[test]
fn a_huge_count_of_empty_items_is_refused_not_looped_over() {
    let schema = Schema::parse_str(r#"{"type":"array","items":"null"}"#).expect("schema");
    let check = DatumCheck::new(&schema, 64).expect("compiles");
    // 2^62 nulls in one block: a decoder would spin (and reserve) without end.
    let mut bytes = vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    bytes.push(0);
    assert!(matches!(
        check.check(&bytes),
        Err(DatumError::Invalid { what, .. }) if what.contains("more than the datum can hold")
    ));
    // A few thousand are fine.
    assert_eq!(check.check(&[0xa0, 0x1f, 0]), Ok(()));
}

#[test]
fn json_depth_skips_brackets_in_strings() {
    assert_eq!(json_depth(r#"{"a":"[[[{{","b":[1,[2]]}"#), 3);
    assert_eq!(json_depth(r#"["\"[[["]"#), 1);
    assert_eq!(json_depth("7"), 0);
}

// --- property-based: generated schemas and datums -------------------------------------------

/// A schema shape; names are given when it is written out.
#[derive(Debug, Clone)]
enum Shape {
    Null,
    Boolean,
    Int,
    Long,
    Double,
    String,
    Bytes,
    Enum(usize),
    Fixed(usize),
    Array(Box<Shape>),
    Map(Box<Shape>),
    Record(Vec<Shape>),
    Optional(Box<Shape>),
    /// The linked list, `LIST`, as a field.
    List,
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Null),
        Just(Shape::Boolean),
        Just(Shape::Int),
        Just(Shape::Long),
        Just(Shape::Double),
        Just(Shape::String),
        Just(Shape::Bytes),
        (1usize..4).prop_map(Shape::Enum),
        (0usize..5).prop_map(Shape::Fixed),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Shape::Array(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Map(Box::new(s))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Shape::Record),
            inner
                .clone()
                .prop_filter("no nested unions, no null twice", |s| {
                    !matches!(s, Shape::Optional(_) | Shape::Null)
                })
                .prop_map(|s| Shape::Optional(Box::new(s))),
            Just(Shape::List),
        ]
    })
}

fn schema_json(shape: &Shape, names: &mut usize, list_defined: &mut bool) -> serde_json::Value {
    use serde_json::json;
    let mut name = || {
        *names += 1;
        format!("N{names}")
    };
    match shape {
        Shape::Null => json!("null"),
        Shape::Boolean => json!("boolean"),
        Shape::Int => json!("int"),
        Shape::Long => json!("long"),
        Shape::Double => json!("double"),
        Shape::String => json!("string"),
        Shape::Bytes => json!("bytes"),
        Shape::Enum(n) => {
            json!({"type":"enum","name":name(),"symbols":(0..*n).map(|i| format!("s{i}")).collect::<Vec<_>>()})
        }
        Shape::Fixed(n) => json!({"type":"fixed","name":name(),"size":n}),
        Shape::Array(s) => json!({"type":"array","items":schema_json(s, names, list_defined)}),
        Shape::Map(s) => json!({"type":"map","values":schema_json(s, names, list_defined)}),
        Shape::Record(fields) => {
            let n = name();
            let fields: Vec<_> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"name":format!("f{i}"),"type":schema_json(f, names, list_defined)}))
                .collect();
            json!({"type":"record","name":n,"fields":fields})
        }
        Shape::Optional(s) => json!(["null", schema_json(s, names, list_defined)]),
        Shape::List if *list_defined => json!("t.Node"),
        Shape::List => {
            *list_defined = true;
            serde_json::from_str(LIST).expect("list schema")
        }
    }
}

fn value(shape: &Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Null => Just(Value::Null).boxed(),
        Shape::Boolean => any::<bool>().prop_map(Value::Boolean).boxed(),
        Shape::Int => any::<i32>().prop_map(Value::Int).boxed(),
        Shape::Long => any::<i64>().prop_map(Value::Long).boxed(),
        Shape::Double => any::<f64>().prop_map(Value::Double).boxed(),
        Shape::String => ".{0,8}".prop_map(Value::String).boxed(),
        Shape::Bytes => prop::collection::vec(any::<u8>(), 0..8)
            .prop_map(Value::Bytes)
            .boxed(),
        Shape::Enum(n) => (0..*n as u32)
            .prop_map(|i| Value::Enum(i, format!("s{i}")))
            .boxed(),
        Shape::Fixed(n) => {
            let n = *n;
            prop::collection::vec(any::<u8>(), n..=n)
                .prop_map(move |b| Value::Fixed(n, b))
                .boxed()
        }
        Shape::Array(s) => prop::collection::vec(value(s), 0..4)
            .prop_map(Value::Array)
            .boxed(),
        Shape::Map(s) => prop::collection::hash_map("[a-z]{0,3}", value(s), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Shape::Record(fields) => {
            let parts: Vec<_> = fields.iter().map(value).collect();
            parts
                .prop_map(|values| {
                    Value::Record(
                        values
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (format!("f{i}"), v))
                            .collect(),
                    )
                })
                .boxed()
        }
        Shape::Optional(s) => prop_oneof![
            Just(Value::Union(0, Box::new(Value::Null))),
            value(s).prop_map(|v| Value::Union(1, Box::new(v))),
        ]
        .boxed(),
        Shape::List => (1usize..6)
            .prop_map(|depth| {
                let mut node = Value::Union(0, Box::new(Value::Null));
                for _ in 0..depth {
                    node = Value::Union(
                        1,
                        Box::new(Value::Record(vec![
                            ("name".into(), Value::String("n".into())),
                            ("next".into(), node),
                        ])),
                    );
                }
                match node {
                    Value::Union(_, record) => *record,
                    other => other,
                }
            })
            .boxed(),
    }
}

/// A generated schema (always a record at the top) with one of its datums, encoded.
fn schema_and_datum() -> impl Strategy<Value = (Schema, Vec<u8>)> {
    prop::collection::vec(shape(), 1..4).prop_flat_map(|fields| {
        let top = Shape::Record(fields);
        let json = schema_json(&top, &mut 0, &mut false);
        let schema = Schema::parse_str(&json.to_string()).expect("generated schema parses");
        value(&top).prop_map(move |v| {
            let bytes = to_avro_datum(&schema, v).expect("generated value encodes");
            (schema.clone(), bytes)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn accepts_every_datum_apache_avro_encodes((schema, bytes) in schema_and_datum()) {
        let check = DatumCheck::new(&schema, 1000).expect("compiles");
        prop_assert_eq!(check.check(&bytes), Ok(()));
        prop_assert_eq!(check.datum_len(&bytes), Ok(bytes.len()));
    }

    #[test]
    fn refuses_truncations_and_trailing_bytes(
        (schema, bytes) in schema_and_datum(),
        cut in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let check = DatumCheck::new(&schema, 1000).expect("compiles");
        if !bytes.is_empty() {
            let cut = cut.index(bytes.len());
            prop_assert!(check.check(&bytes[..cut]).is_err(), "a truncation at {} passed", cut);
        }
        let mut long = bytes.clone();
        long.extend_from_slice(&junk);
        prop_assert!(check.check(&long).is_err());
        prop_assert_eq!(check.datum_len(&long), Ok(bytes.len()));
    }

    /// Whatever the bytes, the check never panics, and what it accepts apache-avro decodes
    /// exactly (so it is safe to hand apache-avro anything that passed).
    #[test]
    fn mutated_bytes_never_panic_and_what_passes_decodes(
        (schema, bytes) in schema_and_datum(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let check = DatumCheck::new(&schema, 1000).expect("compiles");
        let mut bytes = bytes;
        if bytes.is_empty() {
            bytes.push(0);
        }
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if check.check(&bytes).is_ok() {
            let mut rest = bytes.as_slice();
            let decoded = from_avro_datum(&schema, &mut rest, None);
            prop_assert!(decoded.is_ok(), "passed the check but apache-avro says {:?}", decoded);
            prop_assert!(rest.is_empty());
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let check = DatumCheck::new(&list_schema(), 8).expect("compiles");
        let _ = check.check(&bytes);
    }
}

/// A JSON value nested exactly `depth` levels (arrays and objects alternating).
fn nested_json(depth: usize) -> serde_json::Value {
    let mut json = serde_json::json!("[{\"not\": \"counted\"}]");
    for level in 0..depth {
        json = if level % 2 == 0 {
            serde_json::json!([json])
        } else {
            serde_json::json!({ "k": json })
        };
    }
    json
}

proptest! {
    /// The depth limit is exact at any depth: a list as deep as the limit passes, one node
    /// deeper does not, and the end of a too-deep list is still found.
    #[test]
    fn the_depth_limit_is_exact(limit in 1usize..200, extra in 0usize..3000) {
        let check = DatumCheck::new(&list_schema(), limit).expect("compiles");
        prop_assert_eq!(check.check(&list_bytes(limit)), Ok(()));
        let deeper = list_bytes(limit + 1 + extra);
        prop_assert_eq!(
            check.check(&deeper),
            Err(DatumError::TooDeep { limit, end: Some(deeper.len()) })
        );
    }

    #[test]
    fn json_depth_is_the_nesting_serde_json_sees(depth in 0usize..100) {
        let text = nested_json(depth).to_string();
        prop_assert_eq!(json_depth(&text), depth);
        let pretty = serde_json::to_string_pretty(&nested_json(depth)).expect("prints");
        prop_assert_eq!(json_depth(&pretty), depth);
    }
}
