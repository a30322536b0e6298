//! A tenant's settings: pacing, the WhatsApp Business Account and the conversation
//! settings (`PATCH /tenants/{tenantId}`), checked as a whole before one write.

use mongodb::bson::{self, DateTime, doc};
use serde::Deserialize;

use super::{TenantView, WabaId, find};
use crate::{
    engine::{self, BotSettings},
    error::ApiError,
    ids::{TemplateKey, TenantId, TenantStatus},
    pacing::Pacing,
    store::Store,
};

/// `PATCH /tenants/{tenantId}` body: any subset of the settings; unknown fields are refused
/// (a typo must not look like a saved setting).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    pub throughput_per_second: Option<u32>,
    pub customer_burst: Option<u32>,
    pub customer_interval_seconds: Option<f64>,
    pub marketing_backoff_minutes: Option<u32>,
    /// The WhatsApp Business Account (Meta templates); `""` clears it.
    pub waba_id: Option<String>,
    pub reset_keywords: Option<Vec<String>>,
    /// `""` clears it.
    pub start_template_key: Option<String>,
    pub opt_out_keywords: Option<Vec<String>>,
    pub opt_in_keywords: Option<Vec<String>>,
    pub handoff_minutes: Option<u32>,
    /// `"active"` or `"disabled"`: a disabled tenant's keys get 403, its sends 409
    /// `tenant_disabled`, its inbound messages are stored but not answered, and its queued
    /// messages are held until it is active again.
    pub status: Option<String>,
}

impl SettingsPatch {
    /// The start template this patch names, for the caller to check that it exists.
    pub fn start_template(&self) -> Result<Option<TemplateKey>, ApiError> {
        match self.start_template_key.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(k) => TemplateKey::parse("startTemplateKey", k).map(Some),
        }
    }

    /// The conversation settings after this patch, checked (`start` already looked up).
    pub fn bot(&self, current: BotSettings, start_exists: bool) -> Result<BotSettings, ApiError> {
        let keywords = |field: &str, v: &Option<Vec<String>>, cur: Vec<String>| match v {
            Some(v) => engine::parse_keywords(field, v),
            None => Ok(cur),
        };
        let start_template_key = match (&self.start_template_key, self.start_template()?) {
            (None, _) => current.start_template_key,
            (Some(_), None) => None,
            (Some(_), Some(k)) if start_exists => Some(k),
            (Some(_), Some(k)) => {
                return Err(ApiError::invalid(
                    "startTemplateKey",
                    format!("template {k} does not exist (or is inactive) for this tenant"),
                ));
            }
        };
        let handoff_minutes = self.handoff_minutes.unwrap_or(current.handoff_minutes);
        if !(1..=engine::HANDOFF_MINUTES_MAX).contains(&handoff_minutes) {
            return Err(ApiError::invalid(
                "handoffMinutes",
                format!("must be 1–{}", engine::HANDOFF_MINUTES_MAX),
            ));
        }
        let next = BotSettings {
            reset_keywords: keywords(
                "resetKeywords",
                &self.reset_keywords,
                current.reset_keywords,
            )?,
            start_template_key,
            opt_out_keywords: keywords(
                "optOutKeywords",
                &self.opt_out_keywords,
                current.opt_out_keywords,
            )?,
            opt_in_keywords: keywords(
                "optInKeywords",
                &self.opt_in_keywords,
                current.opt_in_keywords,
            )?,
            handoff_minutes,
        };
        let fold = |w: &String| w.trim().to_lowercase();
        if let Some(w) = next
            .opt_out_keywords
            .iter()
            .find(|w| next.opt_in_keywords.iter().any(|i| fold(i) == fold(w)))
        {
            return Err(ApiError::invalid(
                "optInKeywords",
                format!("{w:?} cannot opt in and out at once"),
            ));
        }
        Ok(next)
    }
}

impl SettingsPatch {
    /// The status this patch sets, checked.
    pub fn status(&self) -> Result<Option<TenantStatus>, ApiError> {
        match self.status.as_deref() {
            None => Ok(None),
            Some("active") => Ok(Some(TenantStatus::Active)),
            Some("disabled") => Ok(Some(TenantStatus::Disabled)),
            Some(_) => Err(ApiError::invalid(
                "status",
                "must be \"active\" or \"disabled\"",
            )),
        }
    }

    /// The settings after this patch, checked.
    pub fn apply(&self, current: Pacing) -> Result<Pacing, ApiError> {
        let next = Pacing {
            throughput_per_second: self
                .throughput_per_second
                .unwrap_or(current.throughput_per_second),
            customer_burst: self.customer_burst.unwrap_or(current.customer_burst),
            customer_interval_seconds: self
                .customer_interval_seconds
                .unwrap_or(current.customer_interval_seconds),
            marketing_backoff_minutes: self
                .marketing_backoff_minutes
                .unwrap_or(current.marketing_backoff_minutes),
        };
        next.validate()?;
        Ok(next)
    }
}

/// Changes a tenant's settings; every sender instance uses the pacing within the sending
/// profile's cache lifetime (4 s), every webhook the conversation settings within the bot
/// configuration's (`CONFIG_CACHE_TTL_SECS`).
pub async fn update_settings(
    store: &Store,
    id: &TenantId,
    patch: &SettingsPatch,
) -> Result<TenantView, ApiError> {
    let current = find(store, id).await?;
    let next = patch.apply(current.settings)?;
    let start_exists = match patch.start_template()? {
        Some(k) => !crate::template::existing_keys(store, id, std::slice::from_ref(&k))
            .await?
            .is_empty(),
        None => false,
    };
    let bot = patch.bot(current.bot, start_exists)?;
    let pacing = bson::to_bson(&next).map_err(|_| ApiError::Internal)?;
    let bot = bson::to_bson(&bot).map_err(|_| ApiError::Internal)?;
    let status = patch.status()?;
    let mut set = doc! { "pacing": pacing, "bot": bot, "updatedAt": DateTime::now() };
    if let Some(w) = &patch.waba_id {
        set.insert("wabaId", WabaId::parse(w)?.map(|w| w.0));
    }
    let mut update = doc! {};
    if let Some(status) = status {
        set.insert(
            "status",
            bson::to_bson(&status).map_err(|_| ApiError::Internal)?,
        );
        if status == TenantStatus::Active && current.status == TenantStatus::Disabled {
            // A message held on the disabled profile meanwhile sees a new version and is
            // released by the sender that held it (as after a token replacement).
            update.insert("$inc", doc! { "tokenVersion": 1_i64 });
        }
    }
    update.insert("$set", set);
    store
        .tenants()
        .await?
        .update_one(doc! { "_id": *id }, update)
        .await?;
    tracing::info!(tenantId = %id, throughputPerSecond = next.throughput_per_second, status = ?status, "tenant settings changed");
    find(store, id).await
}

/// The tenant's conversation settings (defaults when never set).
pub async fn bot_settings(store: &Store, id: &TenantId) -> Result<BotSettings, ApiError> {
    let doc = store
        .tenants()
        .await?
        .find_one(doc! { "_id": id })
        .projection(doc! { "bot": 1 })
        .await?;
    Ok(doc
        .and_then(|d| d.get_document("bot").ok().cloned())
        .and_then(|b| bson::from_document(b).ok())
        .unwrap_or_default())
}
