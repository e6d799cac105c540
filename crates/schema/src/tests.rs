//! Compatibility cases, rule by rule, each both ways (and per level at the end).

use super::*;

fn parse(json: &str) -> Schema {
    Schema::parse_str(json).unwrap_or_else(|e| panic!("test schema must parse: {e}\n{json}"))
}

fn record(fields: &str) -> Schema {
    parse(&format!(
        r#"{{"type":"record","name":"User","namespace":"weft.test","fields":[{fields}]}}"#
    ))
}

/// Data written with `writer` can be read with `reader`.
fn ok(writer: &Schema, reader: &Schema) {
    if let Err(e) = check_can_read(writer, reader) {
        panic!("expected readable, got: {e}");
    }
}

/// Data written with `writer` cannot be read with `reader`; returns the first problem.
fn bad(writer: &Schema, reader: &Schema) -> Incompatibility {
    match check_can_read(writer, reader) {
        Ok(()) => panic!("expected incompatible:\nwriter {writer:?}\nreader {reader:?}"),
        Err(e) => e,
    }
}

#[test]
fn identical_schemas_are_compatible() {
    let s = record(
        r#"{"name":"id","type":"long"},{"name":"tags","type":{"type":"array","items":"string"}}"#,
    );
    ok(&s, &s);
}

#[test]
fn added_field_with_default_is_readable_by_the_new_reader() {
    let old = record(r#"{"name":"id","type":"long"}"#);
    let new =
        record(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""}"#);
    ok(&old, &new);
    ok(&new, &old); // the old reader skips the extra field
}

#[test]
fn added_field_without_default_breaks_the_new_reader() {
    let old = record(r#"{"name":"id","type":"long"}"#);
    let new = record(r#"{"name":"id","type":"long"},{"name":"email","type":"string"}"#);
    let e = bad(&old, &new);
    assert_eq!(e.path, "email");
    assert_eq!(e.kind, IncompatibilityKind::ReaderFieldMissingDefaultValue);
    assert_eq!(
        e.message,
        "field `email` has no default in the reader and is missing from the writer"
    );
    ok(&new, &old);
}

#[test]
fn null_default_counts_as_a_default() {
    let old = record(r#"{"name":"id","type":"long"}"#);
    let new =
        record(r#"{"name":"id","type":"long"},{"name":"n","type":["null","int"],"default":null}"#);
    ok(&old, &new);
}

#[test]
fn removed_field_breaks_the_old_reader_unless_it_had_a_default() {
    let with = record(r#"{"name":"id","type":"long"},{"name":"email","type":"string"}"#);
    let without = record(r#"{"name":"id","type":"long"}"#);
    ok(&with, &without);
    assert_eq!(bad(&without, &with).path, "email");
    let with_default =
        record(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":"x"}"#);
    ok(&without, &with_default);
}

#[test]
fn numeric_promotions_follow_the_spec() {
    let types = ["int", "long", "float", "double"];
    for (wi, w) in types.iter().enumerate() {
        for (ri, r) in types.iter().enumerate() {
            let writer = parse(&format!(r#""{w}""#));
            let reader = parse(&format!(r#""{r}""#));
            let result = check_can_read(&writer, &reader);
            if ri >= wi {
                assert!(result.is_ok(), "{w} should promote to {r}");
            } else {
                let e = result.expect_err("demotion must fail");
                assert_eq!(e.kind, IncompatibilityKind::TypeMismatch, "{w} -> {r}");
            }
        }
    }
}

#[test]
fn string_and_bytes_read_each_other() {
    ok(&parse(r#""string""#), &parse(r#""bytes""#));
    ok(&parse(r#""bytes""#), &parse(r#""string""#));
    bad(&parse(r#""string""#), &parse(r#""int""#));
    bad(&parse(r#""bytes""#), &parse(r#""long""#));
}

#[test]
fn type_change_names_the_field_and_both_types() {
    let old = record(
        r#"{"name":"owner","type":{"type":"record","name":"Owner","fields":[{"name":"email","type":"string"}]}}"#,
    );
    let new = record(
        r#"{"name":"owner","type":{"type":"record","name":"Owner","fields":[{"name":"email","type":"int"}]}}"#,
    );
    let e = bad(&old, &new);
    assert_eq!(e.path, "owner.email");
    assert_eq!(e.kind, IncompatibilityKind::TypeMismatch);
    assert_eq!(
        e.message,
        "type changed from string (writer) to int (reader)"
    );
    assert_eq!(
        e.to_string(),
        "at `owner.email`: type changed from string (writer) to int (reader)"
    );
}

#[test]
fn other_primitives_do_not_promote() {
    for (w, r) in [
        ("boolean", "int"),
        ("int", "boolean"),
        ("null", "string"),
        ("string", "null"),
        ("long", "int"),
        ("double", "float"),
        ("int", "string"),
        ("float", "long"),
    ] {
        let e = bad(&parse(&format!(r#""{w}""#)), &parse(&format!(r#""{r}""#)));
        assert_eq!(e.kind, IncompatibilityKind::TypeMismatch, "{w} -> {r}");
    }
}

fn suit(symbols: &str, default: Option<&str>) -> Schema {
    let default = default
        .map(|d| format!(r#","default":"{d}""#))
        .unwrap_or_default();
    parse(&format!(
        r#"{{"type":"enum","name":"Suit","symbols":[{symbols}]{default}}}"#
    ))
}

#[test]
fn enum_reader_must_know_every_writer_symbol() {
    let small = suit(r#""SPADES","HEARTS""#, None);
    let big = suit(r#""SPADES","HEARTS","CLUBS""#, None);
    ok(&small, &big);
    let e = bad(&big, &small);
    assert_eq!(e.kind, IncompatibilityKind::MissingEnumSymbols);
    assert!(e.message.contains("[CLUBS]"), "{}", e.message);
}

#[test]
fn enum_reader_default_absorbs_unknown_symbols() {
    let big = suit(r#""SPADES","HEARTS","CLUBS""#, None);
    let small_with_default = suit(r#""SPADES","HEARTS""#, Some("SPADES"));
    ok(&big, &small_with_default);
    // A default only helps the reader that has it.
    let small = suit(r#""SPADES","HEARTS""#, None);
    let big_with_default = suit(r#""SPADES","HEARTS","CLUBS""#, Some("SPADES"));
    bad(&big_with_default, &small);
}

#[test]
fn enum_symbol_order_does_not_matter() {
    ok(
        &suit(r#""SPADES","HEARTS""#, None),
        &suit(r#""HEARTS","SPADES""#, None),
    );
}

#[test]
fn enum_renamed_needs_an_alias() {
    let old = suit(r#""A""#, None);
    let new = parse(r#"{"type":"enum","name":"Colour","symbols":["A"]}"#);
    assert_eq!(bad(&old, &new).kind, IncompatibilityKind::NameMismatch);
    let aliased = parse(r#"{"type":"enum","name":"Colour","aliases":["Suit"],"symbols":["A"]}"#);
    ok(&old, &aliased);
}

#[test]
fn union_writer_branches_must_all_be_readable() {
    let wide = parse(r#"["null","string","int"]"#);
    let narrow = parse(r#"["null","string"]"#);
    ok(&narrow, &wide);
    let e = bad(&wide, &narrow);
    assert_eq!(e.kind, IncompatibilityKind::MissingUnionBranch);
    assert!(e.message.contains("int"), "{}", e.message);
}

#[test]
fn union_branch_may_be_read_through_promotion() {
    ok(&parse(r#"["null","int"]"#), &parse(r#"["null","long"]"#));
    bad(&parse(r#"["null","long"]"#), &parse(r#"["null","int"]"#));
}

#[test]
fn plain_type_to_union_and_back() {
    let plain = parse(r#""string""#);
    let optional = parse(r#"["null","string"]"#);
    ok(&plain, &optional); // making a field optional is backward compatible
    let e = bad(&optional, &plain); // a reader without null cannot read a null
    assert_eq!(e.kind, IncompatibilityKind::TypeMismatch);
    ok(&parse(r#"["string"]"#), &plain); // single-branch union reads as its branch
    bad(&parse(r#""int""#), &parse(r#"["null","string"]"#));
}

#[test]
fn union_of_records_explains_through_the_matching_branch() {
    let writer = record(r#"{"name":"id","type":"long"}"#);
    let reader = parse(
        r#"["null",{"type":"record","name":"User","namespace":"weft.test","fields":[
            {"name":"id","type":"long"},{"name":"email","type":"string"}]}]"#,
    );
    let e = bad(&writer, &reader);
    assert_eq!(e.kind, IncompatibilityKind::ReaderFieldMissingDefaultValue);
    assert_eq!(e.path, "email");
}

#[test]
fn field_aliases_let_a_renamed_field_read_old_data() {
    let old = record(r#"{"name":"mail","type":"string"}"#);
    let renamed = record(r#"{"name":"email","type":"string"}"#);
    bad(&old, &renamed);
    let aliased = record(r#"{"name":"email","aliases":["mail"],"type":"string"}"#);
    ok(&old, &aliased);
    // The alias lives in the reader only: old readers cannot find the renamed field.
    bad(&aliased, &old);
}

#[test]
fn field_alias_type_must_still_resolve() {
    let old = record(r#"{"name":"mail","type":"int"}"#);
    let aliased = record(r#"{"name":"email","aliases":["mail"],"type":"string"}"#);
    let e = bad(&old, &aliased);
    assert_eq!(e.path, "email");
    assert_eq!(e.kind, IncompatibilityKind::TypeMismatch);
}

#[test]
fn record_rename_needs_an_alias_with_the_writer_full_name() {
    let old = parse(r#"{"type":"record","name":"User","namespace":"a","fields":[]}"#);
    let renamed = parse(r#"{"type":"record","name":"Person","namespace":"a","fields":[]}"#);
    let e = bad(&old, &renamed);
    assert_eq!(e.kind, IncompatibilityKind::NameMismatch);
    let aliased = parse(
        r#"{"type":"record","name":"Person","namespace":"a","aliases":["User"],"fields":[]}"#,
    );
    ok(&old, &aliased); // unqualified alias takes the reader's namespace: a.User
    let qualified = parse(
        r#"{"type":"record","name":"Person","namespace":"b","aliases":["a.User"],"fields":[]}"#,
    );
    ok(&old, &qualified);
    let wrong_ns = parse(
        r#"{"type":"record","name":"Person","namespace":"b","aliases":["User"],"fields":[]}"#,
    );
    bad(&old, &wrong_ns);
}

#[test]
fn namespaces_alone_do_not_matter_as_in_java() {
    let a = parse(r#"{"type":"record","name":"User","namespace":"a","fields":[]}"#);
    let b = parse(r#"{"type":"record","name":"User","namespace":"b","fields":[]}"#);
    ok(&a, &b);
    let fa = parse(r#"{"type":"fixed","name":"Id","namespace":"a","size":4}"#);
    let fb = parse(r#"{"type":"fixed","name":"Id","namespace":"b","size":4}"#);
    ok(&fa, &fb);
}

#[test]
fn fixed_sizes_and_names_must_match() {
    let f16 = parse(r#"{"type":"fixed","name":"Md5","size":16}"#);
    let f20 = parse(r#"{"type":"fixed","name":"Md5","size":20}"#);
    ok(&f16, &f16);
    let e = bad(&f16, &f20);
    assert_eq!(e.kind, IncompatibilityKind::FixedSizeMismatch);
    assert_eq!(
        e.message,
        "fixed size changed from 16 (writer) to 20 (reader)"
    );
    let other = parse(r#"{"type":"fixed","name":"Sha","size":16}"#);
    assert_eq!(bad(&f16, &other).kind, IncompatibilityKind::NameMismatch);
    bad(&f16, &parse(r#""bytes""#));
    bad(&parse(r#""bytes""#), &f16);
}

#[test]
fn arrays_and_maps_check_their_contents() {
    let ints = parse(r#"{"type":"array","items":"int"}"#);
    let longs = parse(r#"{"type":"array","items":"long"}"#);
    ok(&ints, &longs);
    let e = bad(&longs, &ints);
    assert_eq!(e.path, "[]");
    let map_ints = parse(r#"{"type":"map","values":"int"}"#);
    let map_strings = parse(r#"{"type":"map","values":"string"}"#);
    let e = bad(&map_ints, &map_strings);
    assert_eq!(e.path, "{}");
    bad(&ints, &map_ints);
    let nested_old = record(r#"{"name":"tags","type":{"type":"map","values":"int"}}"#);
    let nested_new = record(r#"{"name":"tags","type":{"type":"map","values":"string"}}"#);
    assert_eq!(bad(&nested_old, &nested_new).path, "tags{}");
}

#[test]
fn nested_records_report_the_full_path() {
    let item = |extra: &str| {
        record(&format!(
            r#"{{"name":"items","type":{{"type":"array","items":{{"type":"record","name":"Item","fields":[{{"name":"sku","type":"string"}}{extra}]}}}}}}"#
        ))
    };
    let old = item("");
    let new = item(r#",{"name":"qty","type":"int"}"#);
    let e = bad(&old, &new);
    assert_eq!(e.path, "items[].qty");
    ok(&new, &old);
}

#[test]
fn named_type_references_are_followed() {
    let writer = parse(
        r#"{"type":"record","name":"Pair","fields":[
            {"name":"a","type":{"type":"fixed","name":"Id","size":4}},
            {"name":"b","type":"Id"}]}"#,
    );
    let reader = parse(
        r#"{"type":"record","name":"Pair","fields":[
            {"name":"a","type":{"type":"fixed","name":"Id","size":4}},
            {"name":"b","type":{"type":"fixed","name":"Other","size":4}}]}"#,
    );
    ok(&writer, &writer);
    let e = bad(&writer, &reader);
    assert_eq!(e.path, "b");
    assert_eq!(e.kind, IncompatibilityKind::NameMismatch);
}

#[test]
fn recursive_records_terminate() {
    let list = |extra: &str| {
        parse(&format!(
            r#"{{"type":"record","name":"Node","fields":[{{"name":"value","type":"long"}},{{"name":"next","type":["null","Node"]}}{extra}]}}"#
        ))
    };
    ok(&list(""), &list(""));
    ok(
        &list(""),
        &list(r#",{"name":"label","type":"string","default":""}"#),
    );
    let e = bad(&list(""), &list(r#",{"name":"label","type":"string"}"#));
    assert_eq!(e.path, "label");
}

#[test]
fn logical_types_resolve_on_their_underlying_type() {
    ok(
        &parse(r#"{"type":"int","logicalType":"date"}"#),
        &parse(r#""int""#),
    );
    ok(
        &parse(r#"{"type":"long","logicalType":"timestamp-millis"}"#),
        &parse(r#"{"type":"long","logicalType":"timestamp-micros"}"#),
    );
    ok(
        &parse(r#"{"type":"string","logicalType":"uuid"}"#),
        &parse(r#""string""#),
    );
    ok(
        &parse(r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#),
        &parse(r#""bytes""#),
    );
    bad(
        &parse(r#"{"type":"long","logicalType":"timestamp-millis"}"#),
        &parse(r#"{"type":"int","logicalType":"date"}"#),
    );
}

#[test]
fn all_problems_are_collected() {
    let old = record(r#"{"name":"a","type":"string"},{"name":"b","type":"long"}"#);
    let new =
        record(r#"{"name":"a","type":"int"},{"name":"b","type":"int"},{"name":"c","type":"int"}"#);
    let found = incompatibilities(&old, &new);
    let paths: Vec<&str> = found.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(paths, ["a", "b", "c"]);
}

// ---- levels ----

fn v1() -> Schema {
    record(r#"{"name":"id","type":"long"}"#)
}
/// Adds a field with a default: compatible every way.
fn v2_default() -> Schema {
    record(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""}"#)
}
/// Adds a field without a default: forward only (old readers skip it, new readers need it).
fn v2_required() -> Schema {
    record(r#"{"name":"id","type":"long"},{"name":"email","type":"string"}"#)
}
/// Drops `id` (no default in v1): backward only.
fn v_dropped() -> Schema {
    record(r#"{"name":"email","type":"string","default":""}"#)
}

fn level(name: &str) -> CompatibilityLevel {
    name.parse().expect("valid level")
}

#[test]
fn levels_parse_case_insensitively_and_display_upper_case() {
    for l in CompatibilityLevel::ALL {
        assert_eq!(
            l.as_str().to_lowercase().parse::<CompatibilityLevel>(),
            Ok(l)
        );
        assert_eq!(l.to_string(), l.as_str());
    }
    assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
}

#[test]
fn none_accepts_anything() {
    let unrelated = parse(r#""string""#);
    assert!(check_level(level("NONE"), &unrelated, &[v1()]).is_ok());
}

#[test]
fn no_previous_versions_is_always_compatible() {
    for l in CompatibilityLevel::ALL {
        assert!(check_level(l, &v1(), &[]).is_ok());
    }
}

#[test]
fn backward_lets_new_readers_read_old_data() {
    assert!(check_level(level("BACKWARD"), &v2_default(), &[v1()]).is_ok());
    assert!(check_level(level("BACKWARD"), &v_dropped(), &[v2_default()]).is_ok());
    let errs = check_level(level("BACKWARD"), &v2_required(), &[v1()]).expect_err("no default");
    assert_eq!(errs[0].path, "email");
    assert_eq!(errs[0].against, Some((0, Direction::NewReadsOld)));
}

#[test]
fn forward_lets_old_readers_read_new_data() {
    assert!(check_level(level("FORWARD"), &v2_required(), &[v1()]).is_ok());
    let errs = check_level(level("FORWARD"), &v_dropped(), &[v2_default()]).expect_err("id gone");
    assert_eq!(errs[0].path, "id");
    assert_eq!(errs[0].against, Some((0, Direction::OldReadsNew)));
}

#[test]
fn full_needs_both_directions() {
    assert!(check_level(level("FULL"), &v2_default(), &[v1()]).is_ok());
    assert!(check_level(level("FULL"), &v2_required(), &[v1()]).is_err());
    assert!(check_level(level("FULL"), &v_dropped(), &[v2_default()]).is_err());
}

#[test]
fn non_transitive_levels_only_look_at_the_latest() {
    // A type that widens then narrows: only the latest version decides a non-transitive check.
    let int_id = record(r#"{"name":"id","type":"int"}"#);
    let long_id = record(r#"{"name":"id","type":"long"}"#);
    let history = [long_id.clone(), int_id.clone()];
    // New schema long_id vs latest int_id: backward ok (int promotes to long).
    assert!(check_level(level("BACKWARD"), &long_id, &history[1..]).is_ok());
    // Forward against the latest only: int reader cannot read long data.
    assert!(check_level(level("FORWARD"), &long_id, &history).is_err());
    // Forward against the latest (long) only passes; transitive sees the int version too.
    let history = [int_id.clone(), long_id.clone()];
    assert!(check_level(level("FORWARD"), &long_id, &history).is_ok());
    let errs = check_level(level("FORWARD_TRANSITIVE"), &long_id, &history).expect_err("v1");
    assert_eq!(errs[0].against, Some((0, Direction::OldReadsNew)));
}

#[test]
fn backward_transitive_checks_every_earlier_version() {
    let a = record(r#"{"name":"id","type":"long"}"#);
    let b = record(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""}"#);
    // c drops the default: it can read b data (email present) but not a data.
    let c = record(r#"{"name":"id","type":"long"},{"name":"email","type":"string"}"#);
    let history = [a, b];
    assert!(check_level(level("BACKWARD"), &c, &history).is_ok());
    let errs = check_level(level("BACKWARD_TRANSITIVE"), &c, &history).expect_err("a lacks email");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].against, Some((0, Direction::NewReadsOld)));
    assert_eq!(errs[0].path, "email");
}

#[test]
fn full_transitive_checks_both_ways_against_all() {
    let a = record(r#"{"name":"id","type":"long"}"#);
    let b = record(r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""}"#);
    let c = record(
        r#"{"name":"id","type":"long"},{"name":"email","type":"string","default":""},{"name":"n","type":"int","default":0}"#,
    );
    assert!(check_level(level("FULL_TRANSITIVE"), &c, &[a.clone(), b.clone()]).is_ok());
    let d = record(r#"{"name":"email","type":"string","default":""}"#);
    // d drops `id`: readable by nobody who needs id (a, b, c have no default for it).
    let errs = check_level(level("FULL_TRANSITIVE"), &d, &[a, b, c]).expect_err("id");
    assert_eq!(errs.len(), 3);
    assert!(
        errs.iter()
            .all(|e| e.against.map(|a| a.1) == Some(Direction::OldReadsNew))
    );
    assert!(
        errs[0]
            .to_string()
            .contains("earlier schema reading data written with the new")
    );
}

// ---- more shapes ----

#[test]
fn union_branch_order_does_not_matter() {
    ok(&parse(r#"["int","string"]"#), &parse(r#"["string","int"]"#));
}

#[test]
fn arrays_of_unions_promote_inside() {
    let narrow = parse(r#"{"type":"array","items":["null","int"]}"#);
    let wide = parse(r#"{"type":"array","items":["null","long"]}"#);
    ok(&narrow, &wide);
    let e = bad(&wide, &narrow);
    assert_eq!(e.path, "[]");
    assert_eq!(e.kind, IncompatibilityKind::MissingUnionBranch);
}

#[test]
fn maps_of_records_report_the_field_inside() {
    let old = record(
        r#"{"name":"attrs","type":{"type":"map","values":{"type":"record","name":"A","fields":[{"name":"v","type":"int"}]}}}"#,
    );
    let new = record(
        r#"{"name":"attrs","type":{"type":"map","values":{"type":"record","name":"A","fields":[{"name":"v","type":"int"},{"name":"w","type":"int"}]}}}"#,
    );
    assert_eq!(bad(&old, &new).path, "attrs{}.w");
}

#[test]
fn structural_type_changes_are_mismatches() {
    let e = bad(
        &record(r#"{"name":"x","type":{"type":"array","items":"int"}}"#),
        &record(r#"{"name":"x","type":{"type":"map","values":"int"}}"#),
    );
    assert_eq!(
        e.message,
        "type changed from array (writer) to map (reader)"
    );
    let e = bad(
        &parse(r#"{"type":"record","name":"R","fields":[]}"#),
        &parse(r#"{"type":"enum","name":"R","symbols":["A"]}"#),
    );
    assert_eq!(e.kind, IncompatibilityKind::TypeMismatch);
}

#[test]
fn enum_inside_a_union_uses_the_reader_default() {
    let writer = parse(r#"["null",{"type":"enum","name":"Suit","symbols":["A","B","C"]}]"#);
    let reader =
        parse(r#"["null",{"type":"enum","name":"Suit","symbols":["A","B"],"default":"A"}]"#);
    ok(&writer, &reader);
    let strict = parse(r#"["null",{"type":"enum","name":"Suit","symbols":["A","B"]}]"#);
    assert_eq!(
        bad(&writer, &strict).kind,
        IncompatibilityKind::MissingEnumSymbols
    );
}

#[test]
fn fixed_renamed_needs_an_alias() {
    let old = parse(r#"{"type":"fixed","name":"Md5","namespace":"h","size":16}"#);
    let new = parse(r#"{"type":"fixed","name":"Digest","namespace":"h","size":16}"#);
    bad(&old, &new);
    let aliased =
        parse(r#"{"type":"fixed","name":"Digest","namespace":"h","aliases":["Md5"],"size":16}"#);
    ok(&old, &aliased);
}

#[test]
fn field_name_wins_over_alias() {
    let writer = record(r#"{"name":"email","type":"string"},{"name":"mail","type":"int"}"#);
    let reader = record(r#"{"name":"email","aliases":["mail"],"type":"string"}"#);
    ok(&writer, &reader);
}

#[test]
fn decimal_on_bytes_and_fixed_do_not_mix() {
    let on_bytes = parse(r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}"#);
    let on_fixed = parse(
        r#"{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":4,"scale":2}"#,
    );
    bad(&on_bytes, &on_fixed);
    bad(&on_fixed, &on_bytes);
}

#[test]
fn enum_symbol_added_is_backward_but_not_forward_or_full() {
    let old = record(r#"{"name":"s","type":{"type":"enum","name":"S","symbols":["A"]}}"#);
    let new = record(r#"{"name":"s","type":{"type":"enum","name":"S","symbols":["A","B"]}}"#);
    let prev = [old.clone()];
    assert!(check_level(level("BACKWARD"), &new, &prev).is_ok());
    assert!(check_level(level("FORWARD"), &new, &prev).is_err());
    assert!(check_level(level("FULL"), &new, &prev).is_err());
    // With a default symbol in the old reader, forward holds too.
    let old_default =
        record(r#"{"name":"s","type":{"type":"enum","name":"S","symbols":["A"],"default":"A"}}"#);
    assert!(check_level(level("FULL"), &new, &[old_default]).is_ok());
}

#[test]
fn forward_transitive_accepts_a_series_of_additive_changes() {
    let a = record(r#"{"name":"id","type":"long"}"#);
    let b = record(r#"{"name":"id","type":"long"},{"name":"x","type":"int"}"#);
    let c = record(
        r#"{"name":"id","type":"long"},{"name":"x","type":"int"},{"name":"y","type":"int"}"#,
    );
    assert!(check_level(level("FORWARD_TRANSITIVE"), &c, &[a.clone(), b.clone()]).is_ok());
    // But not backward: c needs x and y, which a never wrote.
    let errs = check_level(level("BACKWARD_TRANSITIVE"), &c, &[a, b]).expect_err("needs defaults");
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["y", "x", "y"]);
}
