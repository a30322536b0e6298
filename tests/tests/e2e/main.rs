//! The end-to-end suite, one binary (one link of the AWS SDK, MongoDB and wiremock): each
//! module is one area. Run through `make test` (nextest: every test in its own process,
//! which the failpoint tests need).

mod analytics;
mod api_keys;
mod budget;
mod conversations;
mod crash;
mod dead_letters;
mod events;
mod faults;
mod flows;
mod lambda_replay;
mod layers;
mod lists;
mod media;
mod meta_templates;
mod numbers;
mod onboarding;
mod pacing;
mod queue_shim;
mod register;
mod routes;
mod send;
mod sender;
mod sigv4;
mod store;
mod templates;
mod webhook;
mod window;
