//! Messages, inbound and outbound, in one collection: the document model here, its
//! storage in [`store`], the path to the queue in [`crate::outbox`]. Every message carries
//! an idempotency key under a unique `(tenantId, idempotencyKey)` index: `in:<wamid>` for
//! inbound, `auto-reply:<inbound wamid>` for the engine's replies, the caller's key for
//! API sends.

pub mod store;

pub use store::{
    Inserted, Stored, apply_status, find_by_key, insert, insert_inbound, insert_with_reply, list,
    take_pending_statuses,
};

use mongodb::bson::{self, DateTime};
use serde::{Deserialize, Serialize};

use crate::{
    customer::StateUpdate,
    error::ApiError,
    ids::{MessageId, TenantId},
    queue::{Content, SendJob},
    template::TemplateKey,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "IN")]
    In,
    #[serde(rename = "OUT")]
    Out,
}

/// Delivery status. The rank only moves forward (see [`Status::rank`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Received,
    Queued,
    /// Outbound, undelivered: the tenant's token was refused; sent once it is replaced.
    Held,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl Status {
    /// sent < delivered < read; `failed` is terminal and only overrides up to `sent`.
    pub fn rank(self) -> i32 {
        match self {
            Status::Received | Status::Queued | Status::Held | Status::Sending => 0,
            Status::Sent => 1,
            Status::Delivered => 2,
            Status::Read => 3,
            Status::Failed => 4,
        }
    }

    /// A status as Meta reports it in a status webhook: only Meta's four, so a webhook
    /// can never set one of ours (`queued`, `held`, ...).
    pub fn from_meta(s: &str) -> Option<Self> {
        s.parse().ok().filter(|s| {
            matches!(
                s,
                Status::Sent | Status::Delivered | Status::Read | Status::Failed
            )
        })
    }

    pub const ALL: [Status; 8] = [
        Status::Received,
        Status::Queued,
        Status::Held,
        Status::Sending,
        Status::Sent,
        Status::Delivered,
        Status::Read,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Queued => "queued",
            Status::Held => "held",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Read => "read",
            Status::Failed => "failed",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = ();

    /// Any of our statuses, by its stored name.
    fn from_str(s: &str) -> Result<Self, ()> {
        Status::ALL.into_iter().find(|x| x.as_str() == s).ok_or(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageError {
    pub code: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// Why the bot sent an auto-reply, as analytics counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `button` (a reply button or list row), `rule`, `fallback`, `captured`, `retry`,
    /// `reset`, `opt_out`, `opt_in`, `handoff`.
    pub kind: String,
    /// The template whose option was tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The tapped button's or list row's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// The flow rule that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDoc {
    #[serde(rename = "_id")]
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub direction: Direction,
    /// `text`, `button_reply`, `list_reply`, `button`, `image`, ... (inbound) or the
    /// content kind (outbound).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_message_id: Option<String>,
    pub customer_wa_id: String,
    /// The tenant's number: the one written to (inbound), the one it goes from (outbound;
    /// none: the tenant's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    pub idempotency_key: String,
    pub status: Status,
    pub status_rank: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bson::Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_timestamp: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_key: Option<TemplateKey>,
    /// `auto_reply` or `api` for outbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// An auto-reply: why the bot sent it (a tapped option, a rule, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// An auto-reply: when the customer wrote the message it answers (time to reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_at: Option<DateTime>,
    /// The conversation change this reply makes, re-applied if a retry finishes the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_update: Option<StateUpdate>,
    #[serde(default)]
    pub attempts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<MessageError>,
    /// Outbound: whether this message's job is on its way to the queue. Stored `true` by
    /// the request that enqueues it right after the insert (no second write on the usual
    /// path); set `false` when that enqueue fails, and the relay re-enqueues it after its
    /// grace. A request cut off between the two is retried by its caller, or the relay
    /// finds the job lost once it has not been attempted for its stale period.
    #[serde(default = "enqueued_default")]
    pub enqueued: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<DateTime>,
    /// When each status was reached (`statusAt.sent`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_at: Option<bson::Document>,
    /// An inbound file: Meta's media id (download it through `GET /media/{id}`), type,
    /// checksum, caption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<InboundMedia>,
    /// The sender's claim: no other delivery attempt starts before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

fn enqueued_default() -> bool {
    true
}

impl MessageDoc {
    fn new(
        tenant: &TenantId,
        direction: Direction,
        kind: String,
        customer: &str,
        key: String,
        status: Status,
    ) -> Self {
        let now = DateTime::now();
        Self {
            id: MessageId::generate(),
            tenant_id: *tenant,
            direction,
            kind,
            body: None,
            payload_id: None,
            wa_message_id: None,
            customer_wa_id: customer.to_owned(),
            phone_number_id: None,
            idempotency_key: key,
            status,
            status_rank: status.rank(),
            raw: None,
            wa_timestamp: None,
            content: None,
            template_key: None,
            source: None,
            in_reply_to: None,
            trigger: None,
            inbound_at: None,
            state_update: None,
            attempts: 0,
            last_error: None,
            enqueued: true,
            enqueued_at: (direction == Direction::Out).then_some(now),
            status_at: None,
            media: None,
            lease_until: Some(DateTime::from_millis(0)),
            created_at: now,
            updated_at: now,
        }
    }

    /// An inbound message, keyed `in:<wamid>`: the fields every inbound kind has; the
    /// webhook fills in the rest of what Meta sent.
    pub fn inbound(tenant: &TenantId, wamid: &str, kind: &str, from: &str) -> Self {
        let mut doc = Self::new(
            tenant,
            Direction::In,
            kind.to_owned(),
            from,
            format!("in:{wamid}"),
            Status::Received,
        );
        doc.wa_message_id = Some(wamid.to_owned());
        doc
    }

    pub fn outbound(
        tenant: &TenantId,
        to: &str,
        idempotency_key: String,
        content: Content,
        source: &str,
    ) -> Self {
        let mut doc = Self::new(
            tenant,
            Direction::Out,
            content.kind.as_str().into(),
            to,
            idempotency_key,
            Status::Queued,
        );
        doc.body = Some(content.text.clone());
        doc.content = Some(content);
        doc.source = Some(source.into());
        doc
    }

    /// The API's view of a message.
    pub fn view(&self) -> MessageView {
        let status_at = self
            .status_at
            .iter()
            .flat_map(|d| d.iter())
            .filter_map(|(k, v)| Some((k.clone(), crate::ids::rfc3339(*v.as_datetime()?))))
            .collect();
        MessageView {
            id: self.id.to_hex(),
            direction: self.direction,
            kind: self.kind.clone(),
            customer_wa_id: self.customer_wa_id.clone(),
            phone_number_id: self.phone_number_id.clone(),
            body: self.body.clone(),
            payload_id: self.payload_id.clone(),
            status: self.status,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            wa_message_id: self.wa_message_id.clone(),
            enqueued: self.enqueued,
            template_key: self.template_key.clone(),
            source: self.source.clone(),
            idempotency_key: self
                .idempotency_key
                .strip_prefix(API_KEY_PREFIX)
                .unwrap_or(&self.idempotency_key)
                .to_owned(),
            status_at,
            media: self.media.clone(),
            created_at: crate::ids::rfc3339(self.created_at),
            updated_at: crate::ids::rfc3339(self.updated_at),
        }
    }

    /// The SQS job for an outbound message.
    pub fn job(&self) -> Option<SendJob> {
        Some(SendJob {
            tenant_id: self.tenant_id,
            message_id: self.id,
            to: self.customer_wa_id.clone(),
            from: self.phone_number_id.clone(),
            content: self.content.clone()?,
            idempotency_key: self.idempotency_key.clone(),
            not_before: None,
            customer_booked: false,
        })
    }
}

/// What the API shows of a message (`GET /messages`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub id: String,
    pub direction: Direction,
    #[serde(rename = "type")]
    pub kind: String,
    pub customer_wa_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_id: Option<String>,
    pub status: Status,
    pub attempts: i32,
    pub last_error: Option<MessageError>,
    pub wa_message_id: Option<String>,
    pub enqueued: bool,
    pub template_key: Option<TemplateKey>,
    pub source: Option<String>,
    /// The caller's key as it was sent (without the stored `api:` prefix).
    pub idempotency_key: String,
    /// When each status was reached.
    pub status_at: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<InboundMedia>,
    pub created_at: String,
    pub updated_at: String,
}

/// A file a customer sent, as Meta described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundMedia {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// API sends store the caller's key under this prefix, so it can never collide with the
/// keys the webhook derives from wamids.
pub const API_KEY_PREFIX: &str = "api:";

/// Filters of `GET /messages`.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub to: Option<String>,
    pub status: Option<Status>,
    pub direction: Option<Direction>,
    pub before: Option<DateTime>,
    pub limit: i64,
}

/// `GET /messages` query parameters as sent.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub to: Option<String>,
    pub status: Option<String>,
    pub direction: Option<String>,
    pub limit: Option<String>,
    pub before: Option<String>,
}

impl ListFilter {
    /// Validates `GET /messages` query parameters (422 naming the parameter).
    pub fn parse(q: &ListQuery) -> Result<Self, ApiError> {
        let status = match q.status.as_deref() {
            None | Some("") => None,
            Some(s) => Some(s.parse::<Status>().map_err(|_| {
                ApiError::invalid(
                    "status",
                    "must be received, queued, held, sending, sent, delivered, read or failed",
                )
            })?),
        };
        let direction = match q
            .direction
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("") => None,
            Some("IN") => Some(Direction::In),
            Some("OUT") => Some(Direction::Out),
            Some(_) => return Err(ApiError::invalid("direction", "must be IN or OUT")),
        };
        let limit = match q.limit.as_deref() {
            None | Some("") => 50,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=200).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid("limit", "must be a whole number from 1 to 200")
                })?,
        };
        let before = match q.before.as_deref() {
            None | Some("") => None,
            Some(b) => Some(DateTime::parse_rfc3339_str(b).map_err(|_| {
                ApiError::invalid(
                    "before",
                    "must be an RFC 3339 timestamp (a message's createdAt)",
                )
            })?),
        };
        let to = match q.to.as_deref() {
            None | Some("") => None,
            Some(t) => Some(crate::ids::Recipient::parse(t)?.as_str().to_owned()),
        };
        Ok(ListFilter {
            to,
            status,
            direction,
            before,
            limit,
        })
    }
}
