//! `/api/v1/bans`: addresses refused on every protocol, automatically (too many failed logins)
//! or by an administrator. Lifting a ban also forgets the address's failed-login count in Redis,
//! or the next failure would ban it again at once.

use super::{AppState, Body, Path};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_policy::Ban;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBan {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// How long the ban lasts; absent: until removed.
    pub minutes: Option<u32>,
}

/// What lifting the bans of an address did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiftedBan {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// Bans removed (an address can be banned more than once).
    pub removed: u64,
    /// Whether the failed-login count was cleared (false: none was kept, or Redis is absent or
    /// unreachable, which the admin service log tells).
    pub failures_cleared: bool,
}

#[utoipa::path(get, path = "/api/v1/bans", tag = "bans", responses((status = 200, body = [Ban])))]
pub async fn list_bans(State(s): State<AppState>) -> Result<Json<Vec<Ban>>, ApiError> {
    Ok(Json(s.bans.list(time::OffsetDateTime::now_utc()).await?))
}

#[utoipa::path(post, path = "/api/v1/bans", tag = "bans", request_body = NewBan,
    responses((status = 201, body = Ban), (status = 400, body = ErrorBody)))]
pub async fn add_ban(
    State(s): State<AppState>,
    Body(new): Body<NewBan>,
) -> Result<(StatusCode, Json<Ban>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.bans.add(new.ip, new.minutes).await?),
    ))
}

#[utoipa::path(delete, path = "/api/v1/bans/{ip}", tag = "bans", params(("ip" = String, Path)),
    responses((status = 200, body = LiftedBan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_ban(
    State(s): State<AppState>,
    Path(ip): Path<String>,
) -> Result<Json<LiftedBan>, ApiError> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::invalid(format!("{ip:?} is not an IP address")))?;
    let ip = mc_policy::canonical_ip(ip);
    let removed = s.bans.remove(ip).await;
    // Cleared even when there was no ban: the count alone would still ban at the next failure.
    let failures_cleared = clear_failures(&s, ip).await;
    Ok(Json(LiftedBan {
        ip,
        removed: removed?,
        failures_cleared,
    }))
}

/// Deletes the failed-login count of `ip`; the ban is lifted whatever happens here.
async fn clear_failures(s: &AppState, ip: IpAddr) -> bool {
    let Some(redis) = &s.redis else {
        tracing::warn!(%ip, "no Redis configured: the failed-login count of the address stays");
        return false;
    };
    let key = redis.key(&mc_policy::auth_failure_key(ip));
    let mut connection = redis.connection.clone();
    match mc_runtime::store_metrics::redis(
        mc_runtime::store_metrics::RedisGroup::Autoban,
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<i64>(&mut connection),
    )
    .await
    {
        Ok(deleted) => deleted > 0,
        Err(error) => {
            tracing::warn!(%ip, %error, "failed-login count not cleared: Redis unreachable");
            false
        }
    }
}
