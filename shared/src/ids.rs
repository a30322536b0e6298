//! Ids and small value types every layer shares: the bottom of the crate, so the domain
//! modules above can name each other's ids without importing each other.

use std::fmt;

use mongodb::bson::oid::ObjectId;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// A tenant's id: a MongoDB ObjectId, shown as 24 hex characters. Stored as the ObjectId
/// itself (`serde(transparent)`); in JSON jobs as hex (see [`hex_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(ObjectId);

impl TenantId {
    pub fn generate() -> Self {
        Self(ObjectId::new())
    }

    /// Path parameter → id; anything else is a 400 naming `tenantId`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        ObjectId::parse_str(s)
            .map(Self)
            .map_err(|_| ApiError::bad_request("tenantId must be a 24-character hex id"))
    }

    pub fn object_id(&self) -> ObjectId {
        self.0
    }
}

impl From<ObjectId> for TenantId {
    fn from(id: ObjectId) -> Self {
        Self(id)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

impl From<TenantId> for mongodb::bson::Bson {
    fn from(id: TenantId) -> Self {
        Self::ObjectId(id.0)
    }
}

/// A stored message's id (an ObjectId); the `messageId` of the API and of send jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(ObjectId);

impl MessageId {
    pub fn generate() -> Self {
        Self(ObjectId::new())
    }

    pub fn parse(s: &str) -> Option<Self> {
        ObjectId::parse_str(s).ok().map(Self)
    }

    pub fn object_id(&self) -> ObjectId {
        self.0
    }

    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }
}

impl From<ObjectId> for MessageId {
    fn from(id: ObjectId) -> Self {
        Self(id)
    }
}

impl From<MessageId> for mongodb::bson::Bson {
    fn from(id: MessageId) -> Self {
        Self::ObjectId(id.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

/// An ObjectId-backed id as 24 hex characters in JSON (send jobs keep the seed's shape):
/// `#[serde(with = "crate::ids::hex_id")]`.
pub mod hex_id {
    use mongodb::bson::oid::ObjectId;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, T: Copy + Into<mongodb::bson::Bson>>(
        id: &T,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match (*id).into() {
            mongodb::bson::Bson::ObjectId(o) => s.serialize_str(&o.to_hex()),
            _ => Err(serde::ser::Error::custom("not an ObjectId")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: From<ObjectId>>(d: D) -> Result<T, D::Error> {
        let s = String::deserialize(d)?;
        ObjectId::parse_str(&s)
            .map(T::from)
            .map_err(|_| D::Error::custom("must be a 24-character hex id"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Disabled,
}

/// What the webhook needs of a tenant, cached by phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRef {
    pub id: TenantId,
    pub status: TenantStatus,
}

/// A WhatsApp recipient: E.164, 7–15 digits, stored without the `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient(String);

impl Recipient {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        let digits = s.strip_prefix('+').unwrap_or(s);
        if (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(Self(digits.to_owned()))
        } else {
            Err(ApiError::invalid(
                "to",
                "must be an E.164 number: optional '+' then 7–15 digits, no leading 0",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored time as the API shows it (RFC 3339, UTC, milliseconds).
pub fn rfc3339(d: mongodb::bson::DateTime) -> String {
    d.try_to_rfc3339_string().unwrap_or_default()
}

/// Random lowercase hex of `bytes` bytes (generated keys and ids).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub const KEY_MAX: usize = 64;
pub const STATE_MAX: usize = 64;

/// A template's key: `[A-Za-z0-9_.-]{1,64}`; generated ones are `tmpl_` + 8 hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TemplateKey(String);

impl TemplateKey {
    pub fn parse(field: &str, s: &str) -> Result<Self, ApiError> {
        let ok = (1..=KEY_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ApiError::invalid(
                field,
                "must be 1–64 characters of letters, digits, '_', '-' or '.'",
            ))
        }
    }

    pub fn generate() -> Self {
        Self(format!("tmpl_{}", random_hex(4)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation state name set by a button or a rule (≤ 64 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StateName(String);

impl StateName {
    pub fn parse(field: &str, s: &str) -> Result<Option<Self>, ApiError> {
        let s = s.trim();
        match s.chars().count() {
            0 => Ok(None),
            n if n > STATE_MAX => Err(ApiError::invalid(
                field,
                format!("must be at most {STATE_MAX} characters"),
            )),
            _ => Ok(Some(Self(s.to_owned()))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_e164_normalised() {
        assert_eq!(
            Recipient::parse("+34600111222").expect("valid").0,
            "34600111222"
        );
        assert!(Recipient::parse("1234567").is_ok());
        assert!(Recipient::parse("123456789012345").is_ok());
        for bad in [
            "123456",
            "1234567890123456",
            "+34 600 111 222",
            "abc",
            "",
            "0034600111222",
            "++34600111222",
        ] {
            assert!(Recipient::parse(bad).is_err(), "{bad}");
        }
    }
}
