//! The frame every catalog page shares (navigation, search box), the embedded assets, link
//! building, and errors as HTML pages.
//!
//! Every value lands in the page through maud's `(expr)`, which escapes it: schema docs, field
//! names, subject names and plugin descriptions are user input. Paths built from names are
//! percent-encoded by [`seg`]. The Content-Security-Policy forbids inline and foreign scripts,
//! so even a value that slipped through could not run.

use axum::extract::{FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

const CSS: &str = include_str!("../../assets/catalog.css");
const JS: &str = include_str!("../../assets/catalog.js");
const ICON: &str = include_str!("../../assets/icon.svg");

/// The site's sections, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Plugins,
    Subjects,
    Pipelines,
    Lineage,
    Create,
}

/// A whole page: title, the section it belongs to, its body.
pub fn page(title: &str, section: Section, body: Markup) -> Markup {
    let nav = [
        (Section::Plugins, "/ui/plugins", "Plugins"),
        (Section::Subjects, "/ui/subjects", "Subjects"),
        (Section::Pipelines, "/ui/pipelines", "Pipelines"),
        (Section::Lineage, "/ui/lineage", "Lineage"),
        (Section::Create, "/ui/create", "New pipeline"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · weft catalog" }
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/ui/assets/catalog.css";
                script src="/ui/assets/catalog.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "weft catalog" }
                    nav {
                        @for (s, href, label) in nav {
                            a href=(href) class=[(s == section).then_some("current")] { (label) }
                        }
                    }
                    form.search action="/ui/subjects" method="get" {
                        input type="search" name="q" placeholder="Find a field, record or topic…" aria-label="search schemas";
                    }
                    a #token-link href="/ui/token" { "token" }
                }
                main { (body) }
            }
        }
    }
}

/// A path segment, percent-encoded (names may hold `?`, `#`, `%`, spaces, `<`).
pub fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub fn plugin_href(name: &str) -> String {
    format!("/ui/plugins/{}", seg(name))
}

pub fn plugin_version_href(name: &str, version: &str) -> String {
    format!("/ui/plugins/{}/{}", seg(name), seg(version))
}

pub fn subject_href(subject: &str) -> String {
    format!("/ui/subjects/{}", seg(subject))
}

pub fn pipeline_href(name: &str) -> String {
    format!("/ui/pipelines/{}", seg(name))
}

/// The catalog's CSS, JS and icon, compiled into the binary: the UI works offline.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "catalog.css" => (CSS, "text/css; charset=utf-8"),
        "catalog.js" => (JS, "text/javascript; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return not_found(&format!("no asset {file}")),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Headers on every catalog response: no inline or foreign script or style, no framing,
/// no content sniffing, no referrer leaving the registry.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `?q=`, the search box of the plugins, subjects and pipelines lists.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub q: String,
}

impl SearchQuery {
    /// What to look for: the text without surrounding blanks, lower-cased (matching ignores case).
    pub fn needle(&self) -> String {
        self.q.trim().to_lowercase()
    }
}

/// A query string read as `T`, refused with an error page (not axum's plain text).
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|e| error_page(StatusCode::BAD_REQUEST, &e.body_text()))
    }
}

/// A failure shown as a page, with the API's status and message.
#[derive(Debug)]
pub struct UiError(pub ApiError);

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

pub type UiResult<T = Markup> = Result<T, UiError>;

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, code) = self.0.codes();
        let message = match &self.0 {
            ApiError::Store(detail) | ApiError::Internal(detail) => {
                tracing::error!(error_code = code, "catalog: {detail}");
                "internal error (logged by the registry)".to_string()
            }
            e => e.to_string(),
        };
        error_page(status, &message)
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let body = page(
        status.canonical_reason().unwrap_or("error"),
        Section::Home,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.error #page-error { (message) }
            p { a href="/ui" { "Back to the catalog" } }
        },
    );
    (status, body).into_response()
}

pub fn not_found(message: &str) -> Response {
    error_page(StatusCode::NOT_FOUND, message)
}

/// A byte count as people read it.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A note that a list was cut at `shown` of `total`.
pub fn cut_note(shown: usize, total: usize, hint: &str) -> Markup {
    html! {
        @if total > shown {
            p.note { "Showing " (shown) " of " (total) ". " (hint) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("orders-value"), "orders-value");
        assert_eq!(seg("a b/<c>?#%"), "a%20b%2F%3Cc%3E%3F%23%25");
        assert_eq!(seg("mask@1.0.0"), "mask@1.0.0");
        assert_eq!(seg("é"), "%C3%A9");
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 + 1024 * 512), "3.5 MiB");
    }
}
