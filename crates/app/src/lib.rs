//! The application layer: use cases that combine the domain with the integrations. PayPal
//! checkout, capture, settlement, webhooks, reconciliation and refunds (`payments`), and the
//! mail sender that drains the outbox (`mail`). No Rocket: the web crate calls these from
//! its handlers and jobs.

pub mod mail;
pub mod payments;
pub mod tickets_pdf;
