//! Confluent compatibility tests: would this schema be accepted under the subject's level?
//! With `?pipelines=true` (implied by the level PIPELINES) also: would it block the upgrade
//! of a registered pipeline reading the subject? Answered in Confluent's shape, so its
//! clients read the verdict unchanged.

use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use weft_schema::{IncompatibilityKind, check_level};

use super::subjects::{SchemaRequest, VersionSel};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, SrJson};
use crate::names;
use crate::state::AppState;
use crate::store::{Store, SubjectVersion, describe_problems, parse_schema};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(test_version))
        .routes(routes!(test_all))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct VerboseQuery {
    /// Explain incompatibilities in `messages`.
    #[serde(default)]
    pub verbose: bool,
    /// weft: also check the registered pipelines that read the subject, directly or
    /// downstream; each stage reading a field the schema removes or retypes (against the
    /// latest version) is a message and makes the answer incompatible. Messages are then
    /// always listed. Implied when the subject's level is PIPELINES.
    #[serde(default)]
    pub pipelines: bool,
}

/// `{"is_compatible": bool, "messages": [...]}` (messages only when verbose).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompatibilityResponse {
    pub is_compatible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<String>>,
}

/// Which versions of the subject a test compares with.
enum Against {
    /// One version (`latest` or a number).
    One(VersionSel),
    /// Every live version the subject's level looks at.
    All,
}

/// Runs the whole test on the blocking pool: store reads and the compatibility check, which
/// can take up to its step budget of CPU and must not hold an async worker meanwhile.
async fn test(
    state: &AppState,
    subject: String,
    against: Against,
    req: SchemaRequest,
    q: VerboseQuery,
) -> ApiResult<SrJson<CompatibilityResponse>> {
    let response = state
        .store
        .read(move |store| test_blocking(store, &subject, against, &req, &q))
        .await?;
    Ok(SrJson(response))
}

fn test_blocking(
    store: &Store,
    subject: &str,
    against: Against,
    req: &SchemaRequest,
    q: &VerboseQuery,
) -> ApiResult<CompatibilityResponse> {
    let (schema, _) = req.parsed()?;
    let versions = match (store.live_versions(subject, false), &against) {
        // Nothing to be incompatible with, as Confluent answers for `latest`.
        (Err(ApiError::SubjectNotFound(_)), Against::One(VersionSel::Latest) | Against::All) => {
            Vec::new()
        }
        (other, _) => other?,
    };
    let against: Vec<SubjectVersion> = match against {
        _ if versions.is_empty() => Vec::new(),
        Against::One(sel) => vec![sel.pick(&versions)?.clone()],
        Against::All => versions,
    };
    let level = store.effective_level(subject)?;
    let previous = against
        .iter()
        .map(|v| parse_schema(&v.schema))
        .collect::<ApiResult<Vec<_>>>()?;
    let result = check_level(level.avro(), &schema, &previous);
    let mut messages = match &result {
        Ok(()) => Vec::new(),
        Err(problems) => {
            // "Could not check" is not "incompatible": say so as an error a client shows.
            if let Some(too_complex) = problems
                .iter()
                .find(|p| p.kind == IncompatibilityKind::TooComplex)
            {
                return Err(ApiError::InvalidSchema(too_complex.message.clone()));
            }
            describe_problems(problems, &against, level)
        }
    };
    let guard = q.pipelines || level.guards_pipelines();
    let blocked = if guard {
        store.pipelines_guard(subject, &schema)?
    } else {
        Vec::new()
    };
    let is_compatible = result.is_ok() && blocked.is_empty();
    messages.extend(blocked);
    Ok(CompatibilityResponse {
        is_compatible,
        messages: (q.verbose || (q.pipelines && !is_compatible)).then_some(messages),
    })
}

/// Test a schema against one version of a subject (`latest` for the newest).
#[utoipa::path(post, path = "/compatibility/subjects/{subject}/versions/{version}", tag = "compatibility",
    params(("subject" = String, Path), ("version" = String, Path), VerboseQuery),
    request_body = SchemaRequest,
    responses((status = 200, body = CompatibilityResponse),
        (status = 404, body = ErrorBody, description = "40401, 40402"),
        (status = 422, body = ErrorBody, description = "42201, 42202")))]
async fn test_version(
    State(state): State<AppState>,
    Path((subject, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<VerboseQuery>,
    ApiJson(req): ApiJson<SchemaRequest>,
) -> ApiResult<SrJson<CompatibilityResponse>> {
    names::subject(&subject)?;
    let sel = VersionSel::parse(&version)?;
    test(&state, subject, Against::One(sel), req, q).await
}

/// Test a schema against every live version the subject's level looks at.
#[utoipa::path(post, path = "/compatibility/subjects/{subject}/versions", tag = "compatibility",
    params(("subject" = String, Path), VerboseQuery),
    request_body = SchemaRequest,
    responses((status = 200, body = CompatibilityResponse)))]
async fn test_all(
    State(state): State<AppState>,
    Path(subject): Path<String>,
    ApiQuery(q): ApiQuery<VerboseQuery>,
    ApiJson(req): ApiJson<SchemaRequest>,
) -> ApiResult<SrJson<CompatibilityResponse>> {
    names::subject(&subject)?;
    test(&state, subject, Against::All, req, q).await
}
