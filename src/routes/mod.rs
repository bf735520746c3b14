//! The HTTP areas of SPEC §1, one module each. Every module exposes `routes()`; [`mount`]
//! is the one place that mounts them under their prefixes.

use rocket::{Build, Rocket};

pub mod admin;
pub mod checkout;
pub mod find;
pub mod form_errors;
pub mod legal;
pub mod media;
pub mod ops;
pub mod payments;
pub mod private;
pub mod public;
pub mod waivers;

/// Mounts every area under its prefix.
pub fn mount(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket
        .mount("/", public::routes())
        .mount("/", find::routes())
        .mount("/p", private::routes())
        .mount("/checkout", checkout::routes())
        .mount("/bookings", checkout::booking_routes())
        .mount("/payments/paypal", payments::routes())
        .mount("/waivers", waivers::routes())
        .mount("/legal", legal::routes())
        // media (issue 15): event images at content-hashed URLs
        .mount("/media", media::routes())
        .mount("/admin", admin::routes())
        .register("/admin", admin::catchers())
        .mount("/", ops::routes())
}
