//! `/api/v1/aliases`

use super::{AppState, Body, DomainFilter};
use super::{Path, Query};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_directory::{Alias, NewAlias};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActiveUpdate {
    pub active: bool,
}

#[utoipa::path(get, path = "/api/v1/aliases", tag = "aliases", params(DomainFilter),
    responses((status = 200, body = [Alias]), (status = 404, body = ErrorBody)))]
pub async fn list_aliases(
    State(s): State<AppState>,
    Query(filter): Query<DomainFilter>,
) -> Result<Json<Vec<Alias>>, ApiError> {
    Ok(Json(s.directory.aliases(filter.domain.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/aliases", tag = "aliases", request_body = NewAlias,
    responses((status = 201, body = Alias), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_alias(
    State(s): State<AppState>,
    Body(new): Body<NewAlias>,
) -> Result<(StatusCode, Json<Alias>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.directory.create_alias(&new).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/aliases/{address}", tag = "aliases", params(("address" = String, Path)),
    responses((status = 200, body = Alias), (status = 404, body = ErrorBody)))]
pub async fn show_alias(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Alias>, ApiError> {
    Ok(Json(s.directory.alias(&address).await?))
}

#[utoipa::path(patch, path = "/api/v1/aliases/{address}", tag = "aliases", params(("address" = String, Path)),
    request_body = ActiveUpdate, responses((status = 200, body = Alias), (status = 404, body = ErrorBody)))]
pub async fn update_alias(
    State(s): State<AppState>,
    Path(address): Path<String>,
    Body(update): Body<ActiveUpdate>,
) -> Result<Json<Alias>, ApiError> {
    Ok(Json(
        s.directory
            .set_alias_active(&address, update.active)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/aliases/{address}", tag = "aliases", params(("address" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_alias(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.directory.remove_alias(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}
