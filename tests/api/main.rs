//! Black-box tests: the real server on 127.0.0.1:0, driven through reqwest and tonic clients.

mod activate;
mod bad_input;
mod caches;
mod clients;
mod durability;
mod get;
mod helpers;
mod hostile;
mod privileges;
mod profile_family;
mod replicas;
mod security;
mod service;
mod tls;
mod tokens;
mod traces;

#[path = "../support/postgres.rs"]
mod postgres;
