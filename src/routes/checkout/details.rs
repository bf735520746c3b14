//! The second checkout step: the buyer's and the attendees' names and emails, kept with a
//! message next to each bad field and in the error summary. A hold that ran out while the
//! buyer typed answers 409 with everything typed kept and a button to hold the seats again
//! (see `rehold`).

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::{booking_redirect, context, load, Loaded, Page};
use crate::bookings::holds::extend_after_details;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::BookingState;
use crate::routes::form_errors;
use crate::schema::{attendees, bookings};
use ticketing_core::validate;

/// The details page's context: the shared one, and until the details are in, when the hold
/// will end once they are (its full time from the start).
fn details_context(l: &Loaded, hold_minutes: u32) -> serde_json::Value {
    let mut ctx = context(l, false);
    let full = l.booking.created_at + chrono::Duration::minutes(i64::from(hold_minutes));
    if full > l.booking.hold_expires_at {
        ctx["booking"]["full_hold_local"] = json!(crate::timefmt::local_time(full, l.event.tz()));
    }
    ctx
}

/// The fields of the details form in page order, as the error summary names them.
fn field_order(attendees: usize) -> Vec<form_errors::Field> {
    let mut order = vec![
        form_errors::Field::new("buyer_name", "buyer_name", "Your full name"),
        form_errors::Field::new("buyer_email", "buyer_email", "Your email"),
        form_errors::Field::new("buyer_phone", "buyer_phone", "Your phone"),
    ];
    for i in 0..attendees {
        for (part, what) in [
            ("name", "attendee's full name"),
            ("email", "attendee's email"),
        ] {
            order.push(form_errors::Field::new(
                format!("attendees.{i}.{part}"),
                format!("attendee-{i}-{part}"),
                format!("Ticket {}, {what}", i + 1),
            ));
        }
    }
    order
}

/// The whole details page: the shared context, the buyer's input, the messages next to
/// their fields and in the error summary, and the title naming the step.
pub(super) fn details_page(
    l: &Loaded,
    hold_minutes: u32,
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
) -> serde_json::Value {
    let mut ctx = details_context(l, hold_minutes);
    let summary = form_errors::summary(errors, &field_order(l.attendees.len()));
    ctx["title"] = json!(form_errors::title(
        "Your details",
        &l.event.title,
        !errors.is_empty()
    ));
    ctx["values"] = json!(values);
    ctx["errors"] = json!(errors);
    ctx["summary"] = json!(summary);
    ctx
}

/// The page of a hold that ran out while the buyer was typing (409): everything typed is
/// kept, and the form offers to hold the same seats again (`rehold`). `problem`: why an
/// attempt to hold them again was refused.
pub(super) fn expired_page(
    l: &Loaded,
    hold_minutes: u32,
    values: &HashMap<String, String>,
    problem: Option<String>,
) -> Page {
    let mut ctx = details_page(l, hold_minutes, values, &HashMap::new());
    let at = crate::timefmt::local_time(l.booking.hold_expires_at, l.event.tz());
    ctx["title"] = json!(form_errors::title(
        "Your hold ran out",
        &l.event.title,
        false
    ));
    ctx["expired"] = json!({
        "message": format!(
            "Your hold ran out at {at} ({}); the seats were released. Nothing was charged. \
             What you typed is kept below.",
            l.event.timezone
        ),
        "problem": problem,
    });
    Page::Status((Status::Conflict, Template::render("checkout_details", ctx)))
}

/// What the buyer typed into the details form, for the page shown again (each field cut to
/// its 300 characters; attendees past the seats held dropped).
pub(super) fn typed_values(form: &DetailsForm, attendees: usize) -> HashMap<String, String> {
    let mut values: HashMap<String, String> = HashMap::new();
    let keep = |s: &str| s.chars().take(300).collect::<String>();
    values.insert("buyer_name".into(), keep(&form.buyer_name));
    values.insert("buyer_email".into(), keep(&form.buyer_email));
    values.insert("buyer_phone".into(), keep(&form.buyer_phone));
    for (i, a) in form.attendees.iter().enumerate().take(attendees) {
        values.insert(format!("attendees.{i}.name"), keep(&a.name));
        values.insert(format!("attendees.{i}.email"), keep(&a.email));
    }
    values
}

#[get("/<token>")]
pub(super) async fn details(
    db: &State<Db>,
    config: &State<crate::Config>,
    token: &str,
) -> AppResult<Page> {
    let l = load(db, token).await?;
    if l.booking.state() != BookingState::Held {
        return Ok(booking_redirect(token));
    }
    let mut values: HashMap<String, String> = HashMap::new();
    values.insert("buyer_name".into(), l.booking.buyer_name.clone());
    values.insert("buyer_email".into(), l.booking.buyer_email.clone());
    values.insert("buyer_phone".into(), l.booking.buyer_phone.clone());
    for (i, a) in l.attendees.iter().enumerate() {
        values.insert(format!("attendees.{i}.name"), a.name.clone());
        values.insert(format!("attendees.{i}.email"), a.email.clone());
    }
    let ctx = details_page(&l, config.hold_minutes, &values, &HashMap::new());
    Ok(Page::Template(Template::render("checkout_details", ctx)))
}

#[derive(FromForm, Default)]
pub struct AttendeeInput {
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    email: String,
}

#[derive(FromForm)]
pub struct DetailsForm {
    #[field(default = String::new())]
    buyer_name: String,
    #[field(default = String::new())]
    buyer_email: String,
    #[field(default = String::new())]
    buyer_phone: String,
    #[field(default = Vec::new())]
    attendees: Vec<AttendeeInput>,
}

#[post("/<token>", data = "<form>")]
pub(super) async fn save_details(
    db: &State<Db>,
    config: &State<crate::Config>,
    token: &str,
    form: Form<DetailsForm>,
) -> AppResult<Page> {
    let l = load(db, token).await?;
    let form = form.into_inner();
    match l.booking.state() {
        BookingState::Held => {}
        // The hold ran out while the buyer was typing: keep it all, offer the seats again.
        BookingState::Expired => {
            let values = typed_values(&form, l.attendees.len());
            return Ok(expired_page(&l, config.hold_minutes, &values, None));
        }
        _ => return Ok(booking_redirect(token)),
    }
    let mut errors: HashMap<String, String> = HashMap::new();
    let mut check = |key: String, result: Result<String, String>| match result {
        Ok(v) => v,
        Err(msg) => {
            errors.insert(key, msg);
            String::new()
        }
    };
    let buyer_name = check("buyer_name".into(), validate::name(&form.buyer_name));
    let buyer_email = check("buyer_email".into(), validate::email(&form.buyer_email));
    let buyer_phone = check("buyer_phone".into(), validate::phone(&form.buyer_phone));
    let mut people = Vec::new();
    for i in 0..l.attendees.len() {
        let input = form.attendees.get(i);
        let name = check(
            format!("attendees.{i}.name"),
            validate::name(input.map(|a| a.name.as_str()).unwrap_or("")),
        );
        let raw_email = input.map(|a| a.email.trim()).unwrap_or("");
        let email = if raw_email.is_empty() {
            String::new()
        } else {
            check(format!("attendees.{i}.email"), validate::email(raw_email))
        };
        people.push((name, email));
    }
    if form.attendees.len() > l.attendees.len() {
        errors.insert(
            "form".into(),
            "The form had more attendees than seats held.".into(),
        );
    }
    if !errors.is_empty() {
        let values = typed_values(&form, l.attendees.len());
        let ctx = details_page(&l, config.hold_minutes, &values, &errors);
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            Template::render("checkout_details", ctx),
        )));
    }
    let booking_id = l.booking.id;
    let hold_minutes = config.hold_minutes;
    let saved = db
        .run(move |conn| {
            conn.transaction(|conn| {
                // A hold whose deadline passed is not revived by late details.
                let n = diesel::update(
                    bookings::table
                        .find(booking_id)
                        .filter(bookings::state.eq(BookingState::Held.as_str()))
                        .filter(bookings::hold_expires_at.gt(diesel::dsl::now)),
                )
                .set((
                    bookings::buyer_name.eq(&buyer_name),
                    bookings::buyer_email.eq(&buyer_email),
                    bookings::buyer_phone.eq(&buyer_phone),
                    bookings::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
                if n != 1 {
                    return Ok(false);
                }
                for (i, (name, email)) in people.iter().enumerate() {
                    diesel::update(
                        attendees::table
                            .filter(attendees::booking_id.eq(booking_id))
                            .filter(attendees::position.eq(i as i32 + 1)),
                    )
                    .set((attendees::name.eq(name), attendees::email.eq(email)))
                    .execute(conn)?;
                }
                // The details are in: the hold now lasts its full time.
                extend_after_details(conn, booking_id, hold_minutes)?;
                Ok::<_, diesel::result::Error>(true)
            })
            .map_err(AppError::from)
        })
        .await?;
    if saved {
        return Ok(Page::Redirect(Redirect::to(format!(
            "/checkout/{token}/review"
        ))));
    }
    // The deadline passed between loading and saving: the same as above.
    let l = load(db, token).await?;
    Ok(if l.booking.state() == BookingState::Expired {
        let values = typed_values(&form, l.attendees.len());
        expired_page(&l, config.hold_minutes, &values, None)
    } else {
        booking_redirect(token)
    })
}
