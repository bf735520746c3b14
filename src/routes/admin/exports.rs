//! CSV exports of attendees and bookings for spreadsheets, with the bookings list's filters
//! (event, state, search) or none: every event at once. Written by the `csv` crate, which
//! quotes what needs quoting; text that a spreadsheet would run as a formula is guarded by
//! [`csv_safe`], which leaves ordinary values such as phone numbers exactly as typed.

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::http::{ContentType, Header};
use rocket::{get, Responder, State};

use crate::auth::Staff;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{Attendee, Booking, BookingState, Event, TicketType};
use crate::schema::{attendees, bookings, events, payments, ticket_types};

/// Neutralises spreadsheet formulas: a value starting with = + - @ (or a tab/CR) gets a
/// leading apostrophe, so Excel and LibreOffice show it as text, unless it is made only of
/// digits, spaces and `+ - ( ) . , /`: a phone number (`+49 170 1234567`) or a number
/// (`-12.50`), which can name no function or cell and so stays exactly as typed.
pub fn csv_safe(value: &str) -> String {
    let plain = |v: &str| {
        v.chars().any(|c| c.is_ascii_digit())
            && v.chars()
                .all(|c| c.is_ascii_digit() || " +-().,/".contains(c))
    };
    match value.chars().next() {
        Some('=' | '@' | '\t' | '\r') => format!("'{value}"),
        Some('+' | '-') if !plain(value) => format!("'{value}"),
        _ => value.to_string(),
    }
}

/// The filters of the bookings list, as the export links carry them.
struct Filters {
    event: Option<i64>,
    q: String,
    state: Option<String>,
}

impl Filters {
    fn new(event: Option<i64>, q: Option<&str>, state: Option<&str>) -> Filters {
        Filters {
            event,
            q: q.unwrap_or("").trim().chars().take(100).collect(),
            state: state
                .filter(|s| BookingState::parse(s).is_some())
                .map(str::to_string),
        }
    }

    /// The bookings (with their events) these filters pick, oldest first.
    fn bookings(&self, conn: &mut PgConnection) -> QueryResult<Vec<(Booking, Event)>> {
        let mut query = bookings::table.inner_join(events::table).into_boxed();
        if !self.q.is_empty() {
            let like = format!(
                "%{}%",
                self.q
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            query = query.filter(
                bookings::buyer_name
                    .ilike(like.clone())
                    .or(bookings::buyer_email.ilike(like.clone()))
                    .or(bookings::reference.ilike(like)),
            );
        }
        if let Some(e) = self.event {
            query = query.filter(bookings::event_id.eq(e));
        }
        if let Some(s) = &self.state {
            query = query.filter(bookings::state.eq(s.clone()));
        }
        query
            .order(bookings::id)
            .limit(100_000)
            .select((Booking::as_select(), Event::as_select()))
            .load(conn)
    }

    /// A file name naming the event when there is one.
    fn file_name(&self, what: &str) -> String {
        match self.event {
            Some(e) => format!("{what}-event-{e}.csv"),
            None => format!("{what}-all-events.csv"),
        }
    }
}

/// The header of a local-time column: the zone's name when every row is in one zone.
fn zoned_header(name: &str, zones: &[&str]) -> String {
    match zones.first() {
        Some(first) if zones.iter().all(|z| z == first) => format!("{name} ({first})"),
        _ => format!("{name} (event time zone, see time_zone)"),
    }
}

fn finish(w: csv::Writer<Vec<u8>>, file_name: String) -> AppResult<Csv> {
    let body = String::from_utf8(
        w.into_inner()
            .map_err(|e| AppError::internal(e.to_string()))?,
    )
    .map_err(AppError::internal)?;
    Ok(Csv {
        body: (ContentType::CSV, body),
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ),
    })
}

#[get("/export/attendees.csv?<event>&<q>&<state>")]
pub(super) async fn export_csv(
    db: &State<Db>,
    staff: Staff,
    event: Option<i64>,
    q: Option<&str>,
    state: Option<&str>,
) -> AppResult<Csv> {
    let _ = staff;
    let filters = Filters::new(event, q, state);
    let name = filters.file_name("attendees");
    let (rows, types, signed) = db
        .run(move |conn| {
            let booked = filters.bookings(conn)?;
            let ids: Vec<i64> = booked
                .iter()
                .filter(|(b, _)| BookingState::ACTIVE.contains(&b.state.as_str()))
                .map(|(b, _)| b.id)
                .collect();
            let people: Vec<Attendee> = attendees::table
                .filter(attendees::booking_id.eq_any(&ids))
                .order((attendees::booking_id, attendees::position))
                .select(Attendee::as_select())
                .load(conn)?;
            let event_ids: Vec<i64> = booked.iter().map(|(_, e)| e.id).collect();
            let types: Vec<TicketType> = ticket_types::table
                .filter(ticket_types::event_id.eq_any(&event_ids))
                .select(TicketType::as_select())
                .load(conn)?;
            let people_ids: Vec<i64> = people.iter().map(|a| a.id).collect();
            let signed: HashMap<i64, bool> = crate::waivers::for_attendees(conn, &people_ids)?
                .iter()
                .map(|w| (w.attendee_id, w.signed_at.is_some()))
                .collect();
            let rows: Vec<(Attendee, Booking, Event)> = people
                .into_iter()
                .filter_map(|a| {
                    booked
                        .iter()
                        .find(|(b, _)| b.id == a.booking_id)
                        .map(|(b, e)| (a, b.clone(), e.clone()))
                })
                .collect();
            Ok((rows, types, signed))
        })
        .await?;
    let zones: Vec<&str> = rows.iter().map(|(_, _, e)| e.timezone.as_str()).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let map = |e: csv::Error| AppError::internal(e);
    w.write_record([
        "booking_reference".to_string(),
        "booking_state".into(),
        "buyer_name".into(),
        "buyer_email".into(),
        "attendee_name".into(),
        "attendee_email".into(),
        "ticket_code".into(),
        "checked_in".into(),
        "ticket_type".into(),
        "ticket_state".into(),
        "waiver".into(),
        zoned_header("checked_in_at", &zones),
        "event".into(),
        "time_zone".into(),
    ])
    .map_err(map)?;
    for (a, b, e) in &rows {
        let ticket_type = types
            .iter()
            .find(|t| t.id == a.ticket_type_id)
            .map(|t| t.name.as_str())
            .unwrap_or_default();
        let waiver = match signed.get(&a.id) {
            Some(true) => "signed",
            Some(false) => "unsigned",
            None if e.waiver_required => "unsigned",
            None => "not required",
        };
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
            csv_safe(ticket_type),
            crate::bookings::TicketState::of(a).as_str().to_string(),
            waiver.to_string(),
            a.checked_in_at
                .map(|t| {
                    t.with_timezone(&e.tz())
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default(),
            csv_safe(&e.title),
            e.timezone.clone(),
        ])
        .map_err(map)?;
    }
    finish(w, name)
}

#[derive(Responder)]
pub struct Csv {
    body: (ContentType, String),
    disposition: Header<'static>,
}

#[get("/export/bookings.csv?<event>&<q>&<state>")]
pub(super) async fn export_bookings_csv(
    db: &State<Db>,
    staff: Staff,
    event: Option<i64>,
    q: Option<&str>,
    state: Option<&str>,
) -> AppResult<Csv> {
    let _ = staff;
    let filters = Filters::new(event, q, state);
    let name = filters.file_name("bookings");
    let (rows, refunded) = db
        .run(move |conn| {
            let rows = filters.bookings(conn)?;
            let ids: Vec<i64> = rows.iter().map(|(b, _)| b.id).collect();
            let refunded: HashMap<i64, i64> = payments::table
                .filter(payments::booking_id.eq_any(&ids))
                .select((payments::booking_id, payments::refunded_minor))
                .load::<(i64, i64)>(conn)?
                .into_iter()
                .fold(HashMap::new(), |mut sums, (id, minor)| {
                    *sums.entry(id).or_insert(0) += minor;
                    sums
                });
            Ok((rows, refunded))
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
        "refunded",
        "event",
    ])
    .map_err(map)?;
    for (b, e) in &rows {
        let money = |minor: i64| crate::money::Money::new(minor, &b.currency).decimal_string();
        w.write_record([
            csv_safe(&b.reference),
            csv_safe(&b.state),
            csv_safe(&b.buyer_name),
            csv_safe(&b.buyer_email),
            csv_safe(&b.buyer_phone),
            b.seats.to_string(),
            money(b.total_minor),
            b.currency.clone(),
            b.created_at.to_rfc3339(),
            b.paid_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            money(refunded.get(&b.id).copied().unwrap_or(0)),
            csv_safe(&e.title),
        ])
        .map_err(map)?;
    }
    finish(w, name)
}

#[cfg(test)]
mod tests {
    use super::csv_safe;

    #[test]
    fn formulas_are_guarded_and_phone_numbers_stay_as_typed() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("+1 Plus"), "'+1 Plus");
        assert_eq!(csv_safe("-2+cmd|' /C calc'!A0"), "'-2+cmd|' /C calc'!A0");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("\tx"), "'\tx");
        assert_eq!(csv_safe("+49 170 1234567"), "+49 170 1234567");
        assert_eq!(csv_safe("+1 (555) 010-0199"), "+1 (555) 010-0199");
        assert_eq!(csv_safe("-12.50"), "-12.50");
        assert_eq!(csv_safe("+"), "'+");
        assert_eq!(csv_safe("Ana"), "Ana");
    }
}
