//! `/api/v1/lists`: distribution lists and their members.

use super::{ActiveUpdate, AppState, Body, DomainFilter};
use super::{Path, Query};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_directory::{DistributionList, NewList};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub address: String,
}

#[utoipa::path(get, path = "/api/v1/lists", tag = "lists", params(DomainFilter),
    responses((status = 200, body = [DistributionList]), (status = 404, body = ErrorBody)))]
pub async fn list_lists(
    State(s): State<AppState>,
    Query(filter): Query<DomainFilter>,
) -> Result<Json<Vec<DistributionList>>, ApiError> {
    Ok(Json(s.directory.lists(filter.domain.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/lists", tag = "lists", request_body = NewList,
    responses((status = 201, body = DistributionList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_list(
    State(s): State<AppState>,
    Body(new): Body<NewList>,
) -> Result<(StatusCode, Json<DistributionList>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.directory.create_list(&new).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/lists/{address}", tag = "lists", params(("address" = String, Path)),
    responses((status = 200, body = DistributionList), (status = 404, body = ErrorBody)))]
pub async fn show_list(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<DistributionList>, ApiError> {
    Ok(Json(s.directory.list(&address).await?))
}

#[utoipa::path(patch, path = "/api/v1/lists/{address}", tag = "lists", params(("address" = String, Path)),
    request_body = ActiveUpdate, responses((status = 200, body = DistributionList), (status = 404, body = ErrorBody)))]
pub async fn update_list(
    State(s): State<AppState>,
    Path(address): Path<String>,
    Body(update): Body<ActiveUpdate>,
) -> Result<Json<DistributionList>, ApiError> {
    Ok(Json(
        s.directory.set_list_active(&address, update.active).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/lists/{address}", tag = "lists", params(("address" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_list(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.directory.remove_list(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/lists/{address}/members", tag = "lists", params(("address" = String, Path)),
    request_body = NewMember, responses((status = 201, body = DistributionList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_list_member(
    State(s): State<AppState>,
    Path(address): Path<String>,
    Body(member): Body<NewMember>,
) -> Result<(StatusCode, Json<DistributionList>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.directory
                .add_list_member(&address, &member.address)
                .await?,
        ),
    ))
}

#[utoipa::path(delete, path = "/api/v1/lists/{address}/members/{member}", tag = "lists",
    params(("address" = String, Path), ("member" = String, Path)),
    responses((status = 200, body = DistributionList), (status = 404, body = ErrorBody)))]
pub async fn remove_list_member(
    State(s): State<AppState>,
    Path((address, member)): Path<(String, String)>,
) -> Result<Json<DistributionList>, ApiError> {
    Ok(Json(
        s.directory.remove_list_member(&address, &member).await?,
    ))
}
