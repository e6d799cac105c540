//! Request extractors and response wrappers that keep every answer JSON.
//!
//! axum's own `Json`/`Query` rejections are plain text and its `Json` insists on a JSON
//! content type; Confluent clients send `application/vnd.schemaregistry.v1+json` and tools
//! like curl often send none, so bodies are parsed whatever the content type says.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::value::{Error as DeError, MapDeserializer};
use serde::de::{DeserializeOwned, Deserializer, Error as _, IntoDeserializer, Visitor};

use crate::error::{ApiError, error_response};

/// The Confluent Schema Registry's media type; every answer under its routes carries it.
pub const SCHEMA_REGISTRY_JSON: &str = "application/vnd.schemaregistry.v1+json";

/// A JSON body, whatever its content type; errors are [`ApiError::BadRequest`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")).into_response())
    }
}

/// Query parameters; errors are [`ApiError::BadRequest`].
///
/// Booleans are read case-insensitively (`true`, `True`, `FALSE`), as Confluent's registry
/// (Java's `Boolean.valueOf`) reads them: its Python client sends `normalize=False`. An empty
/// value is `false`; anything else (`1`, `yes`) is a 400 naming the parameter rather than
/// Java's silent `false`, so a typo never turns `permanent=1` into a soft delete.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let map = MapDeserializer::new(pairs.into_iter().map(|(key, value)| {
            let named = QueryValue {
                key: key.clone(),
                value,
            };
            (key, named)
        }));
        T::deserialize(map)
            .map(ApiQuery)
            .map_err(|e: DeError| ApiError::BadRequest(format!("invalid query string: {e}")))
    }
}

/// One query value: a string that numbers and booleans are parsed out of on demand; the key
/// names the parameter in errors.
struct QueryValue {
    key: String,
    value: String,
}

impl QueryValue {
    fn invalid(&self, expected: &str) -> DeError {
        DeError::custom(format!(
            "parameter `{}`: expected {expected}, got `{}`",
            self.key, self.value
        ))
    }
}

impl<'de> IntoDeserializer<'de, DeError> for QueryValue {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.value.trim().parse() {
                Ok(n) => visitor.$visit(n),
                Err(_) => Err(self.invalid("a number")),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for QueryValue {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.value)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.value.eq_ignore_ascii_case("true") {
            visitor.visit_bool(true)
        } else if self.value.is_empty() || self.value.eq_ignore_ascii_case("false") {
            visitor.visit_bool(false)
        } else {
            Err(self.invalid("true or false (any case)"))
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.value
            .into_deserializer()
            .deserialize_enum(name, variants, visitor)
    }

    parse_number! {
        deserialize_u8 => visit_u8, deserialize_u16 => visit_u16, deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64, deserialize_i8 => visit_i8, deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32, deserialize_i64 => visit_i64, deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

/// A JSON answer in the Confluent media type.
#[derive(Debug)]
pub struct SrJson<T>(pub T);

impl<T: Serialize> IntoResponse for SrJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(SCHEMA_REGISTRY_JSON),
                )],
                body,
            )
                .into_response(),
            Err(e) => ApiError::Internal(format!("serializing a response: {e}")).into_response(),
        }
    }
}

/// Middleware: an error answered by a layer or by axum itself (413 from the body limit, 405,
/// a plain-text rejection) is rewritten as `{error_code, message}` JSON.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
    if is_json {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type".to_string(),
        other => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => 41301,
        _ if status.is_server_error() => 50000,
        _ => u32::from(status.as_u16()),
    };
    error_response(status, code, message)
}
