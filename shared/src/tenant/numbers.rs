//! A tenant's WhatsApp numbers. A tenant sends from and is reached on each of its numbers;
//! `phoneNumberId` (the first) is where a message without `from` goes from. A number
//! belongs to one tenant at most: the unique multikey index on `numbers.phoneNumberId`
//! decides concurrent adds and registrations.
//!
//! Migration: a tenant stored before several numbers has only `phoneNumberId`; ensuring the
//! indexes gives it `numbers: [{phoneNumberId, status: "active"}]` first (see `store`), and
//! until then every read treats it so.

use mongodb::bson::{self, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use super::{PhoneNumberId, TenantView, duplicate_number, find};
use crate::{
    error::ApiError,
    ids::TenantId,
    store::{Store, is_duplicate_key},
};

/// Numbers per tenant (Meta allows up to 20 per WhatsApp Business Account once verified).
pub const NUMBERS_MAX: usize = 20;
const DISPLAY_MAX: usize = 32;

/// One of a tenant's numbers, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Number {
    pub phone_number_id: String,
    /// As customers see it (`+1 555 078 3881`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    #[serde(default = "active")]
    pub status: String,
}

fn active() -> String {
    "active".into()
}

impl Number {
    pub fn new(phone_number_id: &PhoneNumberId, display: Option<String>) -> Self {
        Self {
            phone_number_id: phone_number_id.as_str().to_owned(),
            display_phone_number: display,
            status: active(),
        }
    }

    pub fn to_document(&self) -> Result<Document, ApiError> {
        bson::to_document(self).map_err(|_| ApiError::Internal)
    }
}

/// The numbers of a stored tenant: `numbers`, or its one `phoneNumberId` before they existed.
pub fn or_legacy(numbers: Option<Vec<Number>>, phone_number_id: &str) -> Vec<Number> {
    match numbers {
        Some(n) if !n.is_empty() => n,
        _ => vec![Number {
            phone_number_id: phone_number_id.to_owned(),
            display_phone_number: None,
            status: active(),
        }],
    }
}

/// `POST /tenants/{tenantId}/numbers` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NumberRequest {
    pub phone_number_id: String,
    #[serde(default)]
    pub display_phone_number: Option<String>,
}

impl NumberRequest {
    pub fn parse(&self) -> Result<Number, ApiError> {
        let id = PhoneNumberId::parse("phoneNumberId", &self.phone_number_id)?;
        let display = parse_display(self.display_phone_number.as_deref())?;
        Ok(Number::new(&id, display))
    }
}

/// A display number: digits, spaces, `+`, `-`, parentheses; empty is none.
pub fn parse_display(s: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if s.chars().count() > DISPLAY_MAX
        || !s.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
    {
        return Err(ApiError::invalid(
            "displayPhoneNumber",
            format!("must be up to {DISPLAY_MAX} digits, spaces, '+', '-' or parentheses"),
        ));
    }
    Ok(Some(s.to_owned()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NumbersDoc {
    phone_number_id: String,
    #[serde(default)]
    numbers: Option<Vec<Number>>,
    updated_at: DateTime,
}

async fn current(store: &Store, tenant: &TenantId) -> Result<NumbersDoc, ApiError> {
    store
        .tenants()
        .await?
        .clone_with_type::<NumbersDoc>()
        .find_one(doc! { "_id": *tenant })
        .projection(doc! { "phoneNumberId": 1, "numbers": 1, "updatedAt": 1 })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("tenant {tenant} not found")))
}

/// Adds a number to the tenant (409 when any tenant has it, or the tenant has
/// [`NUMBERS_MAX`]). The caller drops its cached route for the number.
pub async fn add(
    store: &Store,
    tenant: &TenantId,
    number: &Number,
) -> Result<TenantView, ApiError> {
    let id = PhoneNumberId(number.phone_number_id.clone());
    let now = DateTime::now();
    let existing = current(store, tenant).await?;
    let mut numbers = or_legacy(existing.numbers.clone(), &existing.phone_number_id);
    if numbers.iter().any(|n| n.phone_number_id == id.as_str()) {
        return Err(duplicate_number(&id));
    }
    if numbers.len() >= NUMBERS_MAX {
        return Err(ApiError::conflict(format!(
            "a tenant has at most {NUMBERS_MAX} numbers: delete one first"
        )));
    }
    numbers.push(number.clone());
    replace(store, tenant, &existing, &numbers, now).await?;
    tracing::info!(tenantId = %tenant, phoneNumberId = id.as_str(), "number added");
    find(store, tenant).await
}

/// Removes a number (409 for the tenant's last one); when it was the first, the next one
/// becomes where messages without `from` go from. The caller drops its cached route.
pub async fn remove(
    store: &Store,
    tenant: &TenantId,
    number: &str,
) -> Result<TenantView, ApiError> {
    let existing = current(store, tenant).await?;
    let numbers = or_legacy(existing.numbers.clone(), &existing.phone_number_id);
    if !numbers.iter().any(|n| n.phone_number_id == number) {
        return Err(ApiError::not_found(format!(
            "number {number} is not one of this tenant's"
        )));
    }
    let left: Vec<Number> = numbers
        .into_iter()
        .filter(|n| n.phone_number_id != number)
        .collect();
    if left.is_empty() {
        return Err(ApiError::conflict(
            "a tenant keeps at least one number: add another before removing this one",
        ));
    }
    replace(store, tenant, &existing, &left, DateTime::now()).await?;
    tracing::info!(tenantId = %tenant, phoneNumberId = number, "number removed");
    find(store, tenant).await
}

/// Writes `numbers` (and the first as `phoneNumberId`) if the tenant is still as it was
/// read: a concurrent change is a 409 to retry, never a lost update.
async fn replace(
    store: &Store,
    tenant: &TenantId,
    read: &NumbersDoc,
    numbers: &[Number],
    now: DateTime,
) -> Result<(), ApiError> {
    let docs = numbers
        .iter()
        .map(Number::to_document)
        .collect::<Result<Vec<_>, _>>()?;
    // Every write to a tenant moves `updatedAt`: unchanged, nothing changed in between.
    let filter = doc! { "_id": *tenant, "updatedAt": read.updated_at };
    let first = numbers
        .first()
        .map(|n| n.phone_number_id.clone())
        .ok_or(ApiError::Internal)?;
    let r = store
        .tenants()
        .await?
        .update_one(
            filter,
            doc! { "$set": { "numbers": docs, "phoneNumberId": first, "updatedAt": now } },
        )
        .await;
    match r {
        Ok(r) if r.matched_count == 1 => Ok(()),
        Ok(_) => Err(ApiError::conflict(
            "the tenant's numbers changed meanwhile: read them and retry",
        )),
        Err(e) if is_duplicate_key(&e) => Err(ApiError::conflict(
            "one of these numbers is already registered to another tenant",
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_invalid_field() {
        let ok = NumberRequest {
            phone_number_id: "106540352242922".into(),
            display_phone_number: Some(" +1 555-078 (3881) ".into()),
        };
        let n = ok.parse().expect("valid");
        assert_eq!(n.display_phone_number.as_deref(), Some("+1 555-078 (3881)"));
        assert_eq!(n.status, "active");
        let bad = NumberRequest {
            phone_number_id: "12x".into(),
            display_phone_number: None,
        };
        assert!(
            matches!(bad.parse(), Err(ApiError::Unprocessable { field, .. }) if field == "phoneNumberId")
        );
        let bad = NumberRequest {
            phone_number_id: "106540352242922".into(),
            display_phone_number: Some("call me".into()),
        };
        assert!(
            matches!(bad.parse(), Err(ApiError::Unprocessable { field, .. }) if field == "displayPhoneNumber")
        );
    }

    #[test]
    fn a_tenant_from_before_numbers_has_its_one() {
        let n = or_legacy(None, "1555000");
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].phone_number_id, "1555000");
    }
}
