//! Ticket types and prices of an event (admins only): add a type, or change one's name,
//! price, capacity, per-booking limit and sales window. A capacity never drops below the
//! seats taken. Prices are in the event's currency (issue 16: chosen on the event form; the
//! database refuses a ticket type in any other). Messages come back on the event's edit page
//! next to the form that was sent.

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{post, State};
use serde_json::{json, Value};

use super::events::{edit_ctx, event_page_ctx, form_from, parse_local};
use super::{page, parse_amount};
use crate::auth::{self, AdminForm};
use crate::cache::PublicCaches;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{NewTicketType, TicketType};
use crate::routes::checkout::Page;
use crate::schema::{events, ticket_types};

#[derive(FromForm, Clone, serde::Serialize)]
pub struct TicketTypeForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    description: String,
    #[field(default = String::new())]
    price: String,
    #[field(default = String::new())]
    capacity: String,
    #[field(default = String::from("10"))]
    max_per_booking: String,
    #[field(default = String::new())]
    opens: String,
    #[field(default = String::new())]
    closes: String,
}

csrf_form!(TicketTypeForm);

fn check_type(
    f: &TicketTypeForm,
    tz: chrono_tz::Tz,
    currency: &str,
) -> Result<NewTicketType, HashMap<&'static str, String>> {
    let mut errors = HashMap::new();
    use ticketing_core::validate::{required_line, single_line};
    let name = required_line(&f.name, 120, "Enter a name of at most 120 characters.")
        .map_err(|e| errors.insert("name", e))
        .unwrap_or_default();
    let description = single_line(&f.description, 500)
        .map_err(|e| errors.insert("description", e))
        .unwrap_or_default();
    let price = parse_amount(&f.price, currency);
    if price.is_none() {
        errors.insert(
            "price",
            format!(
                "Enter the price like 25.00 (0 for free; {} decimals for {currency}).",
                crate::money::minor_digits(currency)
            ),
        );
    }
    let capacity = super::whole_number(&mut errors, "capacity", &f.capacity, 0..=1_000_000);
    let max = super::whole_number(&mut errors, "max_per_booking", &f.max_per_booking, 1..=100);
    let window = |text: &str, key: &'static str, errors: &mut HashMap<&'static str, String>| {
        if text.trim().is_empty() {
            return None;
        }
        let at = parse_local(text, tz);
        if at.is_none() {
            errors.insert(key, "Enter a date and time, or leave it empty.".to_string());
        }
        at
    };
    let opens = window(&f.opens, "opens", &mut errors);
    let closes = window(&f.closes, "closes", &mut errors);
    if let (Some(o), Some(c)) = (opens, closes) {
        if c <= o {
            errors.insert("closes", "Sales must close after they open.".to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewTicketType {
        event_id: 0,
        name,
        description,
        price_minor: price.unwrap(),
        currency: currency.to_string(),
        capacity: capacity.unwrap(),
        sales_open_at: opens,
        sales_close_at: closes,
        max_per_booking: max.unwrap(),
        position: 0,
    })
}

fn type_json(t: &TicketType) -> Value {
    json!({ "id": t.id, "name": t.name, "description": t.description, "price_minor": t.price_minor, "currency": t.currency, "capacity": t.capacity, "max_per_booking": t.max_per_booking, "sales_open_at": t.sales_open_at, "sales_close_at": t.sales_close_at })
}

/// The event page again with one ticket type form's messages next to its fields and what
/// was typed kept (`key`: the type's id, or "new" for the add form).
fn type_errors_page(
    staff: &crate::auth::Staff,
    event: &crate::models::Event,
    types: &[TicketType],
    key: &str,
    errors: Value,
    values: Value,
) -> Page {
    Page::Status((
        Status::UnprocessableEntity,
        page(
            "admin/event_form",
            staff,
            edit_ctx(
                event,
                types,
                form_from(event),
                json!({}),
                json!({ "errors": { key: errors }, "values": { key: values } }),
            ),
        ),
    ))
}

#[post("/events/<id>/ticket-types", data = "<form>")]
pub(super) async fn create_ticket_type(
    db: &State<Db>,
    caches: PublicCaches<'_>,
    id: i64,
    form: AdminForm<TicketTypeForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let (event, types) = event_page_ctx(db, id).await?;
    let mut new = match check_type(&f, event.tz(), &event.currency) {
        Ok(n) => n,
        Err(errors) => {
            return Ok(type_errors_page(
                &staff,
                &event,
                &types,
                "new",
                json!(errors),
                json!(&f),
            ))
        }
    };
    new.event_id = id;
    new.position = types.len() as i32;
    db.run(move |conn| {
        let mut new = new;
        conn.transaction(|conn| {
            // The event's currency as it is now (locked, so it cannot change meanwhile).
            new.currency = events::table
                .find(new.event_id)
                .for_update()
                .select(events::currency)
                .first(conn)?;
            let t = TicketType::insert(conn, &new)?;
            auth::audit(
                conn,
                &staff,
                "ticket_type.create",
                "ticket_type",
                Some(t.id),
                None,
                Some(type_json(&t)),
            )
        })?;
        Ok(())
    })
    .await?;
    caches.invalidate();
    Ok(Page::Redirect(Redirect::to(format!("/admin/events/{id}"))))
}

#[post("/ticket-types/<id>", data = "<form>")]
pub(super) async fn update_ticket_type(
    db: &State<Db>,
    caches: PublicCaches<'_>,
    id: i64,
    form: AdminForm<TicketTypeForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let event_id: i64 = db
        .run(move |conn| {
            Ok(ticket_types::table
                .find(id)
                .select(ticket_types::event_id)
                .first(conn)?)
        })
        .await?;
    let (event, types) = event_page_ctx(db, event_id).await?;
    // What was typed comes back with the messages, not the stored values.
    let submitted = json!(&f);
    let key = id.to_string();
    let show_error =
        |errors: Value| type_errors_page(&staff, &event, &types, &key, errors, submitted.clone());
    let new = match check_type(&f, event.tz(), &event.currency) {
        Ok(n) => n,
        Err(errors) => return Ok(show_error(json!(errors))),
    };
    let s2 = staff.clone();
    let result = db
        .run(move |conn| {
            conn.transaction(|conn| {
                // Same lock order as a hold: the event row, then the ticket type.
                events::table
                    .find(event_id)
                    .for_update()
                    .select(events::id)
                    .first::<i64>(conn)?;
                let before: TicketType = ticket_types::table
                    .find(id)
                    .for_update()
                    .select(TicketType::as_select())
                    .first(conn)?;
                if new.capacity < before.seats_taken {
                    return Ok(Err(format!(
                        "{} seats of this type are already taken; the capacity cannot be lower.",
                        before.seats_taken
                    )));
                }
                diesel::update(ticket_types::table.find(id))
                    .set((
                        ticket_types::name.eq(&new.name),
                        ticket_types::description.eq(&new.description),
                        ticket_types::price_minor.eq(new.price_minor),
                        ticket_types::capacity.eq(new.capacity),
                        ticket_types::max_per_booking.eq(new.max_per_booking),
                        ticket_types::sales_open_at.eq(new.sales_open_at),
                        ticket_types::sales_close_at.eq(new.sales_close_at),
                        ticket_types::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                let after: TicketType = ticket_types::table
                    .find(id)
                    .select(TicketType::as_select())
                    .first(conn)?;
                auth::audit(
                    conn,
                    &s2,
                    "ticket_type.update",
                    "ticket_type",
                    Some(id),
                    Some(type_json(&before)),
                    Some(type_json(&after)),
                )?;
                Ok::<_, diesel::result::Error>(Ok(()))
            })
            .map_err(AppError::from)
        })
        .await?;
    match result {
        Ok(()) => {
            caches.invalidate();
            Ok(Page::Redirect(Redirect::to(format!(
                "/admin/events/{event_id}"
            ))))
        }
        Err(msg) => Ok(show_error(json!({ "capacity": msg }))),
    }
}
