//! MongoDB access. Indexes are checked once per process, on first use: a cold start reads
//! one marker document that names the index set last created (one round trip on one
//! connection); only when the set changed (a deploy that adds an index, a new database)
//! does it create them, one command per collection, all at once. A warm request costs none.

use mongodb::{
    Collection, Database, IndexModel,
    bson::{Document, doc},
    error::{Error, ErrorKind, WriteFailure},
    options::IndexOptions,
};
use tokio::sync::OnceCell;

use crate::error::ApiError;

pub struct Store {
    db: Database,
    indexes: OnceCell<()>,
}

impl Store {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            indexes: OnceCell::new(),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The database, with indexes guaranteed. A failure is retried on the next call.
    pub async fn ready(&self) -> Result<&Database, ApiError> {
        self.indexes
            .get_or_try_init(|| ensure_indexes(&self.db))
            .await
            .map_err(|e| ApiError::unavailable("database", e))?;
        Ok(&self.db)
    }

    pub async fn tenants(&self) -> Result<Collection<Document>, ApiError> {
        self.collection(TENANTS).await
    }

    pub async fn collection<T: Send + Sync>(&self, name: &str) -> Result<Collection<T>, ApiError> {
        Ok(self.ready().await?.collection(name))
    }
}

pub const TENANTS: &str = "tenants";
pub const TEMPLATES: &str = "templates";
pub const FLOWS: &str = "flows";
pub const MESSAGES: &str = "messages";
pub const CUSTOMERS: &str = "customers";
pub const META_TEMPLATES: &str = "metaTemplates";
pub const EVENT_SUBSCRIPTIONS: &str = "eventSubscriptions";
/// Attempts to forward events (see `forwarder`), kept 7 days.
pub const EVENT_DELIVERIES: &str = "eventDeliveries";
/// Statuses that arrived before the sender recorded their wamid (see `message::store`).
pub const PENDING_STATUSES: &str = "pendingStatuses";
/// `{_id: "indexes", fingerprint, at}`: the index set (and one-time steps) last applied.
/// Deleting the document makes the next cold start apply them again.
pub const SCHEMA: &str = "schema";
const INDEXES_MARKER: &str = "indexes";
/// One-time data steps run with the indexes (`give_tenants_numbers`, the legacy drops):
/// adding one means bumping this, so databases that already have the indexes run it too.
const STEPS_VERSION: u32 = 2;
/// Indexes a newer one replaced, dropped once (see [`drop_legacy_indexes`]).
const LEGACY_INDEXES: [(&str, &str); 2] =
    [(TENANTS, "apiKeyHash_unique"), (MESSAGES, "tenant_wamid")];

fn unique(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .unique(true)
                .name(name.to_owned())
                .build(),
        )
        .build()
}

/// Documents expire `days` after the time in `keys`' field.
fn ttl(keys: Document, days: u64) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name("ttl".to_owned())
                .expire_after(std::time::Duration::from_secs(days * 24 * 3600))
                .build(),
        )
        .build()
}

fn plain(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

/// The indexes every collection needs, created unless the marker names this very set.
/// Creating an index that exists with the same spec is a no-op in MongoDB, so a set
/// applied twice (two cold starts at once) is harmless; the collections' commands go out
/// together, and the marker is written only once all of them succeeded.
async fn ensure_indexes(db: &Database) -> Result<(), Error> {
    let wanted = wanted_indexes();
    let fingerprint = fingerprint(&wanted);
    let markers = db.collection::<Document>(SCHEMA);
    let current = doc! { "_id": INDEXES_MARKER, "fingerprint": &fingerprint };
    if markers.find_one(current).await?.is_some() {
        return Ok(());
    }
    let created =
        futures::future::try_join_all(wanted.into_iter().map(|(name, models)| async move {
            if name == TENANTS {
                // Before the unique index on `numbers.phoneNumberId`: two tenants without
                // `numbers` would both index as null.
                give_tenants_numbers(db).await?;
            }
            db.collection::<Document>(name).create_indexes(models).await
        }));
    let (created, dropped) = futures::join!(created, drop_legacy_indexes(db));
    created?;
    dropped?;
    markers
        .update_one(
            doc! { "_id": INDEXES_MARKER },
            doc! { "$set": { "fingerprint": fingerprint, "at": mongodb::bson::DateTime::now() } },
        )
        .upsert(true)
        .await?;
    Ok(())
}

/// Names the index set and the one-time steps: their specs as the driver holds them
/// (a driver upgrade that prints them differently re-applies them once, harmlessly).
fn fingerprint(wanted: &[(&str, Vec<IndexModel>)]) -> String {
    use sha2::{Digest, Sha256};
    let spec = format!("{wanted:?}|{LEGACY_INDEXES:?}|{STEPS_VERSION}");
    hex::encode(Sha256::digest(spec.as_bytes()))
}

fn wanted_indexes() -> [(&'static str, Vec<IndexModel>); 9] {
    // Meta stops retrying after 7 days; so does our wait for the wamid.
    let pending_ttl = ttl(doc! { "createdAt": 1 }, 7);
    let deliveries_ttl = ttl(doc! { "at": 1 }, 7);
    [
        (
            EVENT_SUBSCRIPTIONS,
            vec![plain(
                doc! { "tenantId": 1, "createdAt": 1 },
                "tenant_created",
            )],
        ),
        (
            EVENT_DELIVERIES,
            vec![
                plain(doc! { "subscriptionId": 1, "at": -1 }, "subscription_at"),
                deliveries_ttl,
            ],
        ),
        (
            TENANTS,
            vec![
                unique(doc! { "phoneNumberId": 1 }, "phoneNumberId_unique"),
                unique(doc! { "numbers.phoneNumberId": 1 }, "numbers_unique"),
                // Multikey, not unique: keys are 256 random bits, and a unique index would
                // refuse a second tenant without keys (both index as null).
                plain(doc! { "apiKeys.hash": 1 }, "apiKeys_hash"),
            ],
        ),
        (
            TEMPLATES,
            vec![unique(
                doc! { "tenantId": 1, "key": 1 },
                "tenant_key_unique",
            )],
        ),
        (FLOWS, vec![unique(doc! { "tenantId": 1 }, "tenant_unique")]),
        // Every message has an idempotency key (`in:<wamid>`, `auto-reply:<wamid>`, the
        // caller's or a generated one) under one non-partial unique index: SecantusDB
        // enforces partial indexes but never uses them for lookups.
        (
            MESSAGES,
            vec![
                unique(
                    doc! { "tenantId": 1, "idempotencyKey": 1 },
                    "tenant_idempotency_unique",
                ),
                // A status moves its message forward by all four fields (equalities, then
                // the rank's range): SecantusDB, the local database, scans the collection
                // for a filter with any field its index does not have.
                plain(
                    doc! { "tenantId": 1, "waMessageId": 1, "direction": 1, "statusRank": 1 },
                    "tenant_wamid_status",
                ),
                plain(doc! { "tenantId": 1, "createdAt": -1 }, "tenant_created"),
                // The relay's look-up across tenants (a system job, not an API query).
                plain(doc! { "status": 1, "enqueued": 1, "createdAt": 1 }, "relay"),
            ],
        ),
        (
            PENDING_STATUSES,
            vec![plain(doc! { "wamid": 1 }, "wamid"), pending_ttl],
        ),
        (
            META_TEMPLATES,
            vec![
                unique(
                    doc! { "tenantId": 1, "name": 1, "language": 1 },
                    "tenant_name_language_unique",
                ),
                // Template webhooks are routed by the WABA.
                plain(doc! { "wabaId": 1, "metaId": 1 }, "waba_meta_id"),
            ],
        ),
        (
            CUSTOMERS,
            vec![unique(
                doc! { "tenantId": 1, "waId": 1 },
                "tenant_waid_unique",
            )],
        ),
    ]
}

/// Tenants stored before several numbers get `numbers: [{phoneNumberId, status}]` from
/// their one `phoneNumberId` (a no-op once every tenant has them).
async fn give_tenants_numbers(db: &Database) -> Result<(), Error> {
    db.collection::<Document>(TENANTS)
        .update_many(
            doc! { "numbers": { "$exists": false }, "phoneNumberId": { "$type": "string" } },
            vec![doc! { "$set": { "numbers": [
                { "phoneNumberId": "$phoneNumberId", "status": "active" },
            ] } }],
        )
        .await?;
    Ok(())
}

/// Indexes that a newer one replaced, dropped (a no-op once they are gone):
/// - `tenants.apiKeyHash_unique`: before labelled API keys, a tenant's one key was
///   `apiKeyHash`, under a unique index that now refuses every second tenant (they all lack
///   the field);
/// - `messages.tenant_wamid`: `tenant_wamid_status` starts with the same fields.
async fn drop_legacy_indexes(db: &Database) -> Result<(), Error> {
    const INDEX_NOT_FOUND: i32 = 27;
    const NAMESPACE_NOT_FOUND: i32 = 26;
    let drops = LEGACY_INDEXES.map(|(collection, index)| async move {
        match db
            .collection::<Document>(collection)
            .drop_index(index)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match e.kind.as_ref() {
                ErrorKind::Command(c)
                    if matches!(c.code, INDEX_NOT_FOUND | NAMESPACE_NOT_FOUND) =>
                {
                    Ok(())
                }
                _ => Err(e),
            },
        }
    });
    futures::future::try_join_all(drops).await.map(|_| ())
}

/// E11000: a unique index refused the write.
pub fn is_duplicate_key(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|w| w.code == 11000)),
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}
