//! The tenant's flow document in MongoDB (`tenantId` unique).

use std::collections::HashSet;

use mongodb::{
    Collection,
    bson::{self, DateTime, doc, oid::ObjectId},
    options::ReturnDocument,
};
use serde::{Deserialize, Serialize};

use super::{Flow, FlowInput, Rule};
use crate::{
    error::ApiError,
    ids::{TemplateKey, TenantId},
    store::{FLOWS, Store},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub flow: Flow,
    pub version: i64,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// The API's view of a flow: the normalised input shape plus bookkeeping, so what GET
/// returns can be posted back as is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowView {
    pub ok: bool,
    pub flows: Vec<Rule>,
    pub fallback_template_key: Option<TemplateKey>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl FlowDoc {
    pub fn view(&self) -> FlowView {
        FlowView {
            ok: true,
            flows: self.flow.flows.clone(),
            fallback_template_key: self.flow.fallback_template_key.clone(),
            version: self.version,
            created_at: crate::ids::rfc3339(self.created_at),
            updated_at: crate::ids::rfc3339(self.updated_at),
        }
    }
}

async fn collection(store: &Store) -> Result<Collection<FlowDoc>, ApiError> {
    store.collection(FLOWS).await
}

/// Validates against `existing`, the tenant's active templates among
/// [`FlowInput::template_keys`] (templates sit above flows: they guard their own
/// deactivation against flows, so the caller reads them), and upserts; returns the doc and
/// whether it was created.
pub async fn save(
    store: &Store,
    tenant: &TenantId,
    input: &FlowInput,
    existing: &HashSet<TemplateKey>,
) -> Result<(FlowDoc, bool), ApiError> {
    let flow = input.validate(existing)?;
    let now = DateTime::now();
    let rules = bson::to_bson(&flow.flows).map_err(|_| ApiError::Internal)?;
    let saved = collection(store)
        .await?
        .find_one_and_update(
            doc! { "tenantId": *tenant },
            doc! {
                "$set": {
                    "flows": rules,
                    "fallbackTemplateKey": flow.fallback_template_key.as_ref().map(TemplateKey::as_str),
                    "updatedAt": now,
                },
                "$inc": { "version": 1_i64 },
                "$setOnInsert": { "createdAt": now },
            },
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await?
        .ok_or(ApiError::Internal)?;
    let created = saved.version == 1;
    Ok((saved, created))
}

pub async fn load(store: &Store, tenant: &TenantId) -> Result<Option<FlowDoc>, ApiError> {
    Ok(collection(store)
        .await?
        .find_one(doc! { "tenantId": *tenant })
        .await?)
}

pub async fn get(store: &Store, tenant: &TenantId) -> Result<FlowDoc, ApiError> {
    load(store, tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {tenant} has no flow yet")))
}

/// The rules (and fallback) of the tenant's flow that send `key`.
pub async fn references(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
) -> Result<Vec<String>, ApiError> {
    let Some(doc) = load(store, tenant).await? else {
        return Ok(Vec::new());
    };
    let mut who: Vec<String> = doc
        .flow
        .flows
        .iter()
        .filter(|r| r.action.template_key.as_ref() == Some(key))
        .map(|r| format!("flow rule {:?}", r.id))
        .collect();
    if doc.flow.fallback_template_key.as_ref() == Some(key) {
        who.push("the flow's fallback".into());
    }
    Ok(who)
}
