//! Private area (`/p/<token>`): a private event reached only through its secret link.
//! Any wrong, malformed or rotated token gets exactly the 404 of a missing page; every
//! response under `/p/` carries `X-Robots-Tag: noindex` (see `fairings`). A live stream
//! opened with a link ends once the link is rotated or the event stops being private.

use chrono::Utc;
use rocket::response::stream::EventStream;
use rocket::{get, routes, Route, Shutdown, State};
use rocket_dyn_templates::Template;

use crate::bookings::availability::{self, Availability, Link, StreamSlots};
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::event::EventLookup;
use crate::models::Event;
use crate::net::ClientKey;
use crate::routes::public::{availability_stream, render_event, stream_slot, TicketForm};
use crate::tokens::looks_like_token;
use crate::views::EventView;

pub fn routes() -> Vec<Route> {
    routes![private_event, private_availability]
}

#[get("/<token>")]
async fn private_event(
    db: &State<Db>,
    app: &State<crate::AppInfo>,
    jar: &rocket::http::CookieJar<'_>,
    token: &str,
) -> AppResult<Template> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    crate::routes::checkout::ensure_browser_id(jar, app.production);
    let lookup = token.to_string();
    let now = Utc::now();
    let (view, in_baskets) = db
        .run(move |conn| {
            let (event, types) =
                Event::with_ticket_types(conn, EventLookup::PrivateToken(&lookup))?;
            let in_baskets = availability::seats_in_baskets(conn, event.id)?;
            Ok((EventView::new(&event, &types, now), in_baskets))
        })
        .await?;
    Ok(render_event(
        view,
        in_baskets,
        Some(token),
        TicketForm::fresh(),
    ))
}

/// Live seats left for an open private event page (Server-Sent Events).
#[get("/<token>/availability")]
async fn private_availability(
    db: &State<Db>,
    hub: &State<Availability>,
    slots: &State<StreamSlots>,
    client: ClientKey,
    shutdown: Shutdown,
    token: &str,
) -> AppResult<EventStream![]> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    let slot = stream_slot(slots, client)?;
    let lookup = token.to_string();
    let snapshot = db
        .run(move |conn| {
            let (event, _) = Event::with_ticket_types(conn, EventLookup::PrivateToken(&lookup))?;
            availability::load(conn, &[event.id])?
                .pop()
                .ok_or_else(AppError::not_found)
        })
        .await?;
    Ok(availability_stream(
        hub.subscribe(snapshot),
        Link::Private(token.to_string()),
        slot,
        shutdown,
    ))
}
