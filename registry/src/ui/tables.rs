//! Schemas rendered as field tables and diffs, shared by the plugin and subject pages.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::fields::{Change, Field, MAX_DEPTH, MAX_FIELDS, Outline, outline};

/// Who reads a field: links (`href`, label) per field path.
pub type Readers = BTreeMap<String, Vec<(String, String)>>;

/// A schema text as a table of its fields (or a note when it is not a record).
pub fn schema_table(text: &str, readers: Option<&Readers>) -> Markup {
    match outline(text) {
        Ok(o) => outline_table(&o, readers),
        Err(e) => html! { p.error { "unreadable schema: " (e) } },
    }
}

pub fn outline_table(o: &Outline, readers: Option<&Readers>) -> Markup {
    html! {
        p.schema-name { "Type " code { (o.name) } @if !o.doc.is_empty() { " — " span.doc { (o.doc) } } }
        @if o.fields.is_empty() {
            p.note { "Not a record: no fields." }
        } @else {
            table.fields {
                thead { tr {
                    th { "Field" } th { "Type" } th { "Default" } th { "Doc" }
                    @if readers.is_some() { th { "Read by" } }
                } }
                tbody {
                    @for f in &o.fields {
                        tr data-field=(f.path) {
                            td { code { (f.path) } }
                            td { code { (f.type_name) } }
                            td { @if let Some(d) = &f.default { code { (d) } } }
                            td.doc { (f.doc) }
                            @if let Some(readers) = readers {
                                td {
                                    @for (href, label) in readers.get(&f.path).into_iter().flatten() {
                                        a.chip href=(href) { (label) } " "
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if o.truncated {
            p.note { "Only the first " (MAX_FIELDS) " fields, " (MAX_DEPTH) " levels deep, are listed." }
        }
    }
}

/// A field-level diff as a table: added, removed and changed rows marked.
pub fn diff_table(changes: &[Change]) -> Markup {
    let counts = |pred: fn(&Change) -> bool| changes.iter().filter(|c| pred(c)).count();
    let added = counts(|c| matches!(c, Change::Added(_)));
    let removed = counts(|c| matches!(c, Change::Removed(_)));
    let changed = counts(|c| matches!(c, Change::Changed { .. }));
    html! {
        p #diff-summary { (added) " added, " (removed) " removed, " (changed) " changed" }
        table.fields.diff {
            thead { tr { th {} th { "Field" } th { "Type" } th { "Default" } th { "Doc" } } }
            tbody {
                @for c in changes {
                    @match c {
                        Change::Added(f) => (diff_row("added", "+", f, None)),
                        Change::Removed(f) => (diff_row("removed", "−", f, None)),
                        Change::Changed { old, new, .. } => (diff_row("changed", "~", new, Some(old))),
                        Change::Same(f) => (diff_row("same", "", f, None)),
                    }
                }
            }
        }
    }
}

fn diff_row(class: &str, mark: &str, f: &Field, old: Option<&Field>) -> Markup {
    let cell = |new: String, old: Option<String>| {
        html! {
            @match old {
                Some(o) if o != new => { del { (o) } " " ins { (new) } }
                _ => (new),
            }
        }
    };
    let default = |f: &Field| f.default.clone().unwrap_or_default();
    html! {
        tr class=(class) data-field=(f.path) {
            td.mark { (mark) }
            td { code { (f.path) } }
            td { code { (cell(f.type_name.clone(), old.map(|o| o.type_name.clone()))) } }
            td { code { (cell(default(f), old.map(default))) } }
            td.doc { (cell(f.doc.clone(), old.map(|o| o.doc.clone()))) }
        }
    }
}
