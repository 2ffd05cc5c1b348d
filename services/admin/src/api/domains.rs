//! `/api/v1/domains`

use super::{AppState, Body};
use super::{Path, Query};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_directory::{Domain, DomainUpdate};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomain {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDomainAlias {
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatchAll {
    pub address: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RemoveOptions {
    /// Also remove every account, alias and list of the domain.
    #[serde(default)]
    pub force: bool,
}

#[utoipa::path(get, path = "/api/v1/domains", tag = "domains", responses((status = 200, body = [Domain])))]
pub async fn list_domains(State(s): State<AppState>) -> Result<Json<Vec<Domain>>, ApiError> {
    Ok(Json(s.directory.domains().await?))
}

#[utoipa::path(post, path = "/api/v1/domains", tag = "domains", request_body = NewDomain,
    responses((status = 201, body = Domain), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_domain(
    State(s): State<AppState>,
    Body(new): Body<NewDomain>,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.directory.create_domain(&new.name).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path)),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody)))]
pub async fn show_domain(
    State(s): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Json<Domain>, ApiError> {
    Ok(Json(s.directory.domain(&domain).await?))
}

#[utoipa::path(patch, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path)),
    request_body = DomainUpdate, responses((status = 200, body = Domain), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_domain(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Body(update): Body<DomainUpdate>,
) -> Result<Json<Domain>, ApiError> {
    Ok(Json(s.directory.update_domain(&domain, &update).await?))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}", tag = "domains", params(("domain" = String, Path), RemoveOptions),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_domain(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Query(options): Query<RemoveOptions>,
) -> Result<StatusCode, ApiError> {
    s.directory.remove_domain(&domain, options.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/domains/{domain}/aliases", tag = "domains", params(("domain" = String, Path)),
    request_body = NewDomainAlias, responses((status = 201, body = Domain), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_domain_alias(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Body(alias): Body<NewDomainAlias>,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.directory.add_domain_alias(&domain, &alias.name).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}/aliases/{alias}", tag = "domains",
    params(("domain" = String, Path), ("alias" = String, Path)), responses((status = 200, body = Domain), (status = 404, body = ErrorBody)))]
pub async fn remove_domain_alias(
    State(s): State<AppState>,
    Path((domain, alias)): Path<(String, String)>,
) -> Result<Json<Domain>, ApiError> {
    Ok(Json(
        s.directory.remove_domain_alias(&domain, &alias).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/domains/{domain}/catch-all", tag = "domains", params(("domain" = String, Path)),
    request_body = CatchAll, responses((status = 200, body = Domain), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_catch_all(
    State(s): State<AppState>,
    Path(domain): Path<String>,
    Body(catch_all): Body<CatchAll>,
) -> Result<Json<Domain>, ApiError> {
    Ok(Json(
        s.directory
            .set_catch_all(&domain, Some(&catch_all.address))
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/domains/{domain}/catch-all", tag = "domains", params(("domain" = String, Path)),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody)))]
pub async fn clear_catch_all(
    State(s): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Json<Domain>, ApiError> {
    Ok(Json(s.directory.set_catch_all(&domain, None).await?))
}
