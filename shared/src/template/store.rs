//! Templates in MongoDB: every query is scoped by `tenantId`; `(tenantId, key)` is unique.

use std::collections::HashSet;

use futures::TryStreamExt;
use mongodb::{
    Collection,
    bson::{self, DateTime, doc, oid::ObjectId},
    options::ReturnDocument,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Button, Header, Media, Template, TemplateInput, TemplateKey, TemplateKind};
use crate::{
    error::ApiError,
    flow,
    ids::TenantId,
    store::{Store, TEMPLATES, is_duplicate_key},
};

/// A stored template: the [`Template`] and its storage fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateDoc {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tenant_id: TenantId,
    #[serde(flatten)]
    pub template: Template,
    pub version: i64,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// The API's view of a template.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateView {
    pub key: TemplateKey,
    pub tenant_id: String,
    pub kind: TemplateKind,
    pub body: String,
    pub buttons: Vec<Button>,
    pub variables: Vec<String>,
    pub description: Option<String>,
    pub is_active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sections: Option<Vec<super::ListSection>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<Media>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<super::capture::Capture>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A header as the API takes it: `{type, text}` or `{type, link | id}`.
#[derive(Debug, Clone, Serialize)]
pub struct HeaderView {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl HeaderView {
    fn of(h: &Header) -> Self {
        match &h.media {
            Some(m) => Self {
                kind: m.kind.as_str().to_owned(),
                text: None,
                link: m.link.clone(),
                id: m.id.clone(),
                filename: m.filename.clone(),
            },
            None => Self {
                kind: "text".into(),
                text: h.text.clone(),
                link: None,
                id: None,
                filename: None,
            },
        }
    }
}

impl TemplateDoc {
    pub fn view(&self) -> TemplateView {
        let t = &self.template;
        TemplateView {
            key: t.key.clone(),
            tenant_id: self.tenant_id.to_string(),
            kind: t.kind,
            body: t.body.clone(),
            buttons: t.buttons.clone(),
            variables: t.variables.clone(),
            description: t.description.clone(),
            is_active: t.is_active,
            button: t.list.as_ref().map(|l| l.button.clone()),
            sections: t.list.as_ref().map(|l| l.sections.clone()),
            header: t.header.as_ref().map(HeaderView::of),
            footer: t.footer.clone(),
            media: t.media.clone(),
            capture: t.capture.clone(),
            version: self.version,
            created_at: crate::ids::rfc3339(self.created_at),
            updated_at: crate::ids::rfc3339(self.updated_at),
        }
    }
}

async fn collection(store: &Store) -> Result<Collection<TemplateDoc>, ApiError> {
    store.collection(TEMPLATES).await
}

fn not_found(key: &TemplateKey) -> ApiError {
    ApiError::not_found(format!("template {key} not found"))
}

/// Which of `keys` are active templates of the tenant.
pub async fn existing_keys(
    store: &Store,
    tenant: &TenantId,
    keys: &[TemplateKey],
) -> Result<HashSet<TemplateKey>, ApiError> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let list: Vec<&str> = keys.iter().map(TemplateKey::as_str).collect();
    let found: Vec<TemplateDoc> = collection(store)
        .await?
        .find(doc! { "tenantId": *tenant, "key": { "$in": list }, "isActive": true })
        .await?
        .try_collect()
        .await?;
    Ok(found.into_iter().map(|d| d.template.key).collect())
}

async fn find(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
) -> Result<Option<TemplateDoc>, ApiError> {
    Ok(collection(store)
        .await?
        .find_one(doc! { "tenantId": *tenant, "key": key.as_str() })
        .await?)
}

pub async fn get(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
) -> Result<TemplateDoc, ApiError> {
    find(store, tenant, key)
        .await?
        .ok_or_else(|| not_found(key))
}

/// Active templates sorted by key; with `all`, inactive ones too.
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    all: bool,
) -> Result<Vec<TemplateDoc>, ApiError> {
    let mut filter = doc! { "tenantId": *tenant };
    if !all {
        filter.insert("isActive", true);
    }
    Ok(collection(store)
        .await?
        .find(filter)
        .sort(doc! { "key": 1 })
        .await?
        .try_collect()
        .await?)
}

/// Every active template of the tenant (what the conversation engine works from).
pub async fn load_active(store: &Store, tenant: &TenantId) -> Result<Vec<Template>, ApiError> {
    Ok(list(store, tenant, false)
        .await?
        .into_iter()
        .map(|d| d.template)
        .collect())
}

fn spec_fields(spec: &Template) -> Result<bson::Document, ApiError> {
    let buttons = bson::to_bson(&spec.buttons).map_err(|_| ApiError::Internal)?;
    let kind = bson::to_bson(&spec.kind).map_err(|_| ApiError::Internal)?;
    let bson_of = |v: &dyn erased::ToBson| v.to_bson();
    Ok(doc! {
        "kind": kind,
        "body": &spec.body,
        "buttons": buttons,
        "variables": &spec.variables,
        "description": spec.description.as_deref(),
        "isActive": spec.is_active,
        "list": bson_of(&spec.list)?,
        "header": bson_of(&spec.header)?,
        "footer": spec.footer.as_deref(),
        "media": bson_of(&spec.media)?,
        "capture": bson_of(&spec.capture)?,
    })
}

mod erased {
    use crate::error::ApiError;

    /// Any optional part of a template, as BSON (`null` when absent, so a replace clears it).
    pub trait ToBson {
        fn to_bson(&self) -> Result<mongodb::bson::Bson, ApiError>;
    }

    impl<T: serde::Serialize> ToBson for Option<T> {
        fn to_bson(&self) -> Result<mongodb::bson::Bson, ApiError> {
            mongodb::bson::to_bson(self).map_err(|_| ApiError::Internal)
        }
    }
}

/// Who still points at `key`: active flow rules/fallback and other active templates' buttons.
pub async fn references(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
) -> Result<Vec<String>, ApiError> {
    let mut who = flow::references(store, tenant, key).await?;
    let pointing: Vec<TemplateDoc> = collection(store)
        .await?
        .find(doc! {
            "tenantId": *tenant,
            "isActive": true,
            "key": { "$ne": key.as_str() },
            "$or": [
                { "buttons.nextTemplateKey": key.as_str() },
                { "list.sections.rows.nextTemplateKey": key.as_str() },
                { "capture.nextTemplateKey": key.as_str() },
                { "capture.retryTemplateKey": key.as_str() },
            ],
        })
        .sort(doc! { "key": 1 })
        .await?
        .try_collect()
        .await?;
    for t in pointing.into_iter().map(|d| d.template) {
        for b in t
            .buttons
            .iter()
            .filter(|b| b.next_template_key.as_ref() == Some(key))
        {
            who.push(format!("template {} button {:?}", t.key, b.title.as_str()));
        }
        for r in t
            .list
            .iter()
            .flat_map(|l| l.rows())
            .filter(|r| r.next_template_key.as_ref() == Some(key))
        {
            who.push(format!("template {} row {:?}", t.key, r.title));
        }
        if let Some(c) = &t.capture
            && (&c.next_template_key == key || c.retry_template_key.as_ref() == Some(key))
        {
            who.push(format!("template {} capture", t.key));
        }
    }
    Ok(who)
}

async fn refuse_if_referenced(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
) -> Result<(), ApiError> {
    let who = references(store, tenant, key).await?;
    if who.is_empty() {
        return Ok(());
    }
    let mut extra = serde_json::Map::new();
    extra.insert("referencedBy".into(), json!(who));
    Err(ApiError::Conflict {
        message: format!("template {key} is still referenced by {}", who.join(", ")),
        extra,
    })
}

async fn update(
    store: &Store,
    current: &TemplateDoc,
    spec: &Template,
) -> Result<TemplateDoc, ApiError> {
    if current.template.is_active && !spec.is_active {
        refuse_if_referenced(store, &current.tenant_id, &current.template.key).await?;
    }
    let mut set = spec_fields(spec)?;
    set.insert("updatedAt", DateTime::now());
    let updated = collection(store)
        .await?
        .find_one_and_update(
            doc! { "_id": current.id, "tenantId": current.tenant_id },
            doc! { "$set": set, "$inc": { "version": 1_i64 } },
        )
        .return_document(ReturnDocument::After)
        .await?
        .ok_or_else(|| not_found(&current.template.key))?;
    Ok(updated)
}

async fn insert(
    store: &Store,
    tenant: &TenantId,
    template: Template,
) -> Result<Result<TemplateDoc, mongodb::error::Error>, ApiError> {
    let now = DateTime::now();
    let doc = TemplateDoc {
        id: ObjectId::new(),
        tenant_id: *tenant,
        template,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let inserted = collection(store).await?.insert_one(&doc).await.map(|_| doc);
    Ok(inserted)
}

/// `POST /templates`: no key → a new template under a generated key; an existing key →
/// update (version + 1); a new key → created under it. Returns the doc and whether it was
/// created.
pub async fn create_or_update(
    store: &Store,
    tenant: &TenantId,
    input: &TemplateInput,
) -> Result<(TemplateDoc, bool), ApiError> {
    let existing = existing_keys(store, tenant, &input.next_keys()?).await?;
    let Some(raw_key) = input.key.as_deref().filter(|k| !k.is_empty()) else {
        // Generated keys: 32 random bits per tenant; retry the rare collision.
        for _ in 0..5 {
            let key = TemplateKey::generate();
            let spec = input.validate(&key, &existing)?;
            match insert(store, tenant, spec).await? {
                Ok(doc) => return Ok((doc, true)),
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        return Err(ApiError::unavailable(
            "database",
            "could not generate a unique template key",
        ));
    };
    let key = TemplateKey::parse("key", raw_key)?;
    let spec = input.validate(&key, &existing)?;
    // Two attempts: a concurrent create of the same key turns ours into an update.
    for _ in 0..2 {
        if let Some(current) = find(store, tenant, &key).await? {
            return Ok((update(store, &current, &spec).await?, false));
        }
        match insert(store, tenant, spec.clone()).await? {
            Ok(doc) => return Ok((doc, true)),
            Err(e) if is_duplicate_key(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable("database", "template key contention"))
}

/// `PUT /templates/{key}`: full replace of an existing template, version + 1.
pub async fn replace(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
    input: &TemplateInput,
) -> Result<TemplateDoc, ApiError> {
    if let Some(k) = input.key.as_deref().filter(|k| !k.is_empty())
        && k != key.as_str()
    {
        return Err(ApiError::invalid("key", "must match the key in the path"));
    }
    let current = get(store, tenant, key).await?;
    let existing = existing_keys(store, tenant, &input.next_keys()?).await?;
    let spec = input.validate(key, &existing)?;
    update(store, &current, &spec).await
}

/// `DELETE /templates/{key}`: deactivates, unless something active still points to it.
pub async fn deactivate(
    store: &Store,
    tenant: &TenantId,
    key: &TemplateKey,
) -> Result<TemplateDoc, ApiError> {
    let current = get(store, tenant, key).await?;
    if !current.template.is_active {
        return Ok(current);
    }
    let spec = Template {
        is_active: false,
        ..current.template.clone()
    };
    update(store, &current, &spec).await
}
