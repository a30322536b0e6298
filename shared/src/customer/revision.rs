//! Conversations with the revision of the document they were read from.
//!
//! The webhook decides on a conversation it remembers (in Redis, beside the message's
//! idempotency lock) and writes the decision with one conditional update: it applies only
//! while the document is still at the revision decided on. Anything else that changes a
//! conversation moves `rev` on, so a stale memory costs a fresh read and a second decision,
//! never a decision written over a newer state. The decision travels with the write
//! (`lastReply`), so a request cut off after it finishes with the same reply on retry
//! instead of deciding again on the state it already moved on.

use mongodb::bson::{self, DateTime, Document, doc, oid::ObjectId};
use serde::{Deserialize, Serialize};

use super::{Conversation, StateUpdate, collection, state_change};
use crate::{error::ApiError, ids::TenantId, store::is_duplicate_key};

/// How long a customer's conversation stays remembered in Redis after their last message
/// or the last change to it.
pub const MEMO_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Where a customer's conversation is remembered. The idempotency lock keys of the
/// customer's messages and sends carry the same hash tag, so a lock and the memory live on
/// one Redis Cluster slot and one script reads both.
pub fn memo_key(tenant: &TenantId, wa_id: &str) -> String {
    format!("wa:conv:{{{tenant}:{wa_id}}}")
}

/// What every inbound message records of its customer: their profile name, when they wrote
/// (see [`super::wrote_at`]) and when we saw it.
#[derive(Debug, Clone, Copy)]
pub struct Touch<'a> {
    pub name: Option<&'a str>,
    pub wrote_at: DateTime,
    pub now: DateTime,
}

impl Touch<'_> {
    /// The touch alone, for an upsert.
    fn change(&self) -> Document {
        doc! {
            "$set": self.set(),
            "$max": { "lastInboundAt": self.wrote_at },
            "$setOnInsert": { "firstSeenAt": self.now },
        }
    }

    fn set(&self) -> Document {
        let mut set = doc! { "lastSeenAt": self.now, "updatedAt": self.now };
        if let Some(name) = self.name {
            set.insert("name", name);
        }
        set
    }
}

/// A conversation as of revision `rev` of its document, with the customer's last message
/// time (the API's window check reads it from the same memory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The document's `_id`, so [`advance`] finds it by primary key: SecantusDB, the local
    /// database, scans the whole collection for `tenantId` + `waId` + `rev` (`rev` is not in
    /// the `(tenantId, waId)` index). `None` in a memo written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<ObjectId>,
    pub rev: i64,
    #[serde(rename = "c")]
    pub conversation: Conversation,
    #[serde(rename = "in", default)]
    pub last_inbound_at: Option<DateTime>,
}

impl Snapshot {
    /// The remembered form: `<rev>:<json>` (the revision first, so Redis keeps the newest
    /// without parsing JSON).
    pub fn to_memo(&self) -> Option<String> {
        serde_json::to_string(self)
            .ok()
            .map(|json| format!("{}:{json}", self.rev))
    }

    pub fn from_memo(memo: &str) -> Option<Self> {
        let (_, json) = memo.split_once(':')?;
        serde_json::from_str(json).ok()
    }

    /// This snapshot after [`advance`] wrote a decision on it (with its change, if any).
    pub fn advanced(
        &self,
        wrote_at: DateTime,
        update: Option<&StateUpdate>,
        now: DateTime,
    ) -> Self {
        Self {
            rev: self.rev + 1,
            conversation: match update {
                Some(u) => self.conversation.applied(u, now),
                None => self.conversation.clone(),
            },
            ..self.touched(wrote_at)
        }
    }

    /// This snapshot after [`touch`]: the revision stays.
    pub fn touched(&self, wrote_at: DateTime) -> Self {
        Self {
            id: self.id,
            rev: self.rev,
            conversation: self.conversation.clone(),
            last_inbound_at: Some(self.last_inbound_at.map_or(wrote_at, |t| t.max(wrote_at))),
        }
    }
}

impl Conversation {
    /// The conversation after `update`, exactly as [`super::apply`] leaves the document.
    pub fn applied(&self, update: &StateUpdate, now: DateTime) -> Self {
        let mut c = self.clone();
        if update.reset {
            c.state = None;
            c.vars.clear();
            c.capture_attempts = 0;
        }
        if let Some(k) = &update.last_template_key {
            c.last_template_key = Some(k.clone());
        }
        if let Some(s) = &update.state {
            c.state = Some(s.clone());
        }
        for (name, value) in &update.vars {
            c.vars.insert(name.clone(), value.clone());
        }
        if let Some(n) = update.capture_attempts {
            c.capture_attempts = n;
        }
        if let Some(until) = update.handoff_until {
            c.handoff_until = Some(until);
        }
        match update.opted_out {
            Some(true) => c.opted_out_at = Some(now),
            Some(false) => c.opted_out_at = None,
            None => {}
        }
        c
    }
}

/// The decision a message led to, kept in the customer's document with the change it made.
#[derive(Debug, Clone, PartialEq)]
pub struct LastReply {
    /// The inbound message decided on.
    pub wamid: String,
    /// The reply (a stored message), when there is one.
    pub message: Option<Document>,
}

impl LastReply {
    fn to_bson(&self) -> Document {
        let mut d = doc! { "wamid": &self.wamid };
        if let Some(m) = &self.message {
            d.insert("message", m.clone());
        }
        d
    }
}

/// The fields a decision needs.
pub(super) static PROJECTION: std::sync::LazyLock<Document> = std::sync::LazyLock::new(|| {
    doc! {
        "state": 1, "lastTemplateKey": 1, "vars": 1, "captureAttempts": 1,
        "handoffUntil": 1, "optedOutAt": 1, "rev": 1, "lastInboundAt": 1, "lastReply": 1,
    }
});

pub(super) fn read_snapshot(doc: &Document) -> (Snapshot, Option<LastReply>) {
    let conversation: Conversation = bson::from_document(doc.clone()).unwrap_or_default();
    let rev = match doc.get("rev") {
        Some(bson::Bson::Int64(n)) => *n,
        Some(bson::Bson::Int32(n)) => i64::from(*n),
        _ => 0,
    };
    let last_reply = doc.get_document("lastReply").ok().and_then(|r| {
        Some(LastReply {
            wamid: r.get_str("wamid").ok()?.to_owned(),
            message: r.get_document("message").ok().cloned(),
        })
    });
    (
        Snapshot {
            id: doc.get_object_id("_id").ok(),
            rev,
            conversation,
            last_inbound_at: doc.get_datetime("lastInboundAt").ok().copied(),
        },
        last_reply,
    )
}

/// The revision filter: documents written before revisions existed have none.
fn at_revision(rev: i64) -> bson::Bson {
    if rev == 0 {
        bson::Bson::Document(doc! { "$exists": false })
    } else {
        bson::Bson::Int64(rev)
    }
}

/// First sight of a customer: their document is created with the decision taken on an
/// empty conversation (`after`); its `_id`. `None`: the customer exists, nothing was written.
pub async fn create(
    store: &crate::store::Store,
    tenant: &TenantId,
    wa_id: &str,
    touch: &Touch<'_>,
    after: &Conversation,
    last_reply: &LastReply,
) -> Result<Option<ObjectId>, ApiError> {
    let id = ObjectId::new();
    let mut d = touch.set();
    d.insert("_id", id);
    d.insert("tenantId", *tenant);
    d.insert("waId", wa_id);
    d.insert("firstSeenAt", touch.now);
    d.insert("lastInboundAt", touch.wrote_at);
    d.insert("rev", 1_i64);
    d.insert("lastReply", last_reply.to_bson());
    let conversation =
        bson::to_document(after).map_err(|e| ApiError::unavailable("database", e))?;
    for (k, v) in conversation {
        let empty = match &v {
            bson::Bson::Null => true,
            bson::Bson::Document(d) => d.is_empty(),
            bson::Bson::Int32(0) | bson::Bson::Int64(0) => k == "captureAttempts",
            _ => false,
        };
        if !empty {
            d.insert(k, v);
        }
    }
    match collection(store).await?.insert_one(d).await {
        Ok(_) => Ok(Some(id)),
        Err(e) if is_duplicate_key(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records the message (see [`Touch`]) and reads the conversation to decide on, with the
/// decision stored by the last message. One round trip.
pub async fn read(
    store: &crate::store::Store,
    tenant: &TenantId,
    wa_id: &str,
    touch: &Touch<'_>,
) -> Result<(Snapshot, Option<LastReply>), ApiError> {
    let doc = collection(store)
        .await?
        .find_one_and_update(doc! { "tenantId": *tenant, "waId": wa_id }, touch.change())
        .upsert(true)
        .return_document(mongodb::options::ReturnDocument::After)
        .projection(PROJECTION.clone())
        .await?
        .unwrap_or_default();
    Ok(read_snapshot(&doc))
}

/// Records the message, the change decided on `base` and the decision itself, if the
/// conversation is still at `base`'s revision. `false`: it moved on; nothing was written.
pub async fn advance(
    store: &crate::store::Store,
    tenant: &TenantId,
    wa_id: &str,
    touch: &Touch<'_>,
    base: &Snapshot,
    update: Option<&StateUpdate>,
    last_reply: &LastReply,
) -> Result<bool, ApiError> {
    let (mut set, unset) = match update {
        Some(u) => state_change(u, touch.now),
        None => (Document::new(), Document::new()),
    };
    set.extend(touch.set());
    set.insert("lastReply", last_reply.to_bson());
    let mut change = doc! {
        "$set": set,
        "$max": { "lastInboundAt": touch.wrote_at },
        "$inc": { "rev": 1_i64 },
    };
    if !unset.is_empty() {
        change.insert("$unset", unset);
    }
    let mut filter = Document::new();
    if let Some(id) = base.id {
        filter.insert("_id", id);
    }
    filter.insert("tenantId", *tenant);
    filter.insert("waId", wa_id);
    filter.insert("rev", at_revision(base.rev));
    let r = collection(store).await?.update_one(filter, change).await?;
    Ok(r.matched_count == 1)
}

/// Records a message that decides nothing (a reaction, a message while a human has the
/// conversation): the revision stays. One round trip.
pub async fn touch(
    store: &crate::store::Store,
    tenant: &TenantId,
    wa_id: &str,
    touch: &Touch<'_>,
) -> Result<(), ApiError> {
    collection(store)
        .await?
        .update_one(doc! { "tenantId": *tenant, "waId": wa_id }, touch.change())
        .upsert(true)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_reads_back_what_was_remembered() {
        let mut c = Conversation {
            state: Some("ask_name".into()),
            handoff_until: Some(DateTime::from_millis(1_800_000_000_000)),
            capture_attempts: 2,
            ..Conversation::default()
        };
        c.vars.insert("name".into(), "Ana".into());
        let s = Snapshot {
            id: Some(ObjectId::new()),
            rev: 7,
            conversation: c,
            last_inbound_at: Some(DateTime::from_millis(1_795_341_600_000)),
        };
        let memo = s.to_memo().expect("memo");
        assert!(memo.starts_with("7:"), "{memo}");
        assert_eq!(Snapshot::from_memo(&memo), Some(s));
        assert_eq!(Snapshot::from_memo("garbage"), None);
    }

    #[test]
    fn applied_mirrors_the_stored_change() {
        let now = DateTime::from_millis(1_000);
        let mut base = Conversation {
            state: Some("a".into()),
            capture_attempts: 2,
            ..Conversation::default()
        };
        base.vars.insert("x".into(), "1".into());
        let reset = StateUpdate {
            reset: true,
            vars: [("y".to_owned(), "2".to_owned())].into(),
            opted_out: Some(true),
            ..StateUpdate::default()
        };
        let after = base.applied(&reset, now);
        assert_eq!(after.state, None);
        assert_eq!(after.capture_attempts, 0);
        assert_eq!(after.vars.len(), 1);
        assert_eq!(after.vars.get("y").map(String::as_str), Some("2"));
        assert_eq!(after.opted_out_at, Some(now));
        let back = after.applied(
            &StateUpdate {
                opted_out: Some(false),
                state: Some("b".into()),
                ..StateUpdate::default()
            },
            now,
        );
        assert_eq!(
            (back.state.as_deref(), back.opted_out_at),
            (Some("b"), None)
        );
    }

    #[test]
    fn a_snapshot_advances_its_revision_only_with_a_decision() {
        let s = Snapshot {
            rev: 3,
            last_inbound_at: Some(DateTime::from_millis(5_000)),
            ..Snapshot::default()
        };
        let now = DateTime::from_millis(9_000);
        let touched = s.touched(DateTime::from_millis(4_000));
        assert_eq!(touched.rev, 3);
        assert_eq!(touched.last_inbound_at, Some(DateTime::from_millis(5_000)));
        let changed = s.advanced(
            DateTime::from_millis(6_000),
            Some(&StateUpdate::default()),
            now,
        );
        assert_eq!(changed.rev, 4);
        assert_eq!(changed.last_inbound_at, Some(DateTime::from_millis(6_000)));
    }
}
