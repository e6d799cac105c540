//! Admin bearer tokens: every request that changes state needs one; reads are open.
//!
//! Tokens are compared through their sha256 digests in constant time, against every
//! configured token without stopping early, so neither content nor length leaks through
//! timing. The `Authorization` header is never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::serve::DaemonConfig;

/// The admin tokens a daemon accepts for writes (`admin_tokens` in weftd.toml, or the
/// variable `admin_token_env` names). With none, every write is refused.
#[derive(Clone, Default)]
pub struct AdminAuth {
    digests: Arc<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens, not even their digests.
        write!(f, "AdminAuth({} tokens)", self.digests.len())
    }
}

impl AdminAuth {
    /// Accepts any of `tokens`; empty strings are ignored (an unset variable is not a token).
    pub fn new<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Self {
        let digests = tokens
            .into_iter()
            .filter(|t| !t.as_ref().is_empty())
            .map(|t| Sha256::digest(t.as_ref().as_bytes()).into())
            .collect();
        Self {
            digests: Arc::new(digests),
        }
    }

    /// The tokens of a daemon config: `admin_tokens`, and the variable `admin_token_env`
    /// names when it is set.
    pub fn from_config(config: &DaemonConfig) -> Self {
        Self::new(config.tokens())
    }

    /// Whether no token is configured (writes disabled).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `candidate` is one of the tokens.
    fn accepts(&self, candidate: &str) -> bool {
        let candidate = Sha256::digest(candidate.as_bytes());
        let mut matched = subtle::Choice::from(0u8);
        for expected in self.digests.iter() {
            matched |= candidate.as_slice().ct_eq(expected);
        }
        matched.into()
    }

    /// The answer to a request's `Authorization` header: `Ok` to let a write through.
    fn check(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        if self.is_empty() {
            return Err(ApiError::WritesDisabled);
        }
        let token = authorization.and_then(|value| {
            let (scheme, rest) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        });
        match token {
            None => Err(ApiError::Unauthorized),
            Some(token) if self.accepts(&token) => Ok(()),
            Some(_) => Err(ApiError::Forbidden),
        }
    }
}

/// Whether a request changes state: everything but GET, HEAD and OPTIONS.
fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware enforcing the token on every write.
pub async fn require_token(State(auth): State<AdminAuth>, req: Request, next: Next) -> Response {
    if is_write(req.method()) {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(e) = auth.check(header) {
            return e.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_needs_one_of_the_tokens() {
        let auth = AdminAuth::new(["first-token", "second-token", ""]);
        assert!(auth.check(Some("Bearer first-token")).is_ok());
        assert!(auth.check(Some("bearer   second-token ")).is_ok());
        assert!(matches!(auth.check(None), Err(ApiError::Unauthorized)));
        assert!(matches!(
            auth.check(Some("Basic Zmlyc3QtdG9rZW4=")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.check(Some("Bearer first-toke")),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            auth.check(Some("Bearer ")),
            Err(ApiError::Unauthorized)
        ));
    }

    #[test]
    fn without_tokens_writes_are_disabled() {
        let auth = AdminAuth::new([""]);
        assert!(auth.is_empty());
        assert!(matches!(
            auth.check(Some("Bearer anything")),
            Err(ApiError::WritesDisabled)
        ));
        assert_eq!(format!("{auth:?}"), "AdminAuth(0 tokens)");
    }
}
