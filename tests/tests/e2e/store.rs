//! Indexes at a cold start: the first process on a database creates them and marks the set
//! it created; every later cold start reads that one marker and creates nothing, until the
//! set changes.

use std::sync::{Arc, Mutex};

use mongodb::{
    Database,
    bson::{Document, doc},
};
use shared::store::{SCHEMA, Store};

/// A database whose client logs the name and collection of every command it sends.
async fn counted_database(name: &str) -> (Database, Arc<Mutex<Vec<(String, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let db = e2e::monitored_database(name, move |s| {
        let collection = s
            .command
            .get_str(&s.command_name)
            .unwrap_or_default()
            .to_owned();
        log.lock().expect("lock").push((s.command_name, collection));
    })
    .await;
    (db, seen)
}

/// A new process's store on `name`: `ready()` as its first request does, and the commands
/// that took.
async fn cold_start(name: &str) -> Vec<(String, String)> {
    let (db, seen) = counted_database(name).await;
    Store::new(db).ready().await.expect("ready");
    seen.lock().expect("lock").clone()
}

fn created(commands: &[(String, String)]) -> Vec<String> {
    commands
        .iter()
        .filter(|(name, _)| name == "createIndexes")
        .map(|(_, collection)| collection.clone())
        .collect()
}

#[tokio::test]
async fn a_cold_start_on_an_indexed_database_reads_one_marker() {
    let name = format!("t_{}", e2e::random_hex(6));

    let first = cold_start(&name).await;
    let mut collections = created(&first);
    collections.sort();
    assert_eq!(
        collections,
        [
            "customers",
            "eventDeliveries",
            "eventSubscriptions",
            "flows",
            "messages",
            "metaTemplates",
            "pendingStatuses",
            "templates",
            "tenants"
        ],
        "a new database gets every collection's indexes: {first:?}"
    );
    let (db, _) = counted_database(&name).await;
    let indexes = db
        .collection::<Document>("customers")
        .list_index_names()
        .await
        .expect("indexes");
    assert!(
        indexes.contains(&"tenant_waid_unique".to_owned()),
        "{indexes:?}"
    );

    let second = cold_start(&name).await;
    assert_eq!(
        second,
        [("find".to_owned(), SCHEMA.to_owned())],
        "the next cold start reads the marker and nothing else"
    );

    // A deploy whose index set differs (here: a marker from an older set) applies it again.
    let markers = db.collection::<Document>(SCHEMA);
    markers
        .update_one(
            doc! { "_id": "indexes" },
            doc! { "$set": { "fingerprint": "an older index set" } },
        )
        .await
        .expect("marker");
    let after_deploy = cold_start(&name).await;
    assert_eq!(created(&after_deploy).len(), 9, "{after_deploy:?}");
    assert_eq!(
        cold_start(&name).await,
        [("find".to_owned(), SCHEMA.to_owned())],
        "marked again"
    );

    // Without the marker (deleted by hand, a restored dump), they are applied again too.
    markers
        .delete_one(doc! { "_id": "indexes" })
        .await
        .expect("delete");
    assert_eq!(created(&cold_start(&name).await).len(), 9);
}
