//! Who may read the catalog: exactly who may read the API (`auth_reads`).
//!
//! A browser following a link sends no `Authorization` header, so the catalog also takes the
//! token from a session cookie (one per port), which `catalog.js` sets from the token asked once (and kept in
//! sessionStorage) on `/ui/token`. The cookie only opens catalog reads: every write goes
//! through the API with the bearer header, so a forged cross-site request carries nothing
//! that writes (and `SameSite=Strict` keeps the cookie off foreign requests anyway).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::{Section, error_page, page, seg};
use crate::auth::{presented_token, token_matches};
use crate::state::AppState;

/// The cookie `catalog.js` sets: the token, percent-encoded, under a name holding the port
/// (`weft_token_8081`, `weft_token_default`): browsers send a host's cookies to every port,
/// and one registry's token must not travel to another service on the same host.
fn cookie_name(headers: &HeaderMap) -> String {
    let port = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|host| host.rsplit_once(':'))
        .map(|(_, port)| port)
        .filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("default");
    format!("weft_token_{port}")
}

/// Middleware over the catalog's data pages: with `auth_reads`, a valid token (header or
/// cookie) or a redirect to the token page.
pub async fn require_read(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.settings.auth_reads {
        return next.run(req).await;
    }
    if state.settings.tokens.is_empty() {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "reads need a token but the registry was started without any",
        );
    }
    let presented = presented(req.headers());
    if presented.is_some_and(|t| token_matches(&t, &state.settings.tokens)) {
        return next.run(req).await;
    }
    let back = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/ui".into());
    Redirect::to(&format!("/ui/token?next={}", seg(&back))).into_response()
}

/// The token of a request: `Authorization`, else the catalog's cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(presented_token)
    {
        return Some(token);
    }
    let name = cookie_name(headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .and_then(|(_, value)| percent_decode(value))
}

/// `%XX` decoding of a cookie value (`encodeURIComponent`'s output); `None` if malformed.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The page asking for the token once; `catalog.js` keeps it for the browser session.
pub async fn token_page(State(state): State<AppState>) -> Response {
    let body = html! {
        h1 { "Registry token" }
        p {
            "Writes (registering a pipeline) need one of the registry's bearer tokens"
            @if state.settings.auth_reads { ", and so do reads on this registry" }
            ". It is kept in this tab's session storage and sent only to this registry."
        }
        form #token-form {
            label for="token-input" { "Token" }
            input #token-input type="password" autocomplete="off" required;
            button type="submit" { "Keep for this session" }
            button #token-forget type="button" { "Forget" }
        }
        p #token-status.note {}
    };
    page("Token", Section::Home, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_cookie_or_the_header_presents_the_token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; weft_token_default=s%20e%3Bcret; weft_token_81=x"),
        );
        assert_eq!(presented(&headers).as_deref(), Some("s e;cret"));
        // Another port's cookie is another registry's.
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:81"));
        assert_eq!(presented(&headers).as_deref(), Some("x"));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:82"));
        assert_eq!(presented(&headers), None);
        headers.insert(header::HOST, HeaderValue::from_static("[::1]"));
        assert_eq!(cookie_name(&headers), "weft_token_default");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer h"));
        assert_eq!(presented(&headers).as_deref(), Some("h"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
    }
}
