//! Bearer tokens: required for writes, and for reads when configured.
//!
//! Tokens are compared through their sha256 digests in constant time, against every
//! configured token without stopping early, so neither content nor length leaks through
//! timing. The `Authorization` header is never logged.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Token;
use crate::error::ApiError;
use crate::state::AppState;

/// Middleware enforcing the token rules on every route.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let needs_token = is_write(req.method(), req.uri().path()) || state.settings.auth_reads;
    if needs_token {
        if state.settings.tokens.is_empty() {
            return ApiError::WritesDisabled.into_response();
        }
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token);
        match presented {
            Some(candidate) if token_matches(&candidate, &state.settings.tokens) => {}
            _ => return ApiError::Unauthorized.into_response(),
        }
    }
    next.run(req).await
}

/// Whether a request changes state. Some POSTs only read: the Confluent schema lookup
/// (`POST /subjects/{s}`) and compatibility tests, and pipeline validation.
pub fn is_write(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => false,
        Method::POST => {
            let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
            let lookup = segments.len() == 2 && segments[0] == "subjects";
            let compatibility = segments.first() == Some(&"compatibility");
            let validate = path.trim_end_matches('/') == "/v1/pipelines/validate";
            !(lookup || compatibility || validate)
        }
        _ => true,
    }
}

/// `Bearer TOKEN`, or `Basic base64(user:TOKEN)` as Confluent clients send basic auth.
pub(crate) fn presented_token(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_string());
    }
    None
}

pub(crate) fn token_matches(candidate: &str, tokens: &[Token]) -> bool {
    let candidate = Sha256::digest(candidate.as_bytes());
    let mut matched = subtle::Choice::from(0u8);
    for token in tokens {
        let expected = Sha256::digest(token.0.as_bytes());
        matched |= candidate.as_slice().ct_eq(expected.as_slice());
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_lookups_are_not_writes() {
        assert!(!is_write(&Method::GET, "/subjects/a/versions"));
        assert!(!is_write(&Method::POST, "/subjects/orders-value"));
        assert!(!is_write(
            &Method::POST,
            "/compatibility/subjects/a/versions/latest"
        ));
        assert!(!is_write(&Method::POST, "/v1/pipelines/validate"));
        assert!(is_write(&Method::POST, "/subjects/a/versions"));
        assert!(is_write(&Method::PUT, "/config"));
        assert!(is_write(&Method::DELETE, "/subjects/a"));
        assert!(is_write(&Method::POST, "/v1/plugins"));
    }

    #[test]
    fn bearer_and_basic_tokens_are_recognised() {
        let tokens = [Token("right-token".into())];
        let bearer = presented_token("Bearer right-token").expect("bearer");
        assert!(token_matches(&bearer, &tokens));
        let basic = base64::engine::general_purpose::STANDARD.encode("user:right-token");
        let basic = presented_token(&format!("Basic {basic}")).expect("basic");
        assert!(token_matches(&basic, &tokens));
        assert!(!token_matches("wrong-token", &tokens));
        assert!(!token_matches("right-toke", &tokens));
        assert_eq!(presented_token("Digest abc"), None);
    }
}
