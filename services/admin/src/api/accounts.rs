//! `/api/v1/accounts`

use super::{AppState, Body};
use super::{Path, Query};
use crate::error::{ApiError, ErrorBody};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mc_directory::{Account, AccountUpdate, NewAccount};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
pub struct DomainFilter {
    /// Only objects of this domain.
    pub domain: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts", params(DomainFilter),
    responses((status = 200, body = [Account]), (status = 404, body = ErrorBody)))]
pub async fn list_accounts(
    State(s): State<AppState>,
    Query(filter): Query<DomainFilter>,
) -> Result<Json<Vec<Account>>, ApiError> {
    Ok(Json(s.directory.accounts(filter.domain.as_deref()).await?))
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = Account), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_account(
    State(s): State<AppState>,
    Body(new): Body<NewAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.directory.create_account(new).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/accounts/{address}", tag = "accounts", params(("address" = String, Path)),
    responses((status = 200, body = Account), (status = 404, body = ErrorBody)))]
pub async fn show_account(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(s.directory.account(&address).await?))
}

#[utoipa::path(patch, path = "/api/v1/accounts/{address}", tag = "accounts", params(("address" = String, Path)),
    request_body = AccountUpdate, responses((status = 200, body = Account), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_account(
    State(s): State<AppState>,
    Path(address): Path<String>,
    Body(update): Body<AccountUpdate>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(s.directory.update_account(&address, update).await?))
}

/// Whether `unlock` removed a lock.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Unlocked {
    pub unlocked: bool,
}

/// Clears the account's POP3 maildrop lock (left by a session that is stuck, or by a replica
/// that died before the lock expired).
#[utoipa::path(post, path = "/api/v1/accounts/{address}/unlock", tag = "accounts", params(("address" = String, Path)),
    responses((status = 200, body = Unlocked), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn unlock_account(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Unlocked>, ApiError> {
    let account = s.directory.account(&address).await?;
    let Some(profile) = s.directory.delivery_profile(&account.address).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no account {address}"),
        ));
    };
    let Some(redis) = &s.redis else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the admin service has no Redis configured, where the locks are",
        ));
    };
    let key = redis.key(&mc_mailstore::mailboxes::pop3_lock_key(profile.account_id));
    let mut connection = redis.connection.clone();
    let removed: i64 = mc_runtime::store_metrics::redis(
        mc_runtime::store_metrics::RedisGroup::Pop3Lock,
        redis::cmd("DEL").arg(&key).query_async(&mut connection),
    )
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("Redis: {e}"),
        )
    })?;
    Ok(Json(Unlocked {
        unlocked: removed > 0,
    }))
}

#[utoipa::path(delete, path = "/api/v1/accounts/{address}", tag = "accounts", params(("address" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_account(
    State(s): State<AppState>,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.directory.remove_account(&address).await?;
    Ok(StatusCode::NO_CONTENT)
}
