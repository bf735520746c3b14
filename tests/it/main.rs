//! The integration test binary: one binary, one module per area.

mod helpers;

mod accounts;
mod admin;
mod admin_lists;
mod bookings;
mod checkin;
mod checkout_ux;
mod cli;
mod config;
mod connections;
mod edge;
mod hardening;
mod health;
mod hoarding;
mod jobs;
mod legal;
mod mail;
mod media;
mod metrics;
mod migrations;
mod payment_races;
mod paypal_contract;
mod paypal_flow;
mod paypal_verify;
mod paypal_world;
mod private;
mod public;
mod seed;
mod server_version;
mod ticket_changes;
mod tickets;
mod two_factor;
