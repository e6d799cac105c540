//! Title slugs: lower-case ASCII words joined by `-`.

/// `"Amélie: Le Fabuleux Destin!"` → `"amelie-le-fabuleux-destin"`. Common Latin accents
/// are folded to ASCII; any other character separates words.
pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    let mut pending_dash = false;
    for c in title.chars().flat_map(char::to_lowercase) {
        let folded = fold(c);
        if folded.is_empty() {
            pending_dash = !slug.is_empty();
            continue;
        }
        if pending_dash {
            slug.push('-');
            pending_dash = false;
        }
        slug.push_str(folded);
    }
    slug
}

/// `c` (lower case) as ASCII letters or digits; empty for a separator.
fn fold(c: char) -> &'static str {
    const ASCII: &str = "0123456789abcdefghijklmnopqrstuvwxyz";
    if let Some(i) = ASCII.find(c) {
        return &ASCII[i..i + 1];
    }
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
        'æ' => "ae",
        'ç' | 'č' | 'ć' => "c",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ß' => "ss",
        'š' | 'ś' => "s",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' => "u",
        'ý' | 'ÿ' => "y",
        'ž' | 'ź' | 'ż' => "z",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_fold_accents_and_collapse_separators() {
        assert_eq!(
            slugify("Amélie: Le Fabuleux Destin!"),
            "amelie-le-fabuleux-destin"
        );
        assert_eq!(slugify("  2001: A Space Odyssey  "), "2001-a-space-odyssey");
        assert_eq!(slugify("Straße -- Œuvre"), "strasse-oeuvre");
        assert_eq!(slugify("東京物語"), "");
        assert_eq!(slugify("Tokyo 東京 Story"), "tokyo-story");
    }
}
