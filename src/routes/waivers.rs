//! Waivers area (`/waivers/<token>`): the attendee's personal waiver page, where they read
//! the event's waiver text and sign it once with their typed name and explicit consent.

use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{Attendee, Booking, Event};
use crate::net::ClientIp;
use crate::routes::checkout::Page;
use crate::routes::form_errors;
use crate::schema::attendees;
use crate::timefmt;
use crate::tokens::looks_like_token;
use crate::waivers::{self, Signature, Waiver, WaiverText};
use ticketing_core::validate;

pub fn routes() -> Vec<Route> {
    routes![waiver_page, sign_waiver]
}

struct Loaded {
    waiver: Waiver,
    attendee: Attendee,
    event: Event,
    booking: Booking,
    current: Option<WaiverText>,
    signed_text: Option<WaiverText>,
}

async fn load(db: &Db, token: &str) -> AppResult<Loaded> {
    if !looks_like_token(token) {
        return Err(AppError::not_found());
    }
    let token = token.to_string();
    db.run(move |conn| {
        let waiver = waivers::find_by_token(conn, &token)?;
        let attendee: Attendee = attendees::table
            .find(waiver.attendee_id)
            .select(Attendee::as_select())
            .first(conn)?;
        let booking = Booking::find(conn, attendee.booking_id)?;
        let event = Event::find(conn, booking.event_id)?;
        let current = waivers::latest_text(conn, event.id)?;
        let signed_text = match waiver.waiver_text_id {
            Some(id) => Some(
                crate::schema::waiver_texts::table
                    .find(id)
                    .select(WaiverText::as_select())
                    .first(conn)?,
            ),
            None => None,
        };
        Ok(Loaded {
            waiver,
            attendee,
            event,
            booking,
            current,
            signed_text,
        })
    })
    .await
}

fn render(
    l: &Loaded,
    token: &str,
    errors: serde_json::Value,
    name: &str,
    message: Option<&str>,
) -> Template {
    let shown = l.signed_text.as_ref().or(l.current.as_ref());
    let messages: std::collections::HashMap<String, String> = errors
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let fields = [
        form_errors::Field::new("full_name", "full_name", "Your full name"),
        form_errors::Field::new("consent", "consent", ""),
    ];
    let summary = form_errors::summary(&messages, &fields);
    let title = form_errors::title("Sign the waiver", &l.event.title, !messages.is_empty());
    Template::render(
        "waiver",
        json!({
            "title": title,
            "summary": summary,
            "token": token,
            "event": { "title": l.event.title, "when": timefmt::local_range(l.event.starts_at, l.event.ends_at, l.event.tz()), "venue": l.event.venue },
            "attendee": { "name": l.attendee.name },
            "text": shown.map(|t| t.body.clone()).unwrap_or_default(),
            "version": shown.map(|t| t.id),
            "version_number": shown.map(|t| t.version),
            "signed": l.waiver.signed_at.is_some(),
            "signed_name": l.waiver.signed_name,
            "signed_at": l.waiver.signed_at.map(|at| timefmt::local_datetime(at, l.event.tz())),
            "booking_state": l.booking.state,
            "errors": errors,
            "name": name,
            "message": message,
        }),
    )
}

#[get("/<token>")]
async fn waiver_page(db: &State<Db>, token: &str) -> AppResult<Template> {
    let l = load(db, token).await?;
    Ok(render(&l, token, json!({}), &l.attendee.name, None))
}

#[derive(FromForm)]
pub struct SignForm {
    #[field(default = String::new())]
    full_name: String,
    #[field(default = false)]
    consent: bool,
    #[field(default = 0)]
    version: i64,
}

/// The User-Agent header, for the signature record.
pub struct UserAgent(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        Outcome::Success(UserAgent(
            req.headers()
                .get_one("User-Agent")
                .unwrap_or("")
                .to_string(),
        ))
    }
}

#[post("/<token>", data = "<form>")]
async fn sign_waiver(
    db: &State<Db>,
    token: &str,
    client: ClientIp,
    agent: UserAgent,
    form: Form<SignForm>,
) -> AppResult<Page> {
    let l = load(db, token).await?;
    let form = form.into_inner();
    if l.waiver.signed_at.is_some() {
        return Ok(Page::Status((
            Status::Conflict,
            render(
                &l,
                token,
                json!({}),
                "",
                Some("This waiver is already signed and cannot be signed again or changed."),
            ),
        )));
    }
    let Some(current) = l.current.clone() else {
        return Err(AppError::not_found());
    };
    let mut errors = serde_json::Map::new();
    let name = match validate::name(&form.full_name) {
        Ok(n) => n,
        Err(e) => {
            errors.insert("full_name".into(), json!(e));
            String::new()
        }
    };
    if !form.consent {
        errors.insert(
            "consent".into(),
            json!("Tick the box to confirm that you have read and agree to the waiver."),
        );
    }
    if form.version != current.id {
        errors.insert("form".into(), json!("The waiver text has changed since you opened this page. Please read the current text below and sign again."));
    }
    if !errors.is_empty() {
        let kept: String = form.full_name.chars().take(300).collect();
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            render(&l, token, serde_json::Value::Object(errors), &kept, None),
        )));
    }
    let waiver_id = l.waiver.id;
    let signed = db
        .run(move |conn| {
            let sig = Signature {
                name: &name,
                text: &current,
                ip: client.0.to_string(),
                user_agent: agent.0,
            };
            Ok(waivers::sign(conn, waiver_id, &sig)?)
        })
        .await?;
    let l = load(db, token).await?;
    let message = if signed {
        "Thank you. Your waiver is signed."
    } else {
        "This waiver is already signed and cannot be signed again or changed."
    };
    let status = if signed { Status::Ok } else { Status::Conflict };
    Ok(Page::Status((
        status,
        render(&l, token, json!({}), "", Some(message)),
    )))
}
