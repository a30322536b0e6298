//! Who is calling: the operator (admin bearer) or one tenant (its API key).

use std::collections::HashMap;

use crate::{
    api_key::{self, API_KEY_PREFIX, hash_key},
    error::ApiError,
    ids::{TenantId, TenantStatus},
    state::AppState,
};
use axum::{extract::FromRequestParts, http::request::Parts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Tenant(TenantId),
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(_) => Err(ApiError::Forbidden(
                "this route needs the admin token".into(),
            )),
        }
    }

    /// Admin, or the tenant itself; another tenant's key is a 403.
    pub fn require_tenant(&self, tenant: &TenantId) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Tenant(own) if own == tenant => Ok(()),
            Caller::Tenant(_) => Err(ApiError::Forbidden(
                "this API key belongs to another tenant".into(),
            )),
        }
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer header".into()))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("invalid Authorization header".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be 'Bearer <token>'".into()))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthorized(
            "Authorization must be 'Bearer <token>'".into(),
        ));
    }
    Ok(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if state
            .config
            .admin_token
            .as_ref()
            .is_some_and(|admin| admin.matches(token))
        {
            return Ok(Caller::Admin);
        }
        let bad = || ApiError::Unauthorized("invalid credentials".into());
        if !token.starts_with(API_KEY_PREFIX) {
            return Err(bad());
        }
        let hash = hash_key(token);
        // A key refused a moment ago is refused again without a database lookup, so a
        // flood of bad keys costs memory, not queries.
        if state.rejected_keys.get(&hash).is_some() {
            return Err(bad());
        }
        if let Some(tenant) = state.accepted_keys.get(&hash) {
            return Ok(Caller::Tenant(*tenant));
        }
        match api_key::owner(&state.store, &hash).await? {
            Some((tenant, TenantStatus::Active)) => {
                state.accepted_keys.insert(hash, tenant);
                Ok(Caller::Tenant(tenant))
            }
            Some((_, TenantStatus::Disabled)) => Err(ApiError::TenantDisabled { by_admin: false }),
            None => {
                state.rejected_keys.insert(hash, ());
                Err(bad())
            }
        }
    }
}

/// A tenant-scoped route's `{tenantId}`, checked in the order a caller expects: credentials
/// (401), the id's syntax (400), the caller's right to it (403), its existence (404).
#[derive(Debug, Clone, Copy)]
pub struct TenantAccess {
    pub tenant: TenantId,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for TenantAccess {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let crate::http::ApiPath(params) =
            crate::http::ApiPath::<HashMap<String, String>>::from_request_parts(parts, state)
                .await?;
        let raw = params
            .get("tenantId")
            .ok_or_else(|| ApiError::bad_request("tenantId is missing from the path"))?;
        let tenant = TenantId::parse(raw)?;
        caller.require_tenant(&tenant)?;
        // A tenant key proves its tenant exists; the admin may name any id.
        if caller == Caller::Admin {
            crate::tenant::ensure_exists(&state.store, &tenant).await?;
        }
        Ok(Self { tenant, caller })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_may_only_reach_itself() {
        let (a, b) = (TenantId::generate(), TenantId::generate());
        assert!(Caller::Tenant(a).require_tenant(&a).is_ok());
        assert!(Caller::Tenant(a).require_tenant(&b).is_err());
        assert!(Caller::Admin.require_tenant(&b).is_ok());
        assert!(Caller::Tenant(a).require_admin().is_err());
    }
}
