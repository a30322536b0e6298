//! Customers (WhatsApp users talking to a tenant) and their conversation state.
//! `(tenantId, waId)` is unique; every update is a single atomic upsert.

use mongodb::{
    Collection,
    bson::{DateTime, Document, doc},
    options::ReturnDocument,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::ApiError,
    ids::TenantId,
    store::{CUSTOMERS, Store},
    template::TemplateKey,
};

/// Where a customer is in the tenant's conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub last_template_key: Option<TemplateKey>,
}

/// A state change decided by the engine or the send API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateUpdate {
    pub last_template_key: TemplateKey,
    /// `None` keeps the current state.
    #[serde(default)]
    pub state: Option<String>,
}

async fn collection(store: &Store) -> Result<Collection<Document>, ApiError> {
    store.collection(CUSTOMERS).await
}

/// Records that the customer wrote (and their profile name, when Meta sent it) and returns
/// their conversation. One round trip.
pub async fn touch(
    store: &Store,
    tenant: &TenantId,
    wa_id: &str,
    name: Option<&str>,
) -> Result<Conversation, ApiError> {
    let now = DateTime::now();
    let mut set = doc! { "lastSeenAt": now, "updatedAt": now };
    if let Some(name) = name {
        set.insert("name", name);
    }
    let doc = collection(store)
        .await?
        .find_one_and_update(
            doc! { "tenantId": tenant.object_id(), "waId": wa_id },
            doc! { "$set": set, "$setOnInsert": { "firstSeenAt": now } },
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
        .projection(doc! { "state": 1, "lastTemplateKey": 1 })
        .await?
        .unwrap_or_default();
    Ok(mongodb::bson::from_document(doc).unwrap_or_default())
}

/// Persists a state change atomically (upsert: an API send may reach a new customer).
pub async fn apply(
    store: &Store,
    tenant: &TenantId,
    wa_id: &str,
    update: &StateUpdate,
) -> Result<(), ApiError> {
    let now = DateTime::now();
    let mut set = doc! { "lastTemplateKey": update.last_template_key.as_str(), "updatedAt": now };
    if let Some(s) = &update.state {
        set.insert("state", s.as_str());
    }
    collection(store)
        .await?
        .update_one(
            doc! { "tenantId": tenant.object_id(), "waId": wa_id },
            doc! { "$set": set, "$setOnInsert": { "firstSeenAt": now } },
        )
        .upsert(true)
        .await?;
    Ok(())
}
