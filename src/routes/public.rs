//! Public area (`/`): the listing of upcoming public events, event pages, the sitemap and
//! robots.txt. Drafts and private events never appear here.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use rocket::http::ContentType;
use rocket::response::content::RawHtml;
use rocket::response::stream::{Event as SseEvent, EventStream};
use rocket::tokio::sync::watch;
use rocket::{get, routes, Route, Shutdown, State};
use rocket_dyn_templates::{Metadata, Template};
use serde::Serialize;
use serde_json::json;

use crate::bookings::availability::{self, Availability, Link, Snapshot, StreamSlots};
use crate::cache::{EventCache, ListingCache};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::{Event, TicketType};
use crate::money::Money;
use crate::net::ClientKey;
use crate::views::{EventCard, EventView};
use crate::AppInfo;

/// Events per listing page.
pub const PAGE_SIZE: i64 = 12;

pub fn routes() -> Vec<Route> {
    routes![listing, event_page, event_availability, sitemap, robots]
}

#[get("/?<page>")]
async fn listing(
    db: &State<Db>,
    cache: &State<ListingCache>,
    templates: Metadata<'_>,
    page: Option<i64>,
) -> AppResult<RawHtml<String>> {
    let page = crate::views::page_number(page);
    let html = match cache.get(&page) {
        Some(html) => html,
        None => {
            let now = Utc::now();
            let (cards, total) = db
                .run(move |conn| {
                    let (events, total) = Event::list_upcoming_public(
                        conn,
                        now,
                        PAGE_SIZE,
                        crate::views::page_offset(page, PAGE_SIZE),
                    )?;
                    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
                    let types = TicketType::for_events(conn, &ids)?;
                    let cards: Vec<EventCard> = events
                        .iter()
                        .map(|e| {
                            let mine: Vec<TicketType> = types
                                .iter()
                                .filter(|t| t.event_id == e.id)
                                .cloned()
                                .collect();
                            EventCard::new(e, &mine)
                        })
                        .collect();
                    Ok((cards, total))
                })
                .await?;
            let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
            // Rendered once for everybody: the page holds nothing personal.
            let html = if page > pages {
                None
            } else {
                let context = json!({
                    "title": "Upcoming events",
                    "events": cards,
                    "page": page,
                    "pages": pages,
                    "total": total,
                    "prev_page": if page > 1 { Some(page - 1) } else { None },
                    "next_page": if page < pages { Some(page + 1) } else { None },
                });
                let (_, html) = templates
                    .render("index", context)
                    .ok_or_else(|| AppError::internal("the listing template did not render"))?;
                Some(html)
            };
            let html = Arc::new(html);
            cache.put(page, html.clone());
            html
        }
    };
    match html.as_ref() {
        Some(html) => Ok(RawHtml(html.clone())),
        None => Err(AppError::not_found()),
    }
}

#[get("/events/<slug>")]
async fn event_page(
    db: &State<Db>,
    cache: &State<EventCache>,
    app: &State<crate::AppInfo>,
    jar: &rocket::http::CookieJar<'_>,
    templates: Metadata<'_>,
    slug: &str,
) -> AppResult<RawHtml<String>> {
    crate::routes::checkout::ensure_browser_id(jar, app.production);
    let key = slug.to_string();
    let page = match cache.get(&key) {
        Some(page) => page,
        None => {
            let lookup = key.clone();
            let (view, in_baskets) = db
                .run(move |conn| {
                    let (event, types) =
                        Event::with_ticket_types(conn, EventLookup::PublicSlug(&lookup))?;
                    let in_baskets = availability::seats_in_baskets(conn, event.id)?;
                    let view = serde_json::to_value(EventView::new(&event, &types, Utc::now()))
                        .map_err(AppError::internal)?;
                    Ok((view, in_baskets))
                })
                .await?;
            // Rendered once for everybody, with a slot for each visitor's form token.
            let form = TicketForm {
                form_token: form_token_slot().to_string(),
                ..TicketForm::default()
            };
            let (_, html) = templates
                .render("event", event_context(&view, in_baskets, None, form))
                .ok_or_else(|| AppError::internal("the event template did not render"))?;
            // The token is what finds a resubmitted form's booking: a page where it is not
            // exactly once would hand every visitor the same one.
            if html.matches(form_token_slot()).count() != 1 {
                return Err(AppError::internal(
                    "the event page must hold the form token once",
                ));
            }
            let page = Arc::new(html);
            cache.put(key, page.clone());
            page
        }
    };
    Ok(RawHtml(page.replacen(
        form_token_slot(),
        &crate::tokens::url_token(18),
        1,
    )))
}

/// A marker, random per process, that stands for the visitor's form token in a cached event
/// page: nobody can type it into an event's text, so only the form's field is replaced.
fn form_token_slot() -> &'static str {
    static SLOT: OnceLock<String> = OnceLock::new();
    SLOT.get_or_init(|| format!("form-token-slot-{}", crate::tokens::url_token(18)))
}

/// Live seats left for an open event page (Server-Sent Events).
#[get("/events/<slug>/availability")]
async fn event_availability(
    db: &State<Db>,
    hub: &State<Availability>,
    slots: &State<StreamSlots>,
    client: ClientKey,
    shutdown: Shutdown,
    slug: &str,
) -> AppResult<EventStream![]> {
    let slot = stream_slot(slots, client)?;
    let slug = slug.to_string();
    let link = Link::Public(slug.clone());
    let snapshot = db
        .run(move |conn| {
            let event = Event::find_public_by_slug(conn, &slug)?;
            availability::load(conn, &[event.id])?
                .pop()
                .ok_or_else(AppError::not_found)
        })
        .await?;
    Ok(availability_stream(
        hub.subscribe(snapshot),
        link,
        slot,
        shutdown,
    ))
}

/// A place for one more availability stream of `client`, or 429: the page works without
/// it (test `hoarding::one_client_may_keep_only_a_few_streams_open`).
pub fn stream_slot(slots: &StreamSlots, client: ClientKey) -> AppResult<availability::StreamSlot> {
    slots.take(&client.to_string()).ok_or_else(|| {
        AppError::new(
            rocket::http::Status::TooManyRequests,
            format!(
                "Too many live updates are open from your network (at most {}). \
                     Close other tabs of this site; pages still work without live updates.",
                slots.max()
            ),
        )
    })
}

/// Streams every change of one event's availability until the client leaves, the server
/// shuts down, or `link` no longer leads to the event (then a last `closed` message); the
/// first message is the current state. `slot` is held for as long as the stream is open.
pub fn availability_stream(
    mut rx: watch::Receiver<Snapshot>,
    link: Link,
    slot: availability::StreamSlot,
    mut shutdown: Shutdown,
) -> EventStream![] {
    EventStream! {
        let _slot = slot;
        let mut snap = rx.borrow_and_update().clone();
        loop {
            if !snap.gate.admits(&link) {
                yield SseEvent::data("gone").event("closed");
                break;
            }
            yield SseEvent::json(&snap).event("availability");
            rocket::tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() { break; }
                    snap = rx.borrow_and_update().clone();
                }
                _ = &mut shutdown => break,
            }
        }
    }
    // A stream whose client has gone is noticed only when a write fails, so the heartbeat
    // also bounds how long a closed tab keeps its place in `StreamSlots`.
    .heartbeat(HEARTBEAT)
}

/// How often an idle availability stream sends a comment line.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// The ticket form's state: messages next to fields, the buyer's input, and the one-time
/// token that makes a resubmitted form find its first booking.
#[derive(Debug, Default, Serialize)]
pub struct TicketForm {
    pub errors: HashMap<String, String>,
    pub values: HashMap<String, String>,
    pub form_token: String,
}

impl TicketForm {
    pub fn fresh() -> TicketForm {
        TicketForm {
            form_token: crate::tokens::url_token(18),
            ..TicketForm::default()
        }
    }
}

/// Renders the event page for a public event or, with `private_token`, a private one;
/// `in_baskets`: seats held but not paid for yet.
pub fn render_event(
    view: EventView,
    in_baskets: i32,
    private_token: Option<&str>,
    form: TicketForm,
) -> Template {
    let value = serde_json::to_value(view).unwrap_or_default();
    Template::render(
        "event",
        event_context(&value, in_baskets, private_token, form),
    )
}

/// What the event template needs.
fn event_context(
    view: &serde_json::Value,
    in_baskets: i32,
    private_token: Option<&str>,
    form: TicketForm,
) -> serde_json::Value {
    let base = match private_token {
        Some(token) => format!("/p/{token}"),
        None => format!("/events/{}", view["slug"].as_str().unwrap_or_default()),
    };
    let title = crate::routes::form_errors::title(
        "Choose tickets",
        view["title"].as_str().unwrap_or_default(),
        !form.errors.is_empty(),
    );
    let order: Vec<crate::routes::form_errors::Field> = view["ticket_types"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let key = format!("qty-{}", t["id"]);
            let name = t["name"].as_str().unwrap_or_default();
            crate::routes::form_errors::Field::new(key.clone(), key, name)
        })
        .collect();
    let summary = crate::routes::form_errors::summary(&form.errors, &order);
    let total = order_total(view, &form.values);
    json!({
        "title": title,
        "event_title": view["title"],
        "event": view,
        "summary": summary,
        "total": total,
        "in_baskets": in_baskets,
        "private": private_token.is_some(),
        "private_token": private_token,
        "event_base": base,
        "form": form,
    })
}

/// One line of the running total under the ticket form: "2 × €30.00 = €60.00".
#[derive(Debug, Serialize)]
struct TotalLine {
    name: String,
    quantity: i32,
    unit: String,
    line: String,
}

/// The running total of the quantities typed into the ticket form (`values`, keyed
/// `qty-<id>`), computed in minor units from the event's prices: its lines and the sum, one
/// amount per currency. Quantities that are not a number of tickets are left out (the form
/// says so next to the field), and so are quantities over the per-booking maximum.
fn order_total(view: &serde_json::Value, values: &HashMap<String, String>) -> serde_json::Value {
    let mut lines = Vec::new();
    let mut sums: Vec<(String, i64)> = Vec::new();
    for t in view["ticket_types"].as_array().into_iter().flatten() {
        let Some(raw) = values.get(&format!("qty-{}", t["id"])) else {
            continue;
        };
        let Ok(quantity) = ticketing_core::validate::quantity(raw) else {
            continue;
        };
        let (Some(price), Some(currency)) = (t["price_minor"].as_i64(), t["currency"].as_str())
        else {
            continue;
        };
        // Past the per-booking maximum the form refuses it (and the sum cannot overflow).
        let max = t["max_per_booking"].as_i64().unwrap_or(0);
        if quantity <= 0 || i64::from(quantity) > max {
            continue;
        }
        let line = price * i64::from(quantity);
        match sums.iter_mut().find(|(c, _)| c == currency) {
            Some((_, sum)) => *sum += line,
            None => sums.push((currency.to_string(), line)),
        }
        lines.push(TotalLine {
            name: t["name"].as_str().unwrap_or_default().to_string(),
            quantity,
            unit: Money::new(price, currency).amount(),
            line: Money::new(line, currency).amount(),
        });
    }
    let sum: Vec<String> = sums
        .iter()
        .map(|(currency, minor)| Money::new(*minor, currency).amount())
        .collect();
    json!({ "lines": lines, "sum": if sum.is_empty() { None } else { Some(sum.join(" + ")) } })
}

#[get("/sitemap.xml")]
async fn sitemap(db: &State<Db>, app: &State<AppInfo>) -> AppResult<(ContentType, Template)> {
    let now = Utc::now();
    let entries = db
        .run(move |conn| Ok(Event::all_upcoming_public(conn, now)?))
        .await?;
    let urls: Vec<_> = entries
        .into_iter()
        .map(|(slug, updated)| {
            json!({
                "loc": xml_escape(&format!("{}/events/{}", app.base_url, slug)),
                "lastmod": updated.format("%Y-%m-%d").to_string(),
            })
        })
        .collect();
    Ok((
        ContentType::XML,
        Template::render(
            "sitemap",
            json!({ "home": xml_escape(&format!("{}/", app.base_url)), "urls": urls }),
        ),
    ))
}

#[get("/robots.txt")]
fn robots(app: &State<AppInfo>) -> (ContentType, String) {
    (
        ContentType::Plain,
        format!(
            "User-agent: *\nDisallow: /p/\nDisallow: /admin\nDisallow: /checkout\nDisallow: /bookings\nDisallow: /payments\nDisallow: /waivers\nAllow: /\n\nSitemap: {}/sitemap.xml\n",
            app.base_url
        ),
    )
}

/// Escapes text for XML (the sitemap's URLs are written through `| safe`, since Tera's HTML
/// escaping would also turn every `/` into `&#x2F;`).
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
