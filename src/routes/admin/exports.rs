//! CSV exports of an event's attendees and bookings, for spreadsheets: every text cell is
//! neutralised against formula injection ([`csv_safe`]).

use diesel::prelude::*;
use rocket::http::{ContentType, Header};
use rocket::{get, Responder, State};

use crate::auth::Staff;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{Attendee, Booking};
use crate::schema::{attendees, bookings};

/// Neutralises spreadsheet formulas: a value starting with = + - @ (or a tab/CR) gets a
/// leading apostrophe, so Excel and LibreOffice show it as text.
pub fn csv_safe(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

#[get("/export/attendees.csv?<event>")]
pub(super) async fn export_csv(db: &State<Db>, staff: Staff, event: i64) -> AppResult<Csv> {
    let rows: Vec<(Attendee, Booking)> = db
        .run(move |conn| {
            Ok(attendees::table
                .inner_join(bookings::table)
                .filter(bookings::event_id.eq(event))
                .filter(bookings::state.eq_any(["paid", "awaiting_payment", "held"]))
                .order((bookings::id, attendees::position))
                .select((Attendee::as_select(), Booking::as_select()))
                .load(conn)?)
        })
        .await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let map = |e: csv::Error| AppError::internal(e);
    w.write_record([
        "booking_reference",
        "booking_state",
        "buyer_name",
        "buyer_email",
        "attendee_name",
        "attendee_email",
        "ticket_code",
        "checked_in",
    ])
    .map_err(map)?;
    for (a, b) in &rows {
        w.write_record([
            csv_safe(&b.reference),
            csv_safe(&b.state),
            csv_safe(&b.buyer_name),
            csv_safe(&b.buyer_email),
            csv_safe(&a.name),
            csv_safe(&a.email),
            csv_safe(&a.ticket_code),
            if a.checked_in_at.is_some() {
                "yes".into()
            } else {
                "no".into()
            },
        ])
        .map_err(map)?;
    }
    let body = String::from_utf8(
        w.into_inner()
            .map_err(|e| AppError::internal(e.to_string()))?,
    )
    .map_err(AppError::internal)?;
    let _ = staff;
    Ok(Csv {
        body: (ContentType::CSV, body),
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"attendees-event-{event}.csv\""),
        ),
    })
}

#[derive(Responder)]
pub struct Csv {
    body: (ContentType, String),
    disposition: Header<'static>,
}

#[get("/export/bookings.csv?<event>")]
pub(super) async fn export_bookings_csv(
    db: &State<Db>,
    staff: Staff,
    event: i64,
) -> AppResult<Csv> {
    let _ = staff;
    let rows: Vec<Booking> = db
        .run(move |conn| {
            Ok(bookings::table
                .filter(bookings::event_id.eq(event))
                .order(bookings::id)
                .select(Booking::as_select())
                .load(conn)?)
        })
        .await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let map = |e: csv::Error| AppError::internal(e);
    w.write_record([
        "reference",
        "state",
        "buyer_name",
        "buyer_email",
        "buyer_phone",
        "seats",
        "total",
        "currency",
        "created_at_utc",
        "paid_at_utc",
    ])
    .map_err(map)?;
    for b in &rows {
        w.write_record([
            csv_safe(&b.reference),
            csv_safe(&b.state),
            csv_safe(&b.buyer_name),
            csv_safe(&b.buyer_email),
            csv_safe(&b.buyer_phone),
            b.seats.to_string(),
            crate::money::Money::new(b.total_minor, &b.currency).decimal_string(),
            b.currency.clone(),
            b.created_at.to_rfc3339(),
            b.paid_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ])
        .map_err(map)?;
    }
    let body = String::from_utf8(
        w.into_inner()
            .map_err(|e| AppError::internal(e.to_string()))?,
    )
    .map_err(AppError::internal)?;
    Ok(Csv {
        body: (ContentType::CSV, body),
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"bookings-event-{event}.csv\""),
        ),
    })
}
