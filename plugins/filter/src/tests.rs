use weft_guest::avro::Schema;
use weft_guest::avro::types::Value;
use weft_guest::testing::{TestOutcome, configure_record};
use weft_guest::{Record, RecordProcessor};

use super::Filter;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Title", "namespace": "weft.demo",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "title", "type": "string"},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["movie", "series", "book"]}},
    {"name": "year", "type": "int"},
    {"name": "rating", "type": ["null", "double"], "default": null},
    {"name": "score", "type": "float"},
    {"name": "available", "type": "boolean"},
    {"name": "genres", "type": {"type": "array", "items": "string"}},
    {"name": "owner", "type": {"type": "record", "name": "Owner", "fields": [
      {"name": "name", "type": "string"},
      {"name": "email", "type": ["null", "string"]}
    ]}},
    {"name": "sequel_of", "type": ["null", {"type": "record", "name": "Ref", "fields": [
      {"name": "id", "type": "long"}
    ]}], "default": null},
    {"name": "tags", "type": {"type": "map", "values": "string"}}
  ]
}"#;

struct Title {
    id: i64,
    title: &'static str,
    kind: u32,
    year: i32,
    rating: Option<f64>,
    email: Option<&'static str>,
    sequel_of: Option<i64>,
    genres: &'static [&'static str],
}

impl Title {
    fn value(&self) -> Value {
        let union = |v: Option<Value>| match v {
            Some(v) => Value::Union(1, Box::new(v)),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        let kinds = ["movie", "series", "book"];
        Value::Record(vec![
            ("id".into(), Value::Long(self.id)),
            ("title".into(), Value::String(self.title.into())),
            (
                "kind".into(),
                Value::Enum(self.kind, kinds[self.kind as usize].into()),
            ),
            ("year".into(), Value::Int(self.year)),
            ("rating".into(), union(self.rating.map(Value::Double))),
            ("score".into(), Value::Float(self.year as f32 / 1000.0)),
            ("available".into(), Value::Boolean(self.id % 2 == 0)),
            (
                "genres".into(),
                Value::Array(
                    self.genres
                        .iter()
                        .map(|g| Value::String((*g).into()))
                        .collect(),
                ),
            ),
            (
                "owner".into(),
                Value::Record(vec![
                    ("name".into(), Value::String("Ada".into())),
                    (
                        "email".into(),
                        union(self.email.map(|e| Value::String(e.into()))),
                    ),
                ]),
            ),
            (
                "sequel_of".into(),
                union(
                    self.sequel_of
                        .map(|id| Value::Record(vec![("id".into(), Value::Long(id))])),
                ),
            ),
            ("tags".into(), Value::Map(Default::default())),
        ])
    }
}

fn titles() -> Vec<Title> {
    vec![
        Title {
            id: 1,
            title: "Alien",
            kind: 0,
            year: 1979,
            rating: Some(8.5),
            email: Some("ada@example.com"),
            sequel_of: None,
            genres: &["horror", "sci-fi"],
        },
        Title {
            id: 2,
            title: "Aliens",
            kind: 0,
            year: 1986,
            rating: None,
            email: None,
            sequel_of: Some(1),
            genres: &["action", "sci-fi"],
        },
        Title {
            id: 3,
            title: "Dune",
            kind: 2,
            year: 1965,
            rating: Some(6.0),
            email: Some("x@y.org"),
            sequel_of: None,
            genres: &[],
        },
        Title {
            id: 4,
            title: "The Wire",
            kind: 1,
            year: 2002,
            rating: Some(9.3),
            email: Some("ada@example.com"),
            sequel_of: None,
            genres: &["crime"],
        },
    ]
}

/// The ids of the demo titles the condition keeps, through the real decode path.
fn kept(condition: &str) -> Vec<i64> {
    let mut stage =
        configure_record::<Filter>(&[("condition", condition)], SCHEMA).expect(condition);
    let titles = titles();
    let outcomes = stage
        .process(titles.iter().map(Title::value).collect())
        .expect("process");
    titles
        .iter()
        .zip(outcomes)
        .filter_map(|(title, outcome)| match outcome {
            TestOutcome::Keep => Some(title.id),
            TestOutcome::Emit(values) if values.is_empty() => None,
            other => panic!("{condition}: unexpected outcome {other:?}"),
        })
        .collect()
}

fn config_error(condition: &str) -> String {
    match configure_record::<Filter>(&[("condition", condition)], SCHEMA) {
        Ok(_) => panic!("{condition}: expected a configuration error"),
        Err(e) => {
            assert_eq!(e.param.as_deref(), Some("condition"));
            e.message
        }
    }
}

#[test]
fn comparisons_over_numbers_strings_and_enums() {
    assert_eq!(kept("year > 1979"), [2, 4]);
    assert_eq!(kept("year >= 1979"), [1, 2, 4]);
    assert_eq!(kept("1979 < year"), [2, 4]);
    assert_eq!(kept("year <= 1979 and year != 1965"), [1]);
    assert_eq!(kept("id == 3"), [3]);
    assert_eq!(kept("score > 1.99"), [4]);
    assert_eq!(kept("rating > 8.5"), [4]);
    assert_eq!(kept("rating >= 8"), [1, 4]);
    assert_eq!(kept("title == 'Aliens'"), [2]);
    assert_eq!(kept("title < \"B\""), [1, 2]);
    assert_eq!(kept("kind == 'movie'"), [1, 2]);
    assert_eq!(kept("kind != 'movie'"), [3, 4]);
    assert_eq!(kept("available"), [2, 4]);
    assert_eq!(kept("available == false"), [1, 3]);
    assert_eq!(kept("true"), [1, 2, 3, 4]);
}

#[test]
fn nulls_compare_false_except_for_equality() {
    assert_eq!(kept("rating > 0"), [1, 3, 4]);
    assert_eq!(kept("rating < 100"), [1, 3, 4]);
    assert_eq!(kept("not (rating > 7)"), [2, 3]);
    assert_eq!(kept("rating is null"), [2]);
    assert_eq!(kept("rating is not null"), [1, 3, 4]);
    assert_eq!(kept("rating == null"), [2]);
    assert_eq!(kept("rating != 6"), [1, 2, 4]);
    assert_eq!(kept("owner.email ends_with 'example.com'"), [1, 4]);
    assert_eq!(kept("owner.email is null"), [2]);
}

#[test]
fn nested_fields_through_optional_records() {
    assert_eq!(kept("sequel_of.id == 1"), [2]);
    assert_eq!(kept("sequel_of.id is null"), [1, 3, 4]);
    assert_eq!(kept("sequel_of is not null"), [2]);
    assert_eq!(kept("owner.name == 'Ada'"), [1, 2, 3, 4]);
}

#[test]
fn logic_string_ops_and_arrays() {
    assert_eq!(
        kept("kind == 'movie' and (rating >= 8 or rating is null)"),
        [1, 2]
    );
    assert_eq!(kept("year < 1970 or year > 2000"), [3, 4]);
    assert_eq!(kept("not kind == 'movie' and not year > 2000"), [3]);
    assert_eq!(kept("title contains 'lien'"), [1, 2]);
    assert_eq!(kept("title starts_with 'The '"), [4]);
    assert_eq!(kept("title ends_with 's'"), [2]);
    assert_eq!(kept("genres contains 'sci-fi'"), [1, 2]);
    assert_eq!(kept("NOT genres contains 'sci-fi' AND title != ''"), [3, 4]);
}

#[test]
fn unknown_fields_name_the_field_and_the_available_ones() {
    assert_eq!(
        config_error("year > 2000 and raiting > 5"),
        "column 17: unknown field 'raiting': no field 'raiting'; available: \
         id, title, kind, year, rating, score, available, genres, owner, sequel_of, tags"
    );
    assert_eq!(
        config_error("owner.mail is null"),
        "column 1: unknown field 'owner.mail': no field 'mail' in 'owner'; available: name, email"
    );
    assert_eq!(
        config_error("title.x == 1"),
        "column 1: field 'title.x': 'title' is not a record"
    );
}

#[test]
fn type_errors_are_config_errors() {
    let cases = [
        (
            "year == 'old'",
            "column 1: cannot compare field 'year' (int) with a string",
        ),
        (
            "title > 3",
            "column 1: cannot compare field 'title' (string) with a number",
        ),
        (
            "kind == 'podcast'",
            "column 1: 'podcast' is not one of the symbols movie, series, book",
        ),
        (
            "rating > null",
            "column 1: null cannot be compared with '>'; use 'is null'",
        ),
        (
            "available < true",
            "column 1: booleans cannot be compared with '<'",
        ),
        (
            "year",
            "column 1: field 'year' (int) is not a condition; compare it with a value",
        ),
        (
            "genres == 'x'",
            "column 1: field 'genres' (array of string) is an array; use 'contains'",
        ),
        (
            "genres contains 3",
            "column 1: field 'genres' (array of string) cannot contain a number",
        ),
        (
            "year contains 3",
            "column 1: 'contains' needs two strings, not field 'year' (int) and a number",
        ),
        (
            "tags == 'x'",
            "column 1: field 'tags' is a map; conditions test numbers, strings, enums, booleans and arrays of those",
        ),
        (
            "year > 3 and (year > 2) > 1",
            "column 14: a parenthesised condition is not a value",
        ),
    ];
    for (condition, expected) in cases {
        assert_eq!(config_error(condition), expected, "{condition}");
    }
}

#[test]
fn parse_errors_point_at_the_column() {
    assert_eq!(
        config_error("year > 2000 and rating >= "),
        "column 27: expected a value after '>=', found the end of the condition"
    );
}

#[test]
fn the_condition_is_required_and_the_schema_must_be_a_record() {
    let err = configure_record::<Filter>(&[], SCHEMA)
        .map(|_| ())
        .expect_err("missing condition");
    assert_eq!(
        err.to_string(),
        "parameter 'condition': required parameter is missing"
    );
    let err = configure_record::<Filter>(&[("condition", "true")], r#""string""#)
        .map(|_| ())
        .expect_err("not a record");
    assert_eq!(
        err.to_string(),
        "filter processes records, but the input schema is string"
    );
}

#[test]
fn matches_works_on_records_directly() {
    let schema = Schema::parse_str(SCHEMA).expect("schema");
    let filter = Filter::new("year >= 2000", &schema).expect("condition");
    let titles = titles();
    let record = |i: usize| Record::new(titles[i].value()).expect("a record");
    assert!(filter.matches(&record(3)));
    assert!(!filter.matches(&record(0)));
    assert_eq!(Filter::MANIFEST.name, "filter");
}

#[test]
fn the_filter_reads_the_fields_its_condition_tests_and_nothing_else() {
    let stage = configure_record::<Filter>(
        &[(
            "condition",
            "year >= 2000 and (rating > 7.5 or rating is null) and owner.email ends_with '@x' \
             and genres contains 'crime' and not available",
        )],
        SCHEMA,
    )
    .expect("configure");
    let reads: Vec<&str> = stage
        .reads()
        .expect("filter says what it reads")
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        reads,
        ["year", "rating", "owner.email", "genres", "available"]
    );
}
