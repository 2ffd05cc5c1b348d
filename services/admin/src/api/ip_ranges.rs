//! `/api/v1/ip-ranges`

use super::Path;
use super::{AppState, Body};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_policy::{IpRange, NewIpRange};

#[utoipa::path(get, path = "/api/v1/ip-ranges", tag = "ip-ranges", responses((status = 200, body = [IpRange])))]
pub async fn list_ip_ranges(State(s): State<AppState>) -> Result<Json<Vec<IpRange>>, ApiError> {
    Ok(Json(s.ip_ranges.list().await?))
}

#[utoipa::path(post, path = "/api/v1/ip-ranges", tag = "ip-ranges", request_body = NewIpRange,
    responses((status = 201, body = IpRange), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_ip_range(
    State(s): State<AppState>,
    Body(new): Body<NewIpRange>,
) -> Result<(StatusCode, Json<IpRange>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.ip_ranges.create(&new).await?)))
}

#[utoipa::path(get, path = "/api/v1/ip-ranges/{name}", tag = "ip-ranges", params(("name" = String, Path)),
    responses((status = 200, body = IpRange), (status = 404, body = ErrorBody)))]
pub async fn show_ip_range(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<IpRange>, ApiError> {
    Ok(Json(s.ip_ranges.get(&name).await?))
}

#[utoipa::path(delete, path = "/api/v1/ip-ranges/{name}", tag = "ip-ranges", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_ip_range(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.ip_ranges.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
