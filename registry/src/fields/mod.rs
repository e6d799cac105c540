//! Field-level lineage: which stages of which pipelines read a field of a subject's schema,
//! directly or downstream (through the fields a pipeline passes to its sink topics), and the
//! guard built on it — what a candidate schema would break in the pipelines that read it.
//!
//! `changes` compares two schemas field by field; `walk` follows the lineage graph. Both are
//! pure: the routes and the store hand them pipelines and schemas.

mod changes;
mod walk;

pub use changes::{Change, changes, valid_path};
pub use walk::{Hit, MAX_HITS, MAX_VIA, MAX_VISITS, Walk, guard_messages, walk};

/// Whether a stage reading `read` depends on the field at `path`: the same field, a field
/// inside it, or the record holding it. The root path `""` (the whole schema) is in all.
pub fn overlaps(read: &str, path: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        outer.is_empty()
            || inner == outer
            || (inner.len() > outer.len()
                && inner.starts_with(outer)
                && inner.as_bytes()[outer.len()] == b'.')
    };
    under(read, path) || under(path, read)
}

/// The top-level field a dotted path starts with, which is what `passes` lists.
pub fn top(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_overlaps_its_field_its_parts_and_its_record_only() {
        assert!(overlaps("year", "year"));
        assert!(overlaps("owner.email", "owner"));
        assert!(overlaps("owner", "owner.email"));
        assert!(overlaps("anything", ""));
        assert!(!overlaps("years", "year"));
        assert!(!overlaps("owner.email", "owner.name"));
        assert!(!overlaps("ownerx.email", "owner"));
        assert_eq!(top("owner.email"), "owner");
        assert_eq!(top("year"), "year");
    }
}
