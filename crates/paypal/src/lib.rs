//! The PayPal integration: the REST client (OAuth token cache, timeouts, `PayPal-Request-Id`
//! on every call that moves money) and offline webhook signature verification with a
//! certificate fetch that only reaches PayPal's own hosts. It knows nothing of bookings.

pub mod client;
pub mod verify;

pub use client::{PayPalClient, PayPalError, PayPalMode, PayPalSettings, WebhookVerification};

/// The subject name of the simulator's webhook certificate (accepted outside production).
pub const SIMULATOR_CERT_NAME: &str = "messageverificationcerts.simulator.test";
