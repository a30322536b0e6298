//! Everything the Lambda functions have in common: the domain (tenant, ...), the adapters
//! around it (store, crypto, queue) and the HTTP plumbing (error, auth, http).
//!
//! Function crates stay thin: they wire these pieces into an `axum::Router`.

/// Every binary that links this crate (the functions, the local gateway, the tests)
/// allocates with mimalloc: a request is many small, short-lived allocations, which it
/// serves faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod analytics;
pub mod api_key;
pub mod apigw;
pub mod auth;
pub mod aws;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod customer;
pub mod dead_letter;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod event;
pub mod failpoint;
pub mod flow;
pub mod forwarder;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod lambda;
pub mod locks;
pub mod media;
pub mod message;
pub mod meta_template;
pub mod metrics;
pub mod onboarding;
pub mod outbox;
pub mod pacing;
pub mod placeholder;
pub mod queue;
pub mod secret;
pub mod send;
pub mod sender;
pub mod simulator;
pub mod srv;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod tenant;
pub mod tls;
pub mod webhook;
pub mod whatsapp;

pub use error::ApiError;
pub use state::AppState;
