//! API keys of the caller's tenant: create (the secret shown once), list,
//! revoke. Every operation needs the `admin` scope.

use chrono::Utc;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};

use super::{
    ApiTags, convert,
    model::{ApiKeyList, CreatedApiKey, NewApiKey},
};
use crate::{
    auth::{self, Admin, Authorized, Scope, Scopes},
    body_limit::json_body_limit,
    problem::ApiError,
    problems,
    state::AppState,
};

/// The key operations.
pub struct KeysApi {
    /// Shared state.
    pub state: AppState,
}

/// A created key.
#[derive(Debug, ApiResponse)]
pub enum CreateKeyResponse {
    /// Created. The secret is in this answer only.
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
}

problems! {
    /// Why a key could not be created.
    CreateKeyError {
        400 => BadRequest: "The request is malformed.",
        413 => TooLarge: "The body is too large.",
        415 => UnsupportedMediaType: "The body is not JSON.",
        422 => Unprocessable: "The key is invalid: a bad name, no scope, an expiry in the past.",
    }
}

/// The tenant's keys.
#[derive(Debug, ApiResponse)]
pub enum ListKeysResponse {
    /// The keys, newest first.
    #[oai(status = 200)]
    Ok(Json<ApiKeyList>),
}

problems! {
    /// Why keys could not be listed.
    ListKeysError {}
}

/// A revoked key.
#[derive(Debug, ApiResponse)]
pub enum RevokeKeyResponse {
    /// Revoked (or revoked already): it stops working on every replica
    /// within seconds.
    #[oai(status = 204)]
    Revoked,
}

problems! {
    /// Why a key could not be revoked.
    RevokeKeyError {
        404 => NotFound: "The tenant has no key with this prefix.",
    }
}

#[OpenApi(tag = "ApiTags::Keys")]
impl KeysApi {
    /// Create an API key for the caller's tenant.
    ///
    /// The answer holds the key's secret, which is not stored and cannot
    /// be shown again. Needs the `admin` scope. To rotate a key, create its
    /// successor, switch the client to it, then revoke the old one: both
    /// work meanwhile.
    #[oai(
        path = "/v1/keys",
        method = "post",
        operation_id = "createApiKey",
        transform = "json_body_limit"
    )]
    async fn create_key(
        &self,
        auth: Authorized<Admin>,
        body: Json<NewApiKey>,
    ) -> Result<CreateKeyResponse, CreateKeyError> {
        let new = body.0;
        if let Some(at) = new.expires_at.filter(|at| *at <= Utc::now()) {
            return Err(ApiError::Unprocessable {
                detail: format!("expires_at {at} is not in the future"),
                errors: vec![crate::problem::InputError {
                    line: None,
                    column: Some("expires_at".to_owned()),
                    message: "not in the future".to_owned(),
                }],
            }
            .into());
        }
        let scopes: Scopes = new.scopes.into_iter().map(Scope::from).collect();
        let created = auth::keys::create(
            self.state.queue.pool(),
            auth.tenant,
            scopes,
            &new.name.0,
            new.expires_at,
        )
        .await
        .map_err(ApiError::from)?;
        tracing::info!(
            tenant = %auth.tenant,
            key = created.info.prefix,
            by = auth.key.as_deref().unwrap_or("open access"),
            scopes = %created.info.scopes,
            "created an API key"
        );
        Ok(CreateKeyResponse::Created(Json(CreatedApiKey {
            key: convert::api_key(&created.info),
            secret: created.secret,
        })))
    }

    /// List the caller's tenant's API keys, newest first (revoked and
    /// expired ones included; no secrets).
    ///
    /// Needs the `admin` scope.
    #[oai(path = "/v1/keys", method = "get", operation_id = "listApiKeys")]
    async fn list_keys(&self, auth: Authorized<Admin>) -> Result<ListKeysResponse, ListKeysError> {
        let keys = auth::keys::list(self.state.queue.pool(), Some(auth.tenant))
            .await
            .map_err(ApiError::from)?;
        Ok(ListKeysResponse::Ok(Json(ApiKeyList {
            items: keys.iter().map(convert::api_key).collect(),
        })))
    }

    /// Revoke one of the caller's tenant's API keys, by its prefix.
    ///
    /// It stops working at once on this replica and within seconds on
    /// every other. Revoking a revoked key changes nothing. Needs the
    /// `admin` scope.
    #[oai(
        path = "/v1/keys/:prefix",
        method = "delete",
        operation_id = "revokeApiKey"
    )]
    async fn revoke_key(
        &self,
        auth: Authorized<Admin>,
        /// The key's display prefix (`crk_` and 8 characters).
        prefix: Path<String>,
    ) -> Result<RevokeKeyResponse, RevokeKeyError> {
        let prefix = prefix.0;
        let found = auth::keys::is_prefix(&prefix)
            && auth::keys::revoke(self.state.queue.pool(), Some(auth.tenant), &prefix)
                .await
                .map_err(ApiError::from)?;
        if !found {
            return Err(ApiError::NotFound(format!("no key {prefix:?}")).into());
        }
        // Other replicas evict it when the notification arrives; this one
        // need not wait for it.
        self.state.auth.verifier.evict(&prefix);
        tracing::info!(
            tenant = %auth.tenant,
            key = prefix,
            by = auth.key.as_deref().unwrap_or("open access"),
            "revoked an API key"
        );
        Ok(RevokeKeyResponse::Revoked)
    }
}
