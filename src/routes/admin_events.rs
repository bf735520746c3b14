//! Admin area, part two (admins only): events (create, edit, publish, unpublish, duplicate,
//! rotate the private link, waiver text), ticket types and prices, and staff accounts.
//! Every form keeps its input and shows messages next to fields; every change is audited.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::Template;
use serde_json::{json, Value};

use crate::auth::{self, Admin, Staff};
use crate::cache::PublicCaches;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{Event, NewEvent, NewTicketType, NewUser, TicketType, User, Visibility};
use crate::routes::admin::page;
use crate::routes::checkout::Page;
use crate::schema::{admin_sessions, events, ticket_types, users};
use crate::timefmt;

pub fn routes() -> Vec<Route> {
    routes![
        events_list,
        new_event,
        create_event,
        edit_event,
        update_event,
        event_action,
        create_ticket_type,
        update_ticket_type,
        users_page,
        create_user,
        deactivate_user,
        password_page,
        change_password
    ]
}

// ---------------------------------------------------------------- events

#[derive(FromForm, Default, Clone, serde::Serialize)]
pub struct EventForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    title: String,
    #[field(default = String::new())]
    slug: String,
    #[field(default = String::new())]
    description: String,
    #[field(default = String::new())]
    venue: String,
    #[field(default = String::from("Europe/Berlin"))]
    timezone: String,
    #[field(default = String::new())]
    starts_at: String,
    #[field(default = String::new())]
    ends_at: String,
    #[field(default = String::from("100"))]
    capacity: String,
    #[field(default = String::from("draft"))]
    visibility: String,
    #[field(default = false)]
    waiver_required: bool,
    #[field(default = String::new())]
    waiver_text: String,
}

/// Local "YYYY-MM-DDTHH:MM" in `tz` to UTC.
fn parse_local(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

fn to_local_input(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// Validates the form; the values to store, or messages by field.
fn check_event(f: &EventForm) -> Result<NewEvent, HashMap<&'static str, String>> {
    let mut errors = HashMap::new();
    let title = f.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        errors.insert(
            "title",
            "Enter a title of at most 200 characters.".to_string(),
        );
    }
    let slug = f.slug.trim().to_lowercase();
    let slug_ok = !slug.is_empty()
        && slug.len() <= 120
        && slug.split('-').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !slug_ok {
        errors.insert(
            "slug",
            "Use lower-case letters, digits and single dashes, like spring-gala-2027.".to_string(),
        );
    }
    let tz = timefmt::parse_tz(f.timezone.trim());
    if tz.is_none() {
        errors.insert(
            "timezone",
            "Enter an IANA time zone such as Europe/Berlin or America/New_York.".to_string(),
        );
    }
    let tz = tz.unwrap_or(chrono_tz::UTC);
    let starts = parse_local(&f.starts_at, tz);
    let ends = parse_local(&f.ends_at, tz);
    if starts.is_none() {
        errors.insert("starts_at", "Enter the start date and time.".to_string());
    }
    if ends.is_none() {
        errors.insert("ends_at", "Enter the end date and time.".to_string());
    }
    if let (Some(s), Some(e)) = (starts, ends) {
        if e < s {
            errors.insert("ends_at", "The end must come after the start.".to_string());
        }
    }
    let capacity = f
        .capacity
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|c| (0..=1_000_000).contains(c));
    if capacity.is_none() {
        errors.insert(
            "capacity",
            "Enter a whole number from 0 to 1,000,000.".to_string(),
        );
    }
    let visibility = Visibility::parse(f.visibility.trim());
    if visibility.is_none() {
        errors.insert("visibility", "Choose draft, public or private.".to_string());
    }
    if f.waiver_required && f.waiver_text.trim().is_empty() {
        errors.insert(
            "waiver_text",
            "Enter the waiver text attendees will sign.".to_string(),
        );
    }
    if f.description.chars().count() > 20_000
        || f.venue.chars().count() > 300
        || f.waiver_text.chars().count() > 50_000
    {
        errors.insert("description", "That is too long.".to_string());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let visibility = visibility.unwrap();
    Ok(NewEvent {
        slug,
        title: title.to_string(),
        description: f.description.trim().to_string(),
        venue: f.venue.trim().to_string(),
        timezone: f.timezone.trim().to_string(),
        starts_at: starts.unwrap(),
        ends_at: ends.unwrap(),
        capacity: capacity.unwrap(),
        visibility: visibility.as_str().into(),
        private_token: (visibility == Visibility::Private).then(crate::tokens::private_event_token),
        waiver_required: f.waiver_required,
        waiver_text: f.waiver_text.trim().to_string(),
    })
}

fn event_json(e: &Event) -> Value {
    json!({ "id": e.id, "title": e.title, "slug": e.slug, "visibility": e.visibility, "capacity": e.capacity,
            "seats_taken": e.seats_taken, "starts_at": e.starts_at.to_rfc3339(), "ends_at": e.ends_at.to_rfc3339(),
            "timezone": e.timezone, "venue": e.venue, "waiver_required": e.waiver_required, "waiver_text": e.waiver_text })
}

fn form_from(e: &Event) -> EventForm {
    let tz = e.tz();
    EventForm {
        csrf: String::new(),
        title: e.title.clone(),
        slug: e.slug.clone(),
        description: e.description.clone(),
        venue: e.venue.clone(),
        timezone: e.timezone.clone(),
        starts_at: to_local_input(e.starts_at, tz),
        ends_at: to_local_input(e.ends_at, tz),
        capacity: e.capacity.to_string(),
        visibility: e.visibility.clone(),
        waiver_required: e.waiver_required,
        waiver_text: e.waiver_text.clone(),
    }
}

#[get("/events")]
async fn events_list(db: &State<Db>, admin: Admin) -> AppResult<Template> {
    let list: Vec<Event> = db
        .run(|conn| {
            Ok(events::table
                .order(events::starts_at.desc())
                .select(Event::as_select())
                .limit(500)
                .load(conn)?)
        })
        .await?;
    let rows: Vec<Value> = list.iter().map(|e| json!({ "id": e.id, "title": e.title, "visibility": e.visibility, "when": timefmt::local_datetime(e.starts_at, e.tz()), "taken": e.seats_taken, "capacity": e.capacity })).collect();
    Ok(page(
        "admin/events",
        &admin.0,
        json!({ "title": "Events", "events": rows }),
    ))
}

#[get("/events/new")]
fn new_event(admin: Admin) -> Template {
    page(
        "admin/event_form",
        &admin.0,
        json!({ "title": "New event", "form": EventForm { timezone: "Europe/Berlin".into(), capacity: "100".into(), visibility: "draft".into(), ..<EventForm as Default>::default() }, "errors": {}, "event": null }),
    )
}

#[post("/events", data = "<form>")]
async fn create_event(
    db: &State<Db>,
    admin: Admin,
    caches: PublicCaches<'_>,
    form: Form<EventForm>,
) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let new = match check_event(&f) {
        Ok(n) => n,
        Err(errors) => {
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    json!({ "title": "New event", "form": f, "errors": errors, "event": null }),
                ),
            )))
        }
    };
    let s2 = staff.clone();
    let created = db
        .run(move |conn| {
            let r = conn.transaction(|conn| {
                let e = Event::insert(conn, &new)?;
                if e.waiver_required {
                    crate::waivers::ensure_current_text(conn, &e)?;
                }
                auth::audit(
                    conn,
                    &s2,
                    "event.create",
                    "event",
                    Some(e.id),
                    None,
                    Some(event_json(&e)),
                )?;
                Ok::<_, diesel::result::Error>(e)
            });
            match r {
                Ok(e) => Ok(Ok(e)),
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => Ok(Err(())),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    match created {
        Ok(e) => {
            caches.invalidate();
            Ok(Page::Redirect(Redirect::to(format!(
                "/admin/events/{}",
                e.id
            ))))
        }
        Err(()) => Ok(Page::Status((
            Status::UnprocessableEntity,
            page(
                "admin/event_form",
                &staff,
                json!({ "title": "New event", "form": f, "errors": { "slug": "Another event already uses this slug." }, "event": null }),
            ),
        ))),
    }
}

/// The event of an edit page and its ticket types (any visibility).
async fn event_page_ctx(db: &Db, id: i64) -> AppResult<(Event, Vec<TicketType>)> {
    db.run(move |conn| Ok(Event::with_ticket_types(conn, EventLookup::Id(id))?))
        .await
}

fn types_json(types: &[TicketType], tz: chrono_tz::Tz) -> Vec<Value> {
    types
        .iter()
        .map(|t| json!({ "id": t.id, "name": t.name, "description": t.description, "price": crate::money::Money::new(t.price_minor, &t.currency).decimal_string(), "currency": t.currency,
                         "capacity": t.capacity, "taken": t.seats_taken, "max_per_booking": t.max_per_booking,
                         "opens": t.sales_open_at.map(|a| to_local_input(a, tz)).unwrap_or_default(), "closes": t.sales_close_at.map(|a| to_local_input(a, tz)).unwrap_or_default() }))
        .collect()
}

fn edit_ctx(e: &Event, types: &[TicketType], form: EventForm, errors: Value, tt: Value) -> Value {
    json!({ "title": format!("Edit {}", e.title), "form": form, "errors": errors, "tt": tt,
            "event": { "id": e.id, "visibility": e.visibility, "slug": e.slug, "taken": e.seats_taken, "private_url": e.private_token.as_ref().map(|t| format!("/p/{t}")) },
            "types": types_json(types, e.tz()) })
}

#[get("/events/<id>")]
async fn edit_event(db: &State<Db>, admin: Admin, id: i64) -> AppResult<Template> {
    let (e, types) = event_page_ctx(db, id).await?;
    Ok(page(
        "admin/event_form",
        &admin.0,
        edit_ctx(&e, &types, form_from(&e), json!({}), json!({})),
    ))
}

#[post("/events/<id>", data = "<form>")]
async fn update_event(
    db: &State<Db>,
    admin: Admin,
    caches: PublicCaches<'_>,
    id: i64,
    form: Form<EventForm>,
) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let (before, types) = event_page_ctx(db, id).await?;
    let new = match check_event(&f) {
        Ok(n) => n,
        Err(errors) => {
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    edit_ctx(&before, &types, f, json!(errors), json!({})),
                ),
            )))
        }
    };
    let s2 = staff.clone();
    let result = db
        .run(move |conn| {
            conn.transaction(|conn| {
                // Locks the event row: no hold can take seats while the capacity changes.
                let current: Event = events::table
                    .find(id)
                    .for_update()
                    .select(Event::as_select())
                    .first(conn)?;
                if new.capacity < current.seats_taken {
                    return Ok(Err(format!(
                        "{} seats are already taken; the capacity cannot be lower.",
                        current.seats_taken
                    )));
                }
                let token = match (Visibility::parse(&new.visibility), &current.private_token) {
                    (Some(Visibility::Private), Some(t)) => Some(t.clone()),
                    (Some(Visibility::Private), None) => Some(crate::tokens::private_event_token()),
                    _ => current.private_token.clone(),
                };
                diesel::update(events::table.find(id))
                    .set((
                        events::title.eq(&new.title),
                        events::slug.eq(&new.slug),
                        events::description.eq(&new.description),
                        events::venue.eq(&new.venue),
                        events::timezone.eq(&new.timezone),
                        events::starts_at.eq(new.starts_at),
                        events::ends_at.eq(new.ends_at),
                        events::capacity.eq(new.capacity),
                        events::visibility.eq(&new.visibility),
                        events::private_token.eq(token),
                        events::waiver_required.eq(new.waiver_required),
                        events::waiver_text.eq(&new.waiver_text),
                        events::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
                let after = Event::find(conn, id)?;
                if after.waiver_required {
                    crate::waivers::ensure_current_text(conn, &after)?;
                }
                auth::audit(
                    conn,
                    &s2,
                    "event.update",
                    "event",
                    Some(id),
                    Some(event_json(&current)),
                    Some(event_json(&after)),
                )?;
                Ok::<_, diesel::result::Error>(Ok(()))
            })
            .map_err(AppError::from)
        })
        .await;
    match result {
        Ok(Ok(())) => {
            caches.invalidate();
            Ok(Page::Redirect(Redirect::to(format!("/admin/events/{id}"))))
        }
        Ok(Err(msg)) => Ok(Page::Status((
            Status::UnprocessableEntity,
            page(
                "admin/event_form",
                &staff,
                edit_ctx(&before, &types, f, json!({ "capacity": msg }), json!({})),
            ),
        ))),
        Err(e)
            if e.status == Status::InternalServerError
                && e.source.as_deref().is_some_and(|s| s.contains("unique")) =>
        {
            Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    edit_ctx(
                        &before,
                        &types,
                        f,
                        json!({ "slug": "Another event already uses this slug." }),
                        json!({}),
                    ),
                ),
            )))
        }
        Err(e) => Err(e),
    }
}

#[derive(FromForm)]
pub struct CsrfForm {
    #[field(default = String::new())]
    csrf: String,
}

/// publish, unpublish, rotate (the private link) or duplicate.
#[post("/events/<id>/<action>", data = "<form>", rank = 2)]
async fn event_action(
    db: &State<Db>,
    admin: Admin,
    caches: PublicCaches<'_>,
    id: i64,
    action: &str,
    form: Form<CsrfForm>,
) -> AppResult<Redirect> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    if !["publish", "unpublish", "rotate", "duplicate"].contains(&action) {
        return Err(AppError::not_found());
    }
    let action = action.to_string();
    let target = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let (before, types) = Event::with_ticket_types(conn, EventLookup::Id(id))?;
                let target = match action.as_str() {
                    "publish" | "unpublish" => {
                        let v = if action == "publish" {
                            "public"
                        } else {
                            "draft"
                        };
                        diesel::update(events::table.find(id))
                            .set((
                                events::visibility.eq(v),
                                events::updated_at.eq(diesel::dsl::now),
                            ))
                            .execute(conn)?;
                        id
                    }
                    "rotate" => {
                        Event::rotate_private_token(conn, id)?;
                        id
                    }
                    _ => {
                        let copy = Event::insert(
                            conn,
                            &NewEvent {
                                slug: format!(
                                    "{}-copy-{}",
                                    before.slug,
                                    crate::tokens::crockford_code(4).to_lowercase()
                                ),
                                title: format!("{} (copy)", before.title)
                                    .chars()
                                    .take(200)
                                    .collect(),
                                description: before.description.clone(),
                                venue: before.venue.clone(),
                                timezone: before.timezone.clone(),
                                starts_at: before.starts_at,
                                ends_at: before.ends_at,
                                capacity: before.capacity,
                                visibility: "draft".into(),
                                private_token: None,
                                waiver_required: before.waiver_required,
                                waiver_text: before.waiver_text.clone(),
                            },
                        )?;
                        for t in types {
                            TicketType::insert(
                                conn,
                                &NewTicketType {
                                    event_id: copy.id,
                                    name: t.name,
                                    description: t.description,
                                    price_minor: t.price_minor,
                                    currency: t.currency,
                                    capacity: t.capacity,
                                    sales_open_at: t.sales_open_at,
                                    sales_close_at: t.sales_close_at,
                                    max_per_booking: t.max_per_booking,
                                    position: t.position,
                                },
                            )?;
                        }
                        copy.id
                    }
                };
                let after = Event::find(conn, target)?;
                let mut after_json = event_json(&after);
                if action == "rotate" {
                    after_json["private_token"] = json!("(rotated)");
                }
                auth::audit(
                    conn,
                    &staff,
                    &format!("event.{action}"),
                    "event",
                    Some(target),
                    Some(event_json(&before)),
                    Some(after_json),
                )?;
                Ok::<_, diesel::result::Error>(target)
            })
            .map_err(AppError::from)
        })
        .await?;
    caches.invalidate();
    Ok(Redirect::to(format!("/admin/events/{target}")))
}

// ---------------------------------------------------------------- ticket types

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
    #[field(default = String::from("EUR"))]
    currency: String,
    #[field(default = String::new())]
    capacity: String,
    #[field(default = String::from("10"))]
    max_per_booking: String,
    #[field(default = String::new())]
    opens: String,
    #[field(default = String::new())]
    closes: String,
}

fn check_type(
    f: &TicketTypeForm,
    tz: chrono_tz::Tz,
) -> Result<NewTicketType, HashMap<&'static str, String>> {
    let mut errors = HashMap::new();
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        errors.insert(
            "name",
            "Enter a name of at most 120 characters.".to_string(),
        );
    }
    let currency = f.currency.trim().to_uppercase();
    if !crate::money::is_currency_code(&currency) {
        errors.insert(
            "currency",
            "Enter a three-letter ISO currency code such as EUR.".to_string(),
        );
    }
    let price = crate::routes::admin::parse_amount(&f.price, &currency);
    if price.is_none() {
        errors.insert(
            "price",
            format!(
                "Enter the price like 25.00 (0 for free; {} decimals for {currency}).",
                crate::money::minor_digits(&currency)
            ),
        );
    }
    let capacity = f
        .capacity
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|c| (0..=1_000_000).contains(c));
    if capacity.is_none() {
        errors.insert(
            "capacity",
            "Enter a whole number from 0 to 1,000,000.".to_string(),
        );
    }
    let max = f
        .max_per_booking
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|c| (1..=100).contains(c));
    if max.is_none() {
        errors.insert(
            "max_per_booking",
            "Enter a whole number from 1 to 100.".to_string(),
        );
    }
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
        name: name.to_string(),
        description: f.description.trim().chars().take(500).collect(),
        price_minor: price.unwrap(),
        currency,
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

#[post("/events/<id>/ticket-types", data = "<form>")]
async fn create_ticket_type(
    db: &State<Db>,
    admin: Admin,
    caches: PublicCaches<'_>,
    id: i64,
    form: Form<TicketTypeForm>,
) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let (event, types) = event_page_ctx(db, id).await?;
    let mut new = match check_type(&f, event.tz()) {
        Ok(n) => n,
        Err(errors) => {
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    edit_ctx(
                        &event,
                        &types,
                        form_from(&event),
                        json!({}),
                        json!({ "errors": { "new": errors }, "values": { "new": f } }),
                    ),
                ),
            )))
        }
    };
    new.event_id = id;
    new.position = types.len() as i32;
    db.run(move |conn| {
        conn.transaction(|conn| {
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
async fn update_ticket_type(
    db: &State<Db>,
    admin: Admin,
    caches: PublicCaches<'_>,
    id: i64,
    form: Form<TicketTypeForm>,
) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    let f = form.into_inner();
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
    let show_error = |errors: Value| {
        Page::Status((
            Status::UnprocessableEntity,
            page(
                "admin/event_form",
                &staff,
                edit_ctx(
                    &event,
                    &types,
                    form_from(&event),
                    json!({}),
                    json!({ "errors": { id.to_string(): errors }, "values": { id.to_string(): submitted.clone() } }),
                ),
            ),
        ))
    };
    let new = match check_type(&f, event.tz()) {
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
                if new.currency != before.currency && before.seats_taken > 0 {
                    return Ok(Err(
                        "The currency cannot change once seats are taken.".to_string()
                    ));
                }
                diesel::update(ticket_types::table.find(id))
                    .set((
                        ticket_types::name.eq(&new.name),
                        ticket_types::description.eq(&new.description),
                        ticket_types::price_minor.eq(new.price_minor),
                        ticket_types::currency.eq(&new.currency),
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

// ---------------------------------------------------------------- users

/// Every staff account, for the users page.
async fn user_rows(db: &Db) -> AppResult<Vec<Value>> {
    let list: Vec<User> = db
        .run(|conn| {
            Ok(users::table
                .order(users::email)
                .select(User::as_select())
                .load(conn)?)
        })
        .await?;
    Ok(list
        .iter()
        .map(|u| json!({ "id": u.id, "email": u.email, "name": u.name, "role": u.role, "active": u.active }))
        .collect())
}

#[get("/users")]
async fn users_page(db: &State<Db>, admin: Admin) -> AppResult<Template> {
    let rows = user_rows(db).await?;
    Ok(page(
        "admin/users",
        &admin.0,
        json!({ "title": "Users", "users": rows, "errors": {}, "created": null, "form": { "email": "", "name": "", "role": "staff" } }),
    ))
}

#[derive(FromForm, serde::Serialize)]
pub struct UserForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::from("staff"))]
    role: String,
}

#[post("/users", data = "<form>")]
async fn create_user(db: &State<Db>, admin: Admin, form: Form<UserForm>) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let mut errors: HashMap<&str, String> = HashMap::new();
    let email = ticketing_core::validate::email(&f.email)
        .map_err(|e| errors.insert("email", e))
        .ok();
    let name = ticketing_core::validate::name(&f.name)
        .map_err(|e| errors.insert("name", e))
        .ok();
    if !["admin", "staff"].contains(&f.role.as_str()) {
        errors.insert("role", "Choose admin or staff.".into());
    }
    let password = crate::passwords::generate();
    let mut created = None;
    if errors.is_empty() {
        let (email, name, role, hash, s2) = (
            email.unwrap(),
            name.unwrap(),
            f.role.clone(),
            crate::passwords::hash(&password),
            staff.clone(),
        );
        let done = db
            .run(move |conn| {
                if User::find_by_email(conn, &email)?.is_some() {
                    return Ok(false);
                }
                conn.transaction(|conn| {
                    let u = User::insert(
                        conn,
                        &NewUser {
                            email,
                            name,
                            password_hash: hash,
                            role,
                        },
                    )?;
                    auth::audit(
                        conn,
                        &s2,
                        "user.create",
                        "user",
                        Some(u.id),
                        None,
                        Some(json!({ "email": u.email, "role": u.role })),
                    )
                })?;
                Ok(true)
            })
            .await?;
        if done {
            created = Some(json!({ "email": f.email.trim(), "password": password }));
        } else {
            errors.insert("email", "An account with this email exists.".into());
        }
    }
    let rows = user_rows(db).await?;
    let status = if errors.is_empty() {
        Status::Ok
    } else {
        Status::UnprocessableEntity
    };
    Ok(Page::Status((
        status,
        page(
            "admin/users",
            &staff,
            json!({ "title": "Users", "users": rows, "errors": errors, "created": created, "form": f }),
        ),
    )))
}

#[post("/users/<id>/deactivate", data = "<form>")]
async fn deactivate_user(
    db: &State<Db>,
    admin: Admin,
    id: i64,
    form: Form<CsrfForm>,
) -> AppResult<Redirect> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    if id == staff.user.id {
        return Err(AppError::bad_request(
            "You cannot deactivate your own account.",
        ));
    }
    db.run(move |conn| {
        conn.transaction(|conn| {
            diesel::update(users::table.find(id))
                .set(users::active.eq(false))
                .execute(conn)?;
            diesel::update(
                admin_sessions::table
                    .filter(admin_sessions::user_id.eq(id))
                    .filter(admin_sessions::revoked_at.is_null()),
            )
            .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
            auth::audit(
                conn,
                &staff,
                "user.deactivate",
                "user",
                Some(id),
                Some(json!({ "active": true })),
                Some(json!({ "active": false })),
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/admin/users"))
}

#[get("/password")]
fn password_page(staff: Staff) -> Template {
    page(
        "admin/password",
        &staff,
        json!({ "title": "Change password", "errors": {}, "done": false }),
    )
}

#[derive(FromForm)]
pub struct PasswordForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    current: String,
    #[field(default = String::new())]
    new: String,
}

#[post("/password", data = "<form>")]
async fn change_password(
    db: &State<Db>,
    staff: Staff,
    form: Form<PasswordForm>,
) -> AppResult<Page> {
    staff.check_csrf(&form.csrf)?;
    let mut errors: HashMap<&str, String> = HashMap::new();
    if auth::authenticate(db, &staff.user.email, &form.current)
        .await?
        .is_none()
    {
        errors.insert("current", "That is not your current password.".into());
    }
    if form.new.chars().count() < 12 || form.new.chars().count() > 200 {
        errors.insert("new", "Use 12 to 200 characters.".into());
    }
    if !errors.is_empty() {
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            page(
                "admin/password",
                &staff,
                json!({ "title": "Change password", "errors": errors, "done": false }),
            ),
        )));
    }
    let (hash, s2, session) = (
        crate::passwords::hash(&form.new),
        staff.clone(),
        staff.session_id,
    );
    db.run(move |conn| {
        conn.transaction(|conn| {
            diesel::update(users::table.find(s2.user.id))
                .set((
                    users::password_hash.eq(hash),
                    users::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
            // Other sessions of this account end; this one goes on.
            diesel::update(
                admin_sessions::table
                    .filter(admin_sessions::user_id.eq(s2.user.id))
                    .filter(admin_sessions::id.ne(session))
                    .filter(admin_sessions::revoked_at.is_null()),
            )
            .set(admin_sessions::revoked_at.eq(diesel::dsl::now))
            .execute(conn)?;
            auth::audit(
                conn,
                &s2,
                "user.password",
                "user",
                Some(s2.user.id),
                None,
                None,
            )
        })?;
        Ok(())
    })
    .await?;
    Ok(Page::Template(page(
        "admin/password",
        &staff,
        json!({ "title": "Change password", "errors": {}, "done": true }),
    )))
}
