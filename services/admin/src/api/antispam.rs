//! `/api/v1/antispam` (the knobs), `/api/v1/whitelist`, `/api/v1/dnsbl` and
//! `/api/v1/incoming-relays`: the anti-spam policy every replica reads. Bans are in `bans.rs`.

use super::{AppState, Body, Path, Query};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_policy::antispam::Knob;
use mc_policy::{
    AntispamSettings, Blacklist, BlacklistKind, IncomingRelay, NewBlacklist, NewIncomingRelay,
    NewWhitelistEntry, WhitelistEntry, WhitelistKind,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The new value of one knob; its JSON type must be the knob's (number, string, boolean, list).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnobValue {
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

#[utoipa::path(get, path = "/api/v1/antispam", tag = "antispam",
    responses((status = 200, body = [Knob])))]
pub async fn list_antispam(State(s): State<AppState>) -> Result<Json<Vec<Knob>>, ApiError> {
    Ok(Json(AntispamSettings::knobs(&s.pool).await?))
}

#[utoipa::path(put, path = "/api/v1/antispam/{name}", tag = "antispam", params(("name" = String, Path)),
    request_body = KnobValue,
    responses((status = 200, body = Knob), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_antispam(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Body(new): Body<KnobValue>,
) -> Result<Json<Knob>, ApiError> {
    Ok(Json(
        AntispamSettings::set(&s.pool, &name, new.value).await?,
    ))
}

/// Returns a knob to its built-in default and answers with that default.
#[utoipa::path(delete, path = "/api/v1/antispam/{name}", tag = "antispam", params(("name" = String, Path)),
    responses((status = 200, body = Knob), (status = 404, body = ErrorBody)))]
pub async fn reset_antispam(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Knob>, ApiError> {
    AntispamSettings::reset(&s.pool, &name).await?;
    AntispamSettings::knobs(&s.pool)
        .await?
        .into_iter()
        .find(|knob| knob.name == name)
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("anti-spam setting {name} does not exist"),
            )
        })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct WhitelistFilter {
    /// Only entries of this kind (`antispam` or `greylist`).
    pub kind: Option<WhitelistKind>,
}

#[utoipa::path(get, path = "/api/v1/whitelist", tag = "antispam", params(WhitelistFilter),
    responses((status = 200, body = [WhitelistEntry]), (status = 400, body = ErrorBody)))]
pub async fn list_whitelist(
    State(s): State<AppState>,
    Query(filter): Query<WhitelistFilter>,
) -> Result<Json<Vec<WhitelistEntry>>, ApiError> {
    Ok(Json(s.whitelist.list(filter.kind).await?))
}

#[utoipa::path(post, path = "/api/v1/whitelist", tag = "antispam", request_body = NewWhitelistEntry,
    responses((status = 201, body = WhitelistEntry), (status = 400, body = ErrorBody)))]
pub async fn add_whitelist(
    State(s): State<AppState>,
    Body(new): Body<NewWhitelistEntry>,
) -> Result<(StatusCode, Json<WhitelistEntry>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.whitelist.add(&new).await?)))
}

#[utoipa::path(delete, path = "/api/v1/whitelist/{id}", tag = "antispam", params(("id" = i64, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_whitelist(
    State(s): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.whitelist.remove(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct BlacklistFilter {
    /// Only lists of this kind (`dnsbl` or `surbl`).
    pub kind: Option<BlacklistKind>,
}

#[utoipa::path(get, path = "/api/v1/dnsbl", tag = "antispam", params(BlacklistFilter),
    responses((status = 200, body = [Blacklist]), (status = 400, body = ErrorBody)))]
pub async fn list_dnsbl(
    State(s): State<AppState>,
    Query(filter): Query<BlacklistFilter>,
) -> Result<Json<Vec<Blacklist>>, ApiError> {
    Ok(Json(s.blacklists.list(filter.kind).await?))
}

#[utoipa::path(post, path = "/api/v1/dnsbl", tag = "antispam", request_body = NewBlacklist,
    responses((status = 201, body = Blacklist), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_dnsbl(
    State(s): State<AppState>,
    Body(new): Body<NewBlacklist>,
) -> Result<(StatusCode, Json<Blacklist>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.blacklists.add(&new).await?)))
}

#[utoipa::path(delete, path = "/api/v1/dnsbl/{kind}/{zone}", tag = "antispam",
    params(("kind" = BlacklistKind, Path), ("zone" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_dnsbl(
    State(s): State<AppState>,
    Path((kind, zone)): Path<(BlacklistKind, String)>,
) -> Result<StatusCode, ApiError> {
    s.blacklists.remove(kind, &zone).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/dnsbl/{kind}/{zone}/enable", tag = "antispam",
    params(("kind" = BlacklistKind, Path), ("zone" = String, Path)),
    responses((status = 200, body = Blacklist), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable_dnsbl(
    State(s): State<AppState>,
    Path((kind, zone)): Path<(BlacklistKind, String)>,
) -> Result<Json<Blacklist>, ApiError> {
    Ok(Json(s.blacklists.set_active(kind, &zone, true).await?))
}

#[utoipa::path(post, path = "/api/v1/dnsbl/{kind}/{zone}/disable", tag = "antispam",
    params(("kind" = BlacklistKind, Path), ("zone" = String, Path)),
    responses((status = 200, body = Blacklist), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_dnsbl(
    State(s): State<AppState>,
    Path((kind, zone)): Path<(BlacklistKind, String)>,
) -> Result<Json<Blacklist>, ApiError> {
    Ok(Json(s.blacklists.set_active(kind, &zone, false).await?))
}

#[utoipa::path(get, path = "/api/v1/incoming-relays", tag = "antispam",
    responses((status = 200, body = [IncomingRelay])))]
pub async fn list_incoming_relays(
    State(s): State<AppState>,
) -> Result<Json<Vec<IncomingRelay>>, ApiError> {
    Ok(Json(s.incoming_relays.list().await?))
}

#[utoipa::path(post, path = "/api/v1/incoming-relays", tag = "antispam", request_body = NewIncomingRelay,
    responses((status = 201, body = IncomingRelay), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add_incoming_relay(
    State(s): State<AppState>,
    Body(new): Body<NewIncomingRelay>,
) -> Result<(StatusCode, Json<IncomingRelay>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.incoming_relays
                .add(&new.name, new.lower, new.upper)
                .await?,
        ),
    ))
}

#[utoipa::path(delete, path = "/api/v1/incoming-relays/{name}", tag = "antispam", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_incoming_relay(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.incoming_relays.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
