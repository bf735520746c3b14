//! The dashboard: upcoming events with seats sold and revenue, seats sold per day over the
//! last 30 days (an inline SVG chart), the latest bookings, and money held for bookings that
//! could not be honoured.

use chrono::Utc;
use diesel::prelude::*;
use rocket::{get, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use super::page;
use crate::auth::Staff;
use crate::db::Db;
use crate::error::AppResult;
use crate::models::{Booking, Event};
use crate::schema::{bookings, events};
use crate::timefmt;

#[derive(QueryableByName, serde::Serialize)]
struct EventRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    title: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    starts_at: chrono::DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    timezone: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    capacity: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sold: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    revenue_minor: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = diesel::sql_types::Date)]
    day: chrono::NaiveDate,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    seats: i64,
}

#[get("/")]
pub(super) async fn dashboard(db: &State<Db>, staff: Staff) -> AppResult<Template> {
    let (rows, days, latest, unhonoured) = db
        .run(|conn| {
            let rows: Vec<EventRow> = diesel::sql_query(
                "SELECT e.id, e.title, e.starts_at, e.timezone, e.capacity,
                        COALESCE(sum(b.seats) FILTER (WHERE b.state = 'paid'), 0)::bigint AS sold,
                        (COALESCE(sum(b.total_minor) FILTER (WHERE b.state = 'paid'), 0)
                          - COALESCE((SELECT sum(p.refunded_minor) FROM payments p
                                        JOIN bookings pb ON pb.id = p.booking_id
                                       WHERE pb.event_id = e.id AND pb.state = 'paid'), 0))::bigint AS revenue_minor,
                        COALESCE(max(b.currency),
                                 (SELECT min(t.currency) FROM ticket_types t WHERE t.event_id = e.id),
                                 'EUR') AS currency
                   FROM events e LEFT JOIN bookings b ON b.event_id = e.id
                  WHERE e.ends_at > now()
                  GROUP BY e.id ORDER BY e.starts_at LIMIT 50",
            )
            .load(conn)?;
            let days: Vec<DayRow> = diesel::sql_query(
                "SELECT d::date AS day, COALESCE(sum(b.seats), 0)::bigint AS seats
                   FROM generate_series(current_date - 29, current_date, interval '1 day') d
                   LEFT JOIN bookings b ON b.state = 'paid' AND b.paid_at::date = d::date
                  GROUP BY d ORDER BY d",
            )
            .load(conn)?;
            // The latest bookings that got past the hold: what an organiser watches arrive.
            let latest: Vec<(Booking, Event)> = bookings::table
                .inner_join(events::table)
                .filter(bookings::state.ne_all(["held", "expired"]))
                .order(bookings::id.desc())
                .limit(10)
                .select((Booking::as_select(), Event::as_select()))
                .load(conn)?;
            // Money without seats: captured for bookings that could not be honoured, until
            // refunded in full (the automatic refund was refused or is still unanswered).
            let unhonoured: Vec<(Booking, Event, crate::models::Payment)> = crate::schema::payments::table
                .inner_join(bookings::table.inner_join(events::table))
                .filter(crate::schema::payments::unhonoured_at.is_not_null())
                .filter(crate::schema::payments::refunded_minor.lt(crate::schema::payments::amount_minor))
                .order(crate::schema::payments::unhonoured_at.asc())
                .limit(50)
                .select((Booking::as_select(), Event::as_select(), crate::models::Payment::as_select()))
                .load(conn)?;
            Ok((rows, days, latest, unhonoured))
        })
        .await?;
    let unhonoured: Vec<_> = unhonoured
        .iter()
        .map(|(b, e, p)| json!({ "id": b.id, "reference": b.reference, "event": e.title, "buyer": b.buyer_name,
            "held": crate::money::Money::new(p.amount_minor - p.refunded_minor, &p.currency).display(),
            "since": p.unhonoured_at.map(|t| timefmt::local_datetime(t, e.tz())) }))
        .collect();
    let latest: Vec<_> = latest
        .iter()
        .map(|(b, e)| json!({ "id": b.id, "reference": b.reference, "buyer": b.buyer_name, "event": e.title, "state": b.state, "seats": b.seats, "total": b.total().display(), "created": timefmt::local_datetime(b.created_at, e.tz()) }))
        .collect();
    let events: Vec<_> = rows
        .iter()
        .map(|r| {
            let tz = timefmt::parse_tz(&r.timezone).unwrap_or(chrono_tz::UTC);
            json!({
                "id": r.id, "title": r.title, "when": timefmt::local_datetime(r.starts_at, tz),
                "capacity": r.capacity, "sold": r.sold,
                "revenue": crate::money::Money::new(r.revenue_minor, &r.currency).amount(),
            })
        })
        .collect();
    Ok(page(
        "admin/dashboard",
        &staff,
        json!({ "title": "Dashboard", "events": events, "latest": latest, "unhonoured": unhonoured, "chart": sales_chart(&days) }),
    ))
}

/// Seats sold per day over the last 30 days, as an inline SVG bar chart.
fn sales_chart(days: &[DayRow]) -> String {
    let max = days.iter().map(|d| d.seats).max().unwrap_or(0).max(1);
    let (w, h, bar) = (600.0, 160.0, 600.0 / days.len().max(1) as f64);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {}" role="img" aria-label="Seats sold per day, last 30 days" xmlns="http://www.w3.org/2000/svg">"#,
        h + 20.0
    );
    for (i, d) in days.iter().enumerate() {
        let bh = d.seats as f64 / max as f64 * h;
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#3b3bd6"><title>{}: {} seats</title></rect>"##,
            i as f64 * bar + 1.0, h - bh, bar - 2.0, bh, d.day, d.seats
        ));
    }
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        svg.push_str(&format!(r##"<text x="0" y="{}" font-size="11" fill="#5c5f6e">{}</text><text x="{w}" y="{}" font-size="11" text-anchor="end" fill="#5c5f6e">{}</text>"##, h + 15.0, first.day, h + 15.0, last.day));
    }
    svg.push_str("</svg>");
    svg
}
