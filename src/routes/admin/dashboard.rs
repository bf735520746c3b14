//! The dashboard. KPIs first (issue 16): revenue today (UTC), the last 7 days and in total,
//! one line per currency (captured money minus refunds); tickets sold; seats held in baskets
//! now; refunds pending. Then seats sold per day over the last 30 days (an inline SVG chart
//! with labelled axes and values, and a table of the same numbers for screen readers),
//! upcoming events with seats sold and revenue, the latest bookings, and money held for
//! bookings that could not be honoured.

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

#[derive(QueryableByName)]
struct RevenueRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    currency: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    today: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    week: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sold: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    held: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    refunds_pending: i64,
}

/// Revenue per currency: money captured by PayPal minus what was refunded, by the day the
/// booking was paid (UTC); reversed captures and money without seats (refunded
/// automatically) do not count.
const REVENUE_SQL: &str = "
SELECT p.currency::text AS currency,
       COALESCE(sum(p.amount_minor - p.refunded_minor)
                FILTER (WHERE b.paid_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)::bigint AS today,
       COALESCE(sum(p.amount_minor - p.refunded_minor)
                FILTER (WHERE b.paid_at >= now() - interval '7 days'), 0)::bigint AS week,
       COALESCE(sum(p.amount_minor - p.refunded_minor), 0)::bigint AS total
  FROM payments p JOIN bookings b ON b.id = p.booking_id
 WHERE p.capture_status IN ('COMPLETED', 'PARTIALLY_REFUNDED', 'REFUNDED')
   AND p.unhonoured_at IS NULL AND b.paid_at IS NOT NULL
 GROUP BY p.currency ORDER BY p.currency";

/// Tickets sold (seats of paid bookings), seats held in baskets now (held or awaiting
/// payment, hold not yet over), refunds PayPal has not settled.
const COUNTS_SQL: &str = "
SELECT (SELECT COALESCE(sum(seats), 0) FROM bookings WHERE state = 'paid')::bigint AS sold,
       (SELECT COALESCE(sum(seats), 0) FROM bookings
         WHERE state IN ('held', 'awaiting_payment') AND hold_expires_at > now())::bigint AS held,
       (SELECT count(*) FROM refunds WHERE status IN ('REQUESTED', 'PENDING', 'REVIEW'))::bigint
           AS refunds_pending";

#[get("/")]
pub(super) async fn dashboard(db: &State<Db>, staff: Staff) -> AppResult<Template> {
    let ((rows, days, latest, unhonoured), (revenue, counts)) = db
        .run(|conn| {
            let revenue: Vec<RevenueRow> = diesel::sql_query(REVENUE_SQL).load(conn)?;
            let counts: CountsRow = diesel::sql_query(COUNTS_SQL).get_result(conn)?;
            let rows: Vec<EventRow> = diesel::sql_query(
                "SELECT e.id, e.title, e.starts_at, e.timezone, e.capacity,
                        COALESCE(sum(b.seats) FILTER (WHERE b.state = 'paid'), 0)::bigint AS sold,
                        (COALESCE(sum(b.total_minor) FILTER (WHERE b.state = 'paid'), 0)
                          - COALESCE((SELECT sum(p.refunded_minor) FROM payments p
                                        JOIN bookings pb ON pb.id = p.booking_id
                                       WHERE pb.event_id = e.id AND pb.state = 'paid'), 0))::bigint AS revenue_minor,
                        e.currency::text AS currency
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
            Ok(((rows, days, latest, unhonoured), (revenue, counts)))
        })
        .await?;
    let amount = |minor: i64, currency: &str| crate::money::Money::new(minor, currency).amount();
    let revenue: Vec<_> = revenue
        .iter()
        .map(|r| json!({ "currency": r.currency, "today": amount(r.today, &r.currency), "week": amount(r.week, &r.currency), "total": amount(r.total, &r.currency) }))
        .collect();
    let kpis = json!({ "revenue": revenue, "sold": counts.sold, "held": counts.held, "refunds_pending": counts.refunds_pending });
    let chart_rows: Vec<_> = days
        .iter()
        .map(|d| json!({ "day": d.day.format("%a %-d %b").to_string(), "seats": d.seats }))
        .collect();
    let unhonoured: Vec<_> = unhonoured
        .iter()
        .map(|(b, e, p)| json!({ "id": b.id, "reference": b.reference, "event": e.title, "buyer": b.buyer_name,
            "held": crate::money::Money::new(p.amount_minor - p.refunded_minor, &p.currency).display(),
            "since": p.unhonoured_at.map(|t| timefmt::local_datetime(t, e.tz())) }))
        .collect();
    let latest: Vec<_> = latest
        .iter()
        .map(|(b, e)| json!({ "id": b.id, "reference": b.reference, "buyer": b.buyer_name, "event": e.title, "state": b.state, "seats": b.seats, "total": b.total().display(), "created": timefmt::local_datetime(b.created_at, e.tz()), "zone": e.timezone }))
        .collect();
    let events: Vec<_> = rows
        .iter()
        .map(|r| {
            let tz = timefmt::parse_tz(&r.timezone).unwrap_or(chrono_tz::UTC);
            json!({
                "id": r.id, "title": r.title, "when": timefmt::local_datetime(r.starts_at, tz),
                "capacity": r.capacity, "sold": r.sold, "zone": r.timezone,
                "revenue": crate::money::Money::new(r.revenue_minor, &r.currency).amount(),
            })
        })
        .collect();
    Ok(page(
        "admin/dashboard",
        &staff,
        json!({ "title": "Dashboard", "kpis": kpis, "events": events, "latest": latest, "unhonoured": unhonoured, "chart": sales_chart(&days), "chart_rows": chart_rows }),
    ))
}

/// Seats sold per day over the last 30 days (UTC days), as an inline SVG bar chart: a
/// y axis with its scale and title, a date axis labelled every week, and each day's number
/// over its bar. Decorative to screen readers (`aria-hidden`): the table beside it has the
/// same numbers.
fn sales_chart(days: &[DayRow]) -> String {
    let max = days.iter().map(|d| d.seats).max().unwrap_or(0).max(1);
    // Plot area: left margin for the y labels, bottom for the dates, top for the values.
    let (left, top, w, h) = (44.0, 18.0, 640.0, 170.0);
    let bar = w / days.len().max(1) as f64;
    let mut svg = format!(
        r##"<svg viewBox="0 0 {} {}" aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg" font-size="11" fill="#5c5f6e">"##,
        left + w + 8.0,
        top + h + 48.0
    );
    // y axis: 0, half and the top of the scale, with grid lines, and its title.
    for value in [0, max / 2, max] {
        let y = top + h - value as f64 / max as f64 * h;
        svg.push_str(&format!(
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e4ea"/><text x="{}" y="{:.1}" text-anchor="end">{value}</text>"##,
            left + w,
            left - 6.0,
            y + 4.0
        ));
    }
    svg.push_str(&format!(
        r##"<text transform="translate(12 {:.1}) rotate(-90)" text-anchor="middle">Seats sold</text>"##,
        top + h / 2.0
    ));
    for (i, d) in days.iter().enumerate() {
        let bh = d.seats as f64 / max as f64 * h;
        let x = left + i as f64 * bar;
        svg.push_str(&format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="#3b3bd6"/>"##,
            x + 1.0,
            top + h - bh,
            (bar - 2.0).max(1.0)
        ));
        if d.seats > 0 {
            svg.push_str(&format!(
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#1c1d24">{}</text>"##,
                x + bar / 2.0,
                top + h - bh - 4.0,
                d.seats
            ));
        }
        // Every seventh day and the last (the one before it left out where they would touch).
        if (i % 7 == 0 && i + 4 <= days.len()) || i + 1 == days.len() {
            svg.push_str(&format!(
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1}" y2="{2}" stroke="#5c5f6e"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##,
                x + bar / 2.0,
                top + h,
                top + h + 4.0,
                top + h + 17.0,
                d.day.format("%-d %b")
            ));
        }
    }
    let (right, base, middle, title_y) = (left + w, top + h, left + w / 2.0, top + h + 38.0);
    svg.push_str(&format!(
        r##"<line x1="{left}" x2="{right}" y1="{base}" y2="{base}" stroke="#5c5f6e"/><text x="{middle}" y="{title_y}" text-anchor="middle">Day of sale (UTC)</text>"##
    ));
    svg.push_str("</svg>");
    svg
}
