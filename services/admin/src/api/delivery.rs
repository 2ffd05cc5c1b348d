//! `/api/v1/routes`, `/api/v1/relayer` and `/api/v1/domains/{domain}/dkim`: where remote mail
//! goes and how it is signed. Passwords go in, never out: the library's views omit them.

use super::Path;
use super::{AppState, Body};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_policy::{DkimRecord, NewRelayer, NewRoute, Relayer, Route};
use serde::Deserialize;
use utoipa::ToSchema;

/// The selector used when a request names none.
const DEFAULT_SELECTOR: &str = "mail";

/// Options of a new DKIM key. The whole body may be left out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDkimKey {
    /// DNS label(s) under `_domainkey`; default `mail`.
    pub selector: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/routes", tag = "routes", responses((status = 200, body = [Route])))]
pub async fn list_routes(State(s): State<AppState>) -> Result<Json<Vec<Route>>, ApiError> {
    Ok(Json(s.delivery.routes().await?))
}

/// Adds the route of a domain, or replaces it (the body is the whole route).
#[utoipa::path(post, path = "/api/v1/routes", tag = "routes", request_body = NewRoute,
    responses((status = 200, body = Route), (status = 400, body = ErrorBody)))]
pub async fn set_route(
    State(s): State<AppState>,
    Body(new): Body<NewRoute>,
) -> Result<Json<Route>, ApiError> {
    Ok(Json(s.delivery.set_route(&new).await?))
}

#[utoipa::path(delete, path = "/api/v1/routes/{domain}", tag = "routes",
    params(("domain" = String, Path, description = "`example.org` or `*.example.org` (percent-encoded)")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_route(
    State(s): State<AppState>,
    Path(domain): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delivery.remove_route(&domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/relayer", tag = "relayer",
    responses((status = 200, body = Relayer), (status = 404, body = ErrorBody)))]
pub async fn show_relayer(State(s): State<AppState>) -> Result<Json<Relayer>, ApiError> {
    s.delivery.relayer().await?.map(Json).ok_or_else(no_relayer)
}

#[utoipa::path(put, path = "/api/v1/relayer", tag = "relayer", request_body = NewRelayer,
    responses((status = 200, body = Relayer), (status = 400, body = ErrorBody)))]
pub async fn set_relayer(
    State(s): State<AppState>,
    Body(new): Body<NewRelayer>,
) -> Result<Json<Relayer>, ApiError> {
    Ok(Json(s.delivery.set_relayer(&new).await?))
}

#[utoipa::path(delete, path = "/api/v1/relayer", tag = "relayer",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn clear_relayer(State(s): State<AppState>) -> Result<StatusCode, ApiError> {
    if s.delivery.clear_relayer().await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_relayer())
    }
}

fn no_relayer() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no relayer is set (remote mail goes to each domain's MX)",
    )
}

/// Makes a new signing key for a hosted domain, replacing its old one, and returns the TXT
/// record to publish.
#[utoipa::path(post, path = "/api/v1/domains/{domain}/dkim", tag = "dkim", params(("domain" = String, Path)),
    request_body(content = Option<NewDkimKey>, description = "optional; the selector defaults to `mail`"),
    responses((status = 201, body = DkimRecord), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn generate_dkim(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    new: Option<Body<NewDkimKey>>,
) -> Result<(StatusCode, Json<DkimRecord>), ApiError> {
    let selector = new
        .and_then(|Body(new)| new.selector)
        .unwrap_or_else(|| DEFAULT_SELECTOR.to_string());
    Ok((
        StatusCode::CREATED,
        Json(s.delivery.generate_dkim(&domain, &selector).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}/dkim", tag = "dkim", params(("domain" = String, Path)),
    responses((status = 200, body = DkimRecord), (status = 404, body = ErrorBody)))]
pub async fn show_dkim(
    State(s): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Json<DkimRecord>, ApiError> {
    if let Some(record) = s.delivery.dkim(&domain).await? {
        return Ok(Json(record));
    }
    // Says which is missing: the domain (a 404 from the directory) or only its key.
    let domain = s.directory.domain(&domain).await?;
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("domain {} has no DKIM key", domain.name),
    ))
}
