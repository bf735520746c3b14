//! Events (admins only): create, edit, publish, unpublish, duplicate, rotate the private
//! link, waiver text. Every form keeps its input and shows messages next to fields; every
//! change is audited. The event's edit page also lists its ticket types (see
//! `ticket_types`, which renders the same page with its own messages).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post, State};
use rocket_dyn_templates::Template;
use serde_json::{json, Value};

use super::{page, CsrfOnly};
use crate::auth::{self, Admin, AdminForm};
use crate::cache::PublicCaches;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{Event, NewEvent, NewTicketType, TicketType, Visibility};
use crate::routes::checkout::Page;
use crate::schema::events;
use crate::timefmt;
use crate::{media, models::event::EventImage, models::event::EventPlace};

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
    // media (issue 15): the venue's address and coordinates, the image and its alt text.
    #[field(default = String::new())]
    venue_address: String,
    #[field(default = String::new())]
    venue_latitude: String,
    #[field(default = String::new())]
    venue_longitude: String,
    /// The file chosen (multipart); never kept when the form comes back with errors.
    #[serde(skip)]
    image: media::Upload,
    #[field(default = String::new())]
    image_alt: String,
    #[field(default = false)]
    remove_image: bool,
    /// issue 16: the currency of all the event's prices (one of the PayPal list).
    #[field(default = String::from("EUR"))]
    currency: String,
}

csrf_form!(EventForm);

/// Local "YYYY-MM-DDTHH:MM" in `tz` to UTC.
pub(super) fn parse_local(text: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M").ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

pub(super) fn to_local_input(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// Validates the form; the values to store, or messages by field.
fn check_event(f: &EventForm) -> Result<NewEvent, HashMap<&'static str, String>> {
    let mut errors = HashMap::new();
    use ticketing_core::validate::{multi_line, required_line, single_line};
    let mut text = |key: &'static str, checked: Result<String, String>| {
        checked
            .map_err(|e| errors.insert(key, e))
            .unwrap_or_default()
    };
    let title = text(
        "title",
        required_line(&f.title, 200, "Enter a title of at most 200 characters."),
    );
    let venue = text("venue", single_line(&f.venue, 300));
    let description = text("description", multi_line(&f.description, 20_000));
    let waiver_text = text("waiver_text", multi_line(&f.waiver_text, 50_000));
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
    let capacity = super::whole_number(&mut errors, "capacity", &f.capacity, 0..=1_000_000);
    let visibility = Visibility::parse(f.visibility.trim());
    if visibility.is_none() {
        errors.insert("visibility", "Choose draft, public or private.".to_string());
    }
    if !crate::money::is_paypal_currency(f.currency.trim()) {
        errors.insert(
            "currency",
            "Choose one of the listed currencies (those PayPal accepts).".to_string(),
        );
    }
    if f.waiver_required && waiver_text.is_empty() && !errors.contains_key("waiver_text") {
        errors.insert(
            "waiver_text",
            "Enter the waiver text attendees will sign.".to_string(),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let visibility = visibility.unwrap();
    Ok(NewEvent {
        slug,
        title,
        description,
        venue,
        timezone: f.timezone.trim().to_string(),
        starts_at: starts.unwrap(),
        ends_at: ends.unwrap(),
        capacity: capacity.unwrap(),
        visibility: visibility.as_str().into(),
        private_token: (visibility == Visibility::Private).then(crate::tokens::private_event_token),
        waiver_required: f.waiver_required,
        waiver_text,
    })
}

/// The message for a visibility that would publish an event without ticket types (issue
/// 16: such an event could be listed with nothing to buy).
pub(super) const NO_TICKET_TYPES: &str =
    "Add a ticket type first: an event without ticket types stays a draft.";

/// The choices of the event form's currency select: code, name, and whether chosen.
fn currency_choices(chosen: &str) -> Vec<Value> {
    crate::money::PAYPAL_CURRENCIES
        .iter()
        .map(|(code, name)| json!({ "code": code, "name": name, "selected": *code == chosen }))
        .collect()
}

// media (issue 15) ---------------------------------------------------------------------

/// What a save does to the event's image.
enum ImageChange {
    /// Keeps the image (if any), with this alt text.
    Keep(String),
    /// Shows a new image (stored with the event's save).
    Set(ticketing_db::models::media::EncodedImage, String),
    Remove,
}

/// The venue's place and the image change of a valid form.
struct MediaEdit {
    place: EventPlace,
    image: ImageChange,
}

/// A latitude or longitude: empty (none), or a decimal number in `-limit..=limit` (a
/// decimal comma is taken too).
fn coordinate(raw: &str, limit: f64) -> Result<Option<f64>, ()> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > 24 {
        return Err(());
    }
    let text = if text.contains('.') {
        text.to_string()
    } else {
        text.replace(',', ".")
    };
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && (-limit..=limit).contains(&v) => Ok(Some(v)),
        _ => Err(()),
    }
}

/// Checks the venue and image fields (decoding a chosen file off the runtime); `shown` is
/// whether the event has an image now.
async fn check_media(
    f: &EventForm,
    shown: bool,
) -> Result<MediaEdit, HashMap<&'static str, String>> {
    use ticketing_core::validate::{multi_line, single_line};
    let mut errors = HashMap::new();
    let venue_address = multi_line(&f.venue_address, 1000)
        .map_err(|e| errors.insert("venue_address", e))
        .unwrap_or_default();
    let lat = coordinate(&f.venue_latitude, 90.0).map_err(|()| {
        errors.insert(
            "venue_latitude",
            "Enter a latitude between -90 and 90 in decimal degrees, like 52.5163.".to_string(),
        )
    });
    let lon = coordinate(&f.venue_longitude, 180.0).map_err(|()| {
        errors.insert(
            "venue_longitude",
            "Enter a longitude between -180 and 180 in decimal degrees, like 13.3777.".to_string(),
        )
    });
    let (venue_latitude, venue_longitude) = match (lat, lon) {
        (Ok(Some(lat)), Ok(Some(lon))) => (Some(lat), Some(lon)),
        (Ok(None), Ok(None)) => (None, None),
        (Ok(None), Ok(Some(_))) => {
            errors.insert(
                "venue_latitude",
                "Enter the latitude too, or clear the longitude.".to_string(),
            );
            (None, None)
        }
        (Ok(Some(_)), Ok(None)) => {
            errors.insert(
                "venue_longitude",
                "Enter the longitude too, or clear the latitude.".to_string(),
            );
            (None, None)
        }
        _ => (None, None),
    };
    let alt = single_line(&f.image_alt, 300).map_err(|e| errors.insert("image_alt", e));
    let upload = match &f.image {
        media::Upload::None => None,
        media::Upload::TooBig => {
            errors.insert("image", media::Refused::TooBig.message());
            None
        }
        media::Upload::File(bytes) => match media::process(bytes.clone()).await {
            Ok(encoded) => Some(encoded),
            Err(refused) => {
                errors.insert("image", refused.message());
                None
            }
        },
    };
    let will_show = upload.is_some() || (shown && !f.remove_image);
    let alt = alt.unwrap_or_default();
    if will_show && alt.is_empty() && !errors.contains_key("image_alt") {
        errors.insert(
            "image_alt",
            "Describe the image for people who cannot see it (required with an image).".to_string(),
        );
    }
    if !errors.is_empty() {
        if errors.contains_key("image") || upload.is_some() {
            errors.entry("image").or_insert_with(|| {
                "Choose the image again: a file is not kept when the form has errors.".to_string()
            });
        }
        return Err(errors);
    }
    let image = match upload {
        Some(encoded) => ImageChange::Set(encoded, alt),
        None if f.remove_image => ImageChange::Remove,
        None => ImageChange::Keep(if shown { alt } else { String::new() }),
    };
    Ok(MediaEdit {
        place: EventPlace {
            venue_address,
            venue_latitude,
            venue_longitude,
        },
        image,
    })
}

/// Saves a checked [`MediaEdit`] on event `id` (in the caller's transaction).
fn save_media(conn: &mut PgConnection, id: i64, edit: &MediaEdit) -> QueryResult<()> {
    Event::set_place(conn, id, &edit.place)?;
    match &edit.image {
        ImageChange::Keep(alt) => {
            diesel::update(events::table.find(id))
                .set(events::image_alt.eq(alt))
                .execute(conn)?;
        }
        ImageChange::Set(encoded, alt) => {
            crate::models::MediaImage::store(conn, encoded)?;
            Event::set_image(conn, id, &EventImage::of(encoded, alt))?;
        }
        ImageChange::Remove => Event::set_image(conn, id, &EventImage::none())?,
    }
    Ok(())
}

/// Both checks of the event form; every message by field.
async fn check_all(
    f: &EventForm,
    shown: bool,
) -> Result<(NewEvent, MediaEdit), HashMap<&'static str, String>> {
    let event = check_event(f);
    let media = check_media(f, shown).await;
    match (event, media) {
        (Ok(event), Ok(media)) => Ok((event, media)),
        (event, media) => {
            let mut errors = event.err().unwrap_or_default();
            errors.extend(media.err().unwrap_or_default());
            Err(errors)
        }
    }
}

/// `errors` of a save refused after the form was checked, with the note that a chosen file
/// must be chosen again (browsers never fill a file field in).
fn upload_lost(f: &EventForm, mut errors: Value) -> Value {
    if matches!(f.image, media::Upload::File(_)) {
        errors["image"] =
            json!("Choose the image again: a file is not kept when the form has errors.");
    }
    errors
}

fn format_coordinate(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The edit page's view of the event's image (the narrowest variant as a preview).
fn image_json(e: &Event) -> Value {
    match crate::views::EventImageView::of(e) {
        Some(v) => {
            json!({ "preview": v.thumb_src, "width": v.thumb_width, "height": v.thumb_height, "alt": v.alt })
        }
        None => Value::Null,
    }
}

// ----------------------------------------------------------------------- end of media

fn event_json(e: &Event) -> Value {
    json!({ "id": e.id, "title": e.title, "slug": e.slug, "visibility": e.visibility, "capacity": e.capacity,
            "seats_taken": e.seats_taken, "starts_at": e.starts_at.to_rfc3339(), "ends_at": e.ends_at.to_rfc3339(),
            "timezone": e.timezone, "venue": e.venue, "waiver_required": e.waiver_required, "waiver_text": e.waiver_text,
            "venue_address": e.venue_address, "venue_latitude": e.venue_latitude, "venue_longitude": e.venue_longitude,
            "image": e.image_hash, "image_alt": e.image_alt, "currency": e.currency })
}

pub(super) fn form_from(e: &Event) -> EventForm {
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
        venue_address: e.venue_address.clone(),
        venue_latitude: format_coordinate(e.venue_latitude),
        venue_longitude: format_coordinate(e.venue_longitude),
        image: media::Upload::None,
        image_alt: e.image_alt.clone(),
        remove_image: false,
        currency: e.currency.clone(),
    }
}

#[get("/events")]
pub(super) async fn events_list(db: &State<Db>, admin: Admin) -> AppResult<Template> {
    let list: Vec<Event> = db
        .run(|conn| {
            Ok(events::table
                .order(events::starts_at.desc())
                .select(Event::as_select())
                .limit(500)
                .load(conn)?)
        })
        .await?;
    let rows: Vec<Value> = list.iter().map(|e| json!({ "id": e.id, "title": e.title, "visibility": e.visibility, "when": timefmt::local_datetime(e.starts_at, e.tz()), "zone": e.timezone, "taken": e.seats_taken, "capacity": e.capacity, "currency": e.currency })).collect();
    Ok(page(
        "admin/events",
        &admin.0,
        json!({ "title": "Events", "events": rows }),
    ))
}

#[get("/events/new")]
pub(super) fn new_event(admin: Admin) -> Template {
    page(
        "admin/event_form",
        &admin.0,
        json!({ "title": "New event", "form": EventForm { timezone: "Europe/Berlin".into(), capacity: "100".into(), visibility: "draft".into(), currency: "EUR".into(), ..<EventForm as Default>::default() }, "currencies": currency_choices("EUR"), "errors": {}, "event": null }),
    )
}

#[post("/events", data = "<form>")]
pub(super) async fn create_event(
    db: &State<Db>,
    caches: PublicCaches<'_>,
    form: AdminForm<EventForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let (new, media_edit) = match check_all(&f, false).await {
        // A new event has no ticket types yet: it starts as a draft (issue 16).
        Ok(n) if n.0.visibility == "draft" => n,
        checked => {
            // Refused only for its visibility: the checked file must be chosen again.
            let late = checked.is_ok();
            let mut errors = checked.err().unwrap_or_default();
            if f.visibility.trim() != "draft" && !errors.contains_key("visibility") {
                errors.insert("visibility", NO_TICKET_TYPES.to_string());
            }
            let errors = if late {
                upload_lost(&f, json!(errors))
            } else {
                json!(errors)
            };
            let currencies = currency_choices(f.currency.trim());
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    json!({ "title": "New event", "form": f, "currencies": currencies, "errors": errors, "event": null }),
                ),
            )));
        }
    };
    let currency = f.currency.trim().to_string();
    let s2 = staff.clone();
    let created = db
        .run(move |conn| {
            let r = conn.transaction(|conn| {
                let e = Event::insert(conn, &new)?;
                Event::set_currency(conn, e.id, &currency)?;
                save_media(conn, e.id, &media_edit)?;
                let e = Event::find(conn, e.id)?;
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
                json!({ "title": "New event", "errors": upload_lost(&f, json!({ "slug": "Another event already uses this slug." })), "currencies": currency_choices(f.currency.trim()), "form": f, "event": null }),
            ),
        ))),
    }
}

/// The event of an edit page and its ticket types (any visibility).
pub(super) async fn event_page_ctx(db: &Db, id: i64) -> AppResult<(Event, Vec<TicketType>)> {
    db.run(move |conn| Ok(Event::with_ticket_types(conn, EventLookup::Id(id))?))
        .await
}

fn types_json(types: &[TicketType], tz: chrono_tz::Tz) -> Vec<Value> {
    types
        .iter()
        .map(|t| json!({ "id": t.id, "name": t.name, "description": t.description, "price": crate::money::Money::new(t.price_minor, &t.currency).decimal_string(), "price_shown": t.price().display(), "currency": t.currency,
                         "capacity": t.capacity, "taken": t.seats_taken, "max_per_booking": t.max_per_booking,
                         "opens": t.sales_open_at.map(|a| to_local_input(a, tz)).unwrap_or_default(), "closes": t.sales_close_at.map(|a| to_local_input(a, tz)).unwrap_or_default() }))
        .collect()
}

pub(super) fn edit_ctx(
    e: &Event,
    types: &[TicketType],
    form: EventForm,
    errors: Value,
    tt: Value,
) -> Value {
    let currencies = currency_choices(form.currency.trim());
    json!({ "title": format!("Edit {}", e.title), "form": form, "errors": errors, "tt": tt, "currencies": currencies,
            "event": { "id": e.id, "visibility": e.visibility, "slug": e.slug, "taken": e.seats_taken, "private_url": e.private_token.as_ref().map(|t| format!("/p/{t}")), "image": image_json(e), "currency": e.currency, "no_types": types.is_empty() },
            "types": types_json(types, e.tz()) })
}

#[get("/events/<id>")]
pub(super) async fn edit_event(db: &State<Db>, admin: Admin, id: i64) -> AppResult<Template> {
    let (e, types) = event_page_ctx(db, id).await?;
    Ok(page(
        "admin/event_form",
        &admin.0,
        edit_ctx(&e, &types, form_from(&e), json!({}), json!({})),
    ))
}

#[post("/events/<id>", data = "<form>")]
pub(super) async fn update_event(
    db: &State<Db>,
    caches: PublicCaches<'_>,
    availability: &State<crate::bookings::Availability>,
    id: i64,
    form: AdminForm<EventForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let (before, types) = event_page_ctx(db, id).await?;
    let no_types = types.is_empty();
    let (new, media_edit) = match check_all(&f, before.image_hash.is_some()).await {
        // No event goes public or private without ticket types (issue 16).
        Ok(n) if !no_types || n.0.visibility == "draft" => n,
        checked => {
            let late = checked.is_ok();
            let mut errors = checked.err().unwrap_or_default();
            if no_types && f.visibility.trim() != "draft" {
                errors.insert("visibility", NO_TICKET_TYPES.to_string());
            }
            let errors = if late {
                upload_lost(&f, json!(errors))
            } else {
                json!(errors)
            };
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    edit_ctx(&before, &types, f, errors, json!({})),
                ),
            )));
        }
    };
    let currency = f.currency.trim().to_string();
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
                    return Ok(Err((
                        "capacity",
                        format!(
                            "{} seats are already taken; the capacity cannot be lower.",
                            current.seats_taken
                        ),
                    )));
                }
                if currency != current.currency {
                    let booked: i64 = crate::schema::bookings::table
                        .filter(crate::schema::bookings::event_id.eq(id))
                        .count()
                        .get_result(conn)?;
                    if booked > 0 {
                        return Ok(Err((
                            "currency",
                            format!(
                                "The event has {booked} booking(s) in {}; its currency cannot change.",
                                current.currency
                            ),
                        )));
                    }
                    Event::set_currency(conn, id, &currency)?;
                }
                let token = private_token_after(
                    &current,
                    Visibility::parse(&new.visibility).unwrap_or(Visibility::Draft),
                );
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
                save_media(conn, id, &media_edit)?;
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
            availability.nudge();
            Ok(Page::Redirect(Redirect::to(format!("/admin/events/{id}"))))
        }
        Ok(Err((field, msg))) => Ok(Page::Status((
            Status::UnprocessableEntity,
            page("admin/event_form", &staff, {
                let errors = upload_lost(&f, json!({ field: msg }));
                edit_ctx(&before, &types, f, errors, json!({}))
            }),
        ))),
        Err(e)
            if e.status == Status::InternalServerError
                && e.source.as_deref().is_some_and(|s| s.contains("unique")) =>
        {
            Ok(Page::Status((
                Status::UnprocessableEntity,
                page("admin/event_form", &staff, {
                    let errors = upload_lost(
                        &f,
                        json!({ "slug": "Another event already uses this slug." }),
                    );
                    edit_ctx(&before, &types, f, errors, json!({}))
                }),
            )))
        }
        Err(e) => Err(e),
    }
}

/// publish, unpublish, rotate (the private link) or duplicate.
#[post("/events/<id>/<action>", data = "<form>", rank = 2)]
pub(super) async fn event_action(
    db: &State<Db>,
    caches: PublicCaches<'_>,
    availability: &State<crate::bookings::Availability>,
    id: i64,
    action: &str,
    form: AdminForm<CsrfOnly>,
) -> AppResult<Page> {
    let AdminForm { staff, .. } = form;
    if !["publish", "unpublish", "rotate", "duplicate"].contains(&action) {
        return Err(AppError::not_found());
    }
    if action == "publish" {
        // issue 16: no event goes public with nothing to buy.
        let (e, types) = event_page_ctx(db, id).await?;
        if types.is_empty() {
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/event_form",
                    &staff,
                    edit_ctx(
                        &e,
                        &types,
                        form_from(&e),
                        json!({ "visibility": NO_TICKET_TYPES }),
                        json!({}),
                    ),
                ),
            )));
        }
    }
    let action = action.to_string();
    let target = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let (before, types) = Event::with_ticket_types(conn, EventLookup::Id(id))?;
                let target = match action.as_str() {
                    "publish" | "unpublish" => {
                        let v = if action == "publish" {
                            Visibility::Public
                        } else {
                            Visibility::Draft
                        };
                        diesel::update(events::table.find(id))
                            .set((
                                events::visibility.eq(v.as_str()),
                                events::private_token.eq(private_token_after(&before, v)),
                                events::updated_at.eq(diesel::dsl::now),
                            ))
                            .execute(conn)?;
                        id
                    }
                    "rotate" => {
                        if before.visibility() != Visibility::Private {
                            return Ok(Err(()));
                        }
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
                        Event::set_currency(conn, copy.id, &before.currency)?;
                        // media (issue 15): the copy shows the same venue and image.
                        Event::set_place(conn, copy.id, &before.place())?;
                        if before.image_hash.is_some() {
                            Event::set_image(conn, copy.id, &before.image())?;
                        }
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
                Ok::<_, diesel::result::Error>(Ok(target))
            })
            .map_err(AppError::from)
        })
        .await?;
    let Ok(target) = target else {
        return Err(AppError::new(
            Status::Conflict,
            "Only a private event has a secret link to rotate; nothing was changed.",
        ));
    };
    caches.invalidate();
    // Open live streams learn at once that their link may have stopped working.
    availability.nudge();
    Ok(Page::Redirect(Redirect::to(format!(
        "/admin/events/{target}"
    ))))
}

/// The private token an event has after its visibility becomes `to`: kept while it stays
/// private, a fresh one whenever it becomes private, none otherwise, so an old link never
/// comes back (test
/// `private::making_an_event_private_again_gives_it_a_new_link_and_old_links_stay_dead`).
fn private_token_after(current: &Event, to: Visibility) -> Option<String> {
    match (current.visibility(), &current.private_token, to) {
        (Visibility::Private, Some(token), Visibility::Private) => Some(token.clone()),
        (_, _, Visibility::Private) => Some(crate::tokens::private_event_token()),
        _ => None,
    }
}
