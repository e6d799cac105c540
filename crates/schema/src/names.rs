//! The Avro specification's name rules, checked before apache-avro sees a schema: the
//! library panics on some invalid names (a bad alias, a bad record name) instead of
//! returning an error, so a name it would choke on must never reach it.

use std::fmt;

/// What a name names; decides whether dots are allowed and says so in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `name` of a record, enum or fixed: a full name, dots allowed.
    TypeName,
    /// `namespace` of a named type: dotted, or empty for the null namespace.
    Namespace,
    /// An entry of a named type's `aliases`: a full name, dots allowed.
    TypeAlias,
    /// A reference to a named type (`"type": "com.acme.Node"`): a full name.
    TypeReference,
    /// `name` of a record field: one component, no dots.
    FieldName,
    /// An entry of a record field's `aliases`: one component.
    FieldAlias,
    /// An enum symbol (and an enum's `default`): one component.
    EnumSymbol,
}

impl NameKind {
    /// Whether the name may be several components separated by dots.
    fn dotted(self) -> bool {
        matches!(
            self,
            NameKind::TypeName
                | NameKind::Namespace
                | NameKind::TypeAlias
                | NameKind::TypeReference
        )
    }

    /// The rule in words, for the error message.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Namespace => {
                "must be empty or dot-separated parts each matching [A-Za-z_][A-Za-z0-9_]*"
            }
            kind if kind.dotted() => {
                "must be dot-separated parts each matching [A-Za-z_][A-Za-z0-9_]*"
            }
            _ => "must match [A-Za-z_][A-Za-z0-9_]*",
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::TypeName => "type name",
            NameKind::Namespace => "namespace",
            NameKind::TypeAlias => "type alias",
            NameKind::TypeReference => "type reference",
            NameKind::FieldName => "field name",
            NameKind::FieldAlias => "field alias",
            NameKind::EnumSymbol => "enum symbol",
        })
    }
}

/// Whether `name` is valid as a `kind` under the Avro specification.
pub fn is_valid(kind: NameKind, name: &str) -> bool {
    if kind == NameKind::Namespace && name.is_empty() {
        return true;
    }
    if kind.dotted() {
        name.split('.').all(is_component)
    } else {
        is_component(name)
    }
}

/// One name component: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_component(part: &str) -> bool {
    let mut chars = part.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Echoes a name from a request in an error message: control characters (NUL, newlines)
/// escaped so a log line cannot be forged, and cut at 80 characters.
pub fn printable(name: &str) -> String {
    let mut out: String = name.chars().take(80).flat_map(char::escape_debug).collect();
    if name.chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_follow_the_specification() {
        for name in ["a", "_", "User", "user_2", "_x9"] {
            for kind in [
                NameKind::FieldName,
                NameKind::EnumSymbol,
                NameKind::TypeName,
            ] {
                assert!(is_valid(kind, name), "{kind} {name}");
            }
        }
        assert!(is_valid(NameKind::TypeName, "com.acme.User"));
        assert!(is_valid(NameKind::TypeAlias, "com.acme.OldUser"));
        assert!(is_valid(NameKind::Namespace, "com.acme"));
        assert!(is_valid(NameKind::Namespace, ""));
    }

    #[test]
    fn invalid_names_are_refused() {
        let bad = [
            "",
            "a-b",
            "1a",
            "../../etc",
            "naïve",
            "a\0b",
            "a b",
            ".a",
            "a.",
            "a..b",
            "ä",
        ];
        for name in bad {
            assert!(!is_valid(NameKind::TypeName, name), "{name:?}");
            assert!(!is_valid(NameKind::FieldName, name), "{name:?}");
        }
        assert!(!is_valid(NameKind::FieldName, "a.b"));
        assert!(!is_valid(NameKind::EnumSymbol, "A.B"));
        assert!(!is_valid(NameKind::Namespace, "com..acme"));
    }

    #[test]
    fn printable_escapes_control_characters_and_cuts() {
        assert_eq!(printable("a\0b\nc"), "a\\0b\\nc");
        assert_eq!(printable(&"x".repeat(100)).chars().count(), 81);
    }
}
