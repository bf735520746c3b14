//! Admin area (`/admin`), one module per page area: `session` (login, logout, password),
//! `dashboard`, `events`, `ticket_types`, `bookings` (list, detail, cancel, resend mail),
//! `refunds`, `checkin`, `users`, `audit`, `exports` (CSV), `outbox` (the mail page),
//! `twofactor` (the code step after the password, TOTP enrolment) and `legal` (the
//! organiser settings and the legal pages). This
//! module mounts them and holds what their pages share: the page renderer, the catchers, the
//! CSRF-only form and the amount parser.
//!
//! Every route takes a `Staff` or `Admin` guard (the route-table test checks that none is
//! missing); they let through only sessions past the second factor where one is due. The
//! code step, the enrolment page and logout take `twofactor`'s guards instead, which also
//! accept a session still owing its second factor. Every state-changing form carries the session's CSRF token and arrives through
//! the data guard [`StaffForm`](crate::auth::StaffForm) or
//! [`AdminForm`](crate::auth::AdminForm), which runs that guard and checks the token before
//! the handler starts; a wrong token gets 403 with its own message (the 403 catcher below).
//! Every change writes an audit entry in its own transaction.

use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{catch, catchers, routes, Catcher, Request, Route};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::auth::{self, Staff};
use crate::error::{default_message, AppError};

/// Implements [`auth::CsrfForm`] for form structs whose token is their `csrf` field.
macro_rules! csrf_form {
    ($($form:ty),+ $(,)?) => {
        $(impl crate::auth::CsrfForm for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}

mod account_links;
mod attention;
mod audit;
mod bookings;
mod checkin;
mod dashboard;
mod events;
mod exports;
mod legal;
mod outbox;
mod refunds;
mod session;
mod ticket_types;
mod twofactor;
mod users;

pub use attention::{fairing as attention_fairing, AttentionCount};
pub use audit::audit_changes;
pub use exports::{csv_safe, Csv};

pub fn routes() -> Vec<Route> {
    routes![
        session::login_page,
        session::login,
        session::logout,
        account_links::forgot_password_page,
        account_links::forgot_password,
        account_links::set_password_page,
        account_links::set_password,
        users::invite_user,
        users::change_role,
        dashboard::dashboard,
        attention::attention_page,
        bookings::bookings_list,
        bookings::booking_detail,
        bookings::cancel_booking,
        refunds::refund_booking,
        refunds::close_ticket,
        bookings::rename_attendee,
        bookings::resend_mail,
        checkin::checkin_page,
        checkin::checkin,
        checkin::checkin_event,
        checkin::sign_at_door,
        checkin::undo,
        checkin::set_policy,
        checkin::attendees_json,
        checkin::sync,
        checkin::service_worker,
        outbox::outbox_page,
        outbox::resend_confirm,
        audit::audit_page,
        exports::export_csv,
        exports::export_bookings_csv,
        events::events_list,
        events::new_event,
        events::create_event,
        events::edit_event,
        events::update_event,
        events::event_action,
        ticket_types::create_ticket_type,
        ticket_types::update_ticket_type,
        users::users_page,
        users::create_user,
        users::deactivate_user,
        users::unlock_user,
        session::password_page,
        session::change_password,
        twofactor::code_page,
        twofactor::submit_code,
        twofactor::two_factor_page,
        twofactor::setup,
        twofactor::confirm,
        twofactor::regenerate,
        twofactor::disable,
        users::require_two_factor,
        users::reset_two_factor,
        legal::settings_page,
        legal::save_settings,
        legal::legal_edit_page,
        legal::save_legal
    ]
}

/// Anonymous visitors of admin pages go to the login page (a session still owing its second
/// factor to the code step or the enrolment page); a refused form says why.
pub fn catchers() -> Vec<Catcher> {
    catchers![unauthorized, forbidden]
}

#[catch(401)]
fn unauthorized(req: &Request<'_>) -> Redirect {
    let next = urlencode(req.uri().path().as_str());
    match crate::twofactor::detour(req, &next) {
        Some(to) => Redirect::to(to),
        None => Redirect::to(format!("/admin/login?next={next}")),
    }
}

/// The 403 page: the message a guard left for this request (a form's CSRF token was wrong),
/// else the same page the app's default catcher shows.
#[catch(403)]
fn forbidden(req: &Request<'_>) -> AppError {
    let message = auth::refusal(req).unwrap_or(default_message(Status::Forbidden));
    AppError::new(Status::Forbidden, message)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Renders an admin page with the signed-in staff member and the CSRF token in its context.
pub(crate) fn page(name: &'static str, staff: &Staff, mut ctx: serde_json::Value) -> Template {
    // A session that must enrol first sees a nav with nothing but logout.
    let enrolling = staff.stage == crate::twofactor::Stage::Enrol;
    ctx["staff"] = json!({ "email": staff.user.email, "name": staff.user.name, "admin": staff.is_admin(), "enrolling": enrolling });
    ctx["csrf"] = json!(staff.csrf);
    Template::render(name, ctx)
}

/// A form that carries nothing but the CSRF token (logout, publish, resend, deactivate).
#[derive(FromForm)]
pub struct CsrfOnly {
    #[field(default = String::new())]
    csrf: String,
}

csrf_form!(CsrfOnly);

/// A whole number typed into an admin form, within `range`; otherwise the field's message
/// goes into `errors` ("Enter a whole number from 1 to 100.") and `None` comes back.
pub fn whole_number(
    errors: &mut std::collections::HashMap<&'static str, String>,
    field: &'static str,
    text: &str,
    range: std::ops::RangeInclusive<i32>,
) -> Option<i32> {
    let value = text
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|n| range.contains(n));
    if value.is_none() {
        let number = |n: i32| {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        };
        errors.insert(
            field,
            format!(
                "Enter a whole number from {} to {}.",
                number(*range.start()),
                number(*range.end())
            ),
        );
    }
    value
}

/// Parses "12.50" in `currency` into minor units.
pub fn parse_amount(text: &str, currency: &str) -> Option<i64> {
    let digits = crate::money::minor_digits(currency) as usize;
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > digits
        || !frac.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 12
    {
        return None;
    }
    let frac = format!("{frac:0<digits$}");
    Some(
        whole.parse::<i64>().ok()? * 10i64.pow(digits as u32)
            + if digits == 0 {
                0
            } else {
                frac.parse::<i64>().ok()?
            },
    )
}

#[cfg(test)]
mod tests {
    use super::whole_number;

    #[test]
    fn whole_numbers_out_of_range_say_the_range() {
        let mut errors = std::collections::HashMap::new();
        assert_eq!(
            whole_number(&mut errors, "capacity", " 250 ", 0..=1_000_000),
            Some(250)
        );
        assert!(errors.is_empty());
        assert_eq!(
            whole_number(&mut errors, "capacity", "2.5", 0..=1_000_000),
            None
        );
        assert_eq!(
            whole_number(&mut errors, "max_per_booking", "101", 1..=100),
            None
        );
        assert_eq!(
            errors["capacity"],
            "Enter a whole number from 0 to 1,000,000."
        );
        assert_eq!(
            errors["max_per_booking"],
            "Enter a whole number from 1 to 100."
        );
    }
}
