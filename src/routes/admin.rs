//! Admin area (`/admin`): login, dashboard, bookings (search, detail, cancel, refund, resend
//! mail, CSV export), door check-in, the mail outbox and the audit log. Every route takes a
//! `Staff` or `Admin` guard (the route-table test checks that none is missing); every
//! state-changing form carries the session's CSRF token; every change writes an audit entry
//! in its own transaction.

use chrono::Utc;
use diesel::prelude::*;
use rocket::form::{Form, FromForm};
use rocket::http::{ContentType, CookieJar, Header, Status};
use rocket::request::FlashMessage;
use rocket::response::Flash;
use rocket::response::Redirect;
use rocket::{catch, catchers, get, post, routes, Catcher, Request, Responder, Route, State};

use crate::routes::checkout::Page;
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::auth::{self, Admin, LoginLimits, Staff, SESSION_COOKIE};
use crate::bookings::lifecycle::transition;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{Attendee, Booking, BookingState, Event};
use crate::net::ClientIp;
use crate::paypal::PayPal;
use crate::schema::{attendees, audit_log, bookings, events, outbox, users};
use crate::{timefmt, AppInfo};
use ticketing_db::ErrorKind;

pub fn routes() -> Vec<Route> {
    routes![
        login_page,
        login,
        logout,
        dashboard,
        bookings_list,
        booking_detail,
        cancel_booking,
        refund_booking,
        resend_mail,
        checkin_page,
        checkin,
        outbox_page,
        audit_page,
        export_csv,
        export_bookings_csv
    ]
}

/// Anonymous visitors of admin pages go to the login page.
pub fn catchers() -> Vec<Catcher> {
    catchers![unauthorized]
}

#[catch(401)]
fn unauthorized(req: &Request<'_>) -> Redirect {
    let next = req.uri().path().to_string();
    Redirect::to(format!("/admin/login?next={}", urlencode(&next)))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Renders an admin page with the signed-in staff member and the CSRF token in its context.
pub(crate) fn page(name: &'static str, staff: &Staff, mut ctx: serde_json::Value) -> Template {
    ctx["staff"] =
        json!({ "email": staff.user.email, "name": staff.user.name, "admin": staff.is_admin() });
    ctx["csrf"] = json!(staff.csrf);
    Template::render(name, ctx)
}

// ---------------------------------------------------------------- login

#[get("/login?<next>")]
fn login_page(app: &State<AppInfo>, cookies: &CookieJar<'_>, next: Option<&str>) -> Template {
    let csrf = auth::login_csrf_token(cookies, app.production);
    Template::render(
        "admin/login",
        json!({ "title": "Staff login", "next": next.unwrap_or("/admin"), "email": "", "error": null, "csrf": csrf }),
    )
}

#[derive(FromForm)]
pub struct LoginForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = String::new())]
    email: String,
    #[field(default = String::new())]
    password: String,
    #[field(default = String::from("/admin"))]
    next: String,
}

#[post("/login", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn login(
    db: &State<Db>,
    app: &State<AppInfo>,
    limits: &State<LoginLimits>,
    cookies: &CookieJar<'_>,
    client: ClientIp,
    agent: crate::routes::waivers::UserAgent,
    form: Form<LoginForm>,
) -> AppResult<Page> {
    let form = form.into_inner();
    let next = if form.next.starts_with("/admin") && !form.next.starts_with("/admin/login") {
        form.next.clone()
    } else {
        "/admin".into()
    };
    let csrf = auth::login_csrf_token(cookies, app.production);
    let again = |status: Status, error: &str| {
        Page::Status((
            status,
            Template::render(
                "admin/login",
                json!({ "title": "Staff login", "next": next, "email": form.email.chars().take(254).collect::<String>(), "error": error, "csrf": csrf }),
            ),
        ))
    };
    if !auth::login_csrf_ok(cookies, &form.csrf) {
        return Ok(again(
            Status::Forbidden,
            "This login form has expired or did not come from this site. Please try again.",
        ));
    }
    if !limits.attempt(&form.email, client.0) {
        tracing::warn!(client = %client.0, "login rate limit reached");
        return Ok(again(
            Status::TooManyRequests,
            "Too many login attempts. Please wait a few minutes and try again.",
        ));
    }
    match auth::authenticate(db, &form.email, &form.password).await? {
        Some(user) => {
            auth::start_session(
                db,
                cookies,
                user.id,
                client.0.to_string(),
                agent.0,
                app.production,
            )
            .await?;
            Ok(Page::Redirect(Redirect::to(next)))
        }
        None => Ok(again(
            Status::UnprocessableEntity,
            "That email and password do not match an active account.",
        )),
    }
}

#[derive(FromForm)]
pub struct CsrfOnly {
    #[field(default = String::new())]
    csrf: String,
}

#[post("/logout", data = "<form>")]
async fn logout(
    db: &State<Db>,
    staff: Staff,
    cookies: &CookieJar<'_>,
    form: Form<CsrfOnly>,
) -> AppResult<Redirect> {
    staff.check_csrf(&form.csrf)?;
    auth::revoke(db, staff.session_id).await?;
    cookies.remove_private(rocket::http::Cookie::build(SESSION_COOKIE).path("/admin"));
    Ok(Redirect::to("/admin/login"))
}

// ---------------------------------------------------------------- dashboard

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
async fn dashboard(db: &State<Db>, staff: Staff) -> AppResult<Template> {
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

// ---------------------------------------------------------------- bookings

const PER_PAGE: i64 = 25;

#[get("/bookings?<q>&<event>&<state>&<page>")]
async fn bookings_list(
    db: &State<Db>,
    staff: Staff,
    q: Option<&str>,
    event: Option<i64>,
    state: Option<&str>,
    page: Option<i64>,
) -> AppResult<Template> {
    let q = q.unwrap_or("").trim().chars().take(100).collect::<String>();
    let state = state
        .filter(|s| BookingState::parse(s).is_some())
        .map(str::to_string);
    let page_no = page.unwrap_or(1).max(1);
    let (q2, s2) = (q.clone(), state.clone());
    let (rows, total, event_list) = db
        .run(move |conn| {
            let like = (!q2.is_empty()).then(|| {
                format!(
                    "%{}%",
                    q2.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            });
            // The same filters for the page and for the count.
            let filtered = || {
                let mut query = bookings::table.inner_join(events::table).into_boxed();
                if let Some(like) = &like {
                    query = query.filter(
                        bookings::buyer_name
                            .ilike(like.clone())
                            .or(bookings::buyer_email.ilike(like.clone()))
                            .or(bookings::reference.ilike(like.clone())),
                    );
                }
                if let Some(e) = event {
                    query = query.filter(bookings::event_id.eq(e));
                }
                if let Some(s) = &s2 {
                    query = query.filter(bookings::state.eq(s.clone()));
                }
                query
            };
            let total: i64 = filtered().count().get_result(conn)?;
            let rows: Vec<(Booking, Event)> = filtered()
                .order(bookings::id.desc())
                .limit(PER_PAGE)
                .offset((page_no - 1) * PER_PAGE)
                .select((Booking::as_select(), Event::as_select()))
                .load(conn)?;
            let event_list: Vec<(i64, String)> = events::table
                .order(events::starts_at.desc())
                .select((events::id, events::title))
                .limit(200)
                .load(conn)?;
            Ok((rows, total, event_list))
        })
        .await?;
    let list: Vec<_> = rows
        .iter()
        .map(|(b, e)| json!({ "id": b.id, "reference": b.reference, "buyer": b.buyer_name, "email": b.buyer_email, "event": e.title, "state": b.state, "seats": b.seats, "total": b.total().display(), "created": timefmt::local_datetime(b.created_at, e.tz()) }))
        .collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    Ok(self::page(
        "admin/bookings",
        &staff,
        json!({
            "title": "Bookings", "bookings": list, "total": total, "page": page_no, "pages": pages,
            "q": q, "event": event, "state": state, "events": event_list.iter().map(|(id, t)| json!({"id": id, "title": t})).collect::<Vec<_>>(),
            "states": ["held", "awaiting_payment", "paid", "cancelled", "refunded", "expired", "reversed"],
        }),
    ))
}

#[get("/bookings/<id>")]
async fn booking_detail(
    db: &State<Db>,
    staff: Staff,
    id: i64,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<Template> {
    let mut ctx = detail_ctx(db, id).await?;
    ctx["notice"] = json!(flash.map(|f| json!({ "kind": f.kind(), "message": f.message() })));
    Ok(page("admin/booking", &staff, ctx))
}

/// The booking page again with messages next to the refund or cancel form's fields (422).
async fn detail_with_errors(
    db: &Db,
    staff: &Staff,
    id: i64,
    errors: serde_json::Value,
) -> AppResult<Page> {
    let mut ctx = detail_ctx(db, id).await?;
    ctx["errors"] = errors;
    Ok(Page::Status((
        Status::UnprocessableEntity,
        page("admin/booking", staff, ctx),
    )))
}

/// Everything the booking detail page shows.
async fn detail_ctx(db: &Db, id: i64) -> AppResult<serde_json::Value> {
    db
        .run(move |conn| {
            let b = Booking::find(conn, id)?;
            let e = Event::find(conn, b.event_id)?;
            let people = b.attendees(conn)?;
            let ids: Vec<i64> = people.iter().map(|a| a.id).collect();
            let ws = crate::waivers::for_attendees(conn, &ids)?;
            let history = b.history(conn)?;
            let payment = crate::models::Payment::find_by_booking(conn, id)?;
            let refund_rows: Vec<(i64, String, String, String, chrono::DateTime<Utc>)> = match &payment {
                Some(p) => crate::schema::refunds::table
                    .filter(crate::schema::refunds::payment_id.eq(p.id))
                    .order(crate::schema::refunds::id)
                    .select((
                        crate::schema::refunds::amount_minor,
                        crate::schema::refunds::currency,
                        crate::schema::refunds::status,
                        crate::schema::refunds::note,
                        crate::schema::refunds::created_at,
                    ))
                    .load(conn)?,
                None => Vec::new(),
            };
            let refund_list: Vec<_> = refund_rows
                .iter()
                .map(|(minor, currency, status, note, at)| json!({
                    "amount": crate::money::Money::new(*minor, currency).amount(),
                    "status": status,
                    "note": note,
                    "at": timefmt::local_datetime(*at, e.tz()),
                }))
                .collect();
            let mails: Vec<crate::models::OutboxRow> = outbox::table.filter(outbox::booking_id.eq(id)).order(outbox::id).select(crate::models::OutboxRow::as_select()).load(conn)?;
            let tz = e.tz();
            Ok(json!({
                "title": format!("Booking {}", b.reference),
                "b": { "id": b.id, "reference": b.reference, "state": b.state, "buyer": b.buyer_name, "email": b.buyer_email, "phone": b.buyer_phone, "seats": b.seats, "total": b.total().display(), "total_minor": b.total_minor, "currency": b.currency, "created": timefmt::local_datetime(b.created_at, tz) },
                "event": { "title": e.title, "when": timefmt::local_range(e.starts_at, e.ends_at, tz) },
                "attendees": people.iter().map(|a| {
                    let w = ws.iter().find(|w| w.attendee_id == a.id);
                    json!({ "name": a.name, "email": a.email, "code": a.ticket_code, "checked_in": a.checked_in_at.map(|t| timefmt::local_datetime(t, tz)),
                            "waiver": w.map(|w| if w.signed_at.is_some() { "signed" } else { "unsigned" }) })
                }).collect::<Vec<_>>(),
                "history": history.iter().map(|h| json!({ "from": h.from_state, "to": h.to_state, "note": h.note, "at": timefmt::local_datetime(h.created_at, tz) })).collect::<Vec<_>>(),
                "payment": payment.map(|p| json!({ "order_id": p.order_id, "capture_id": p.capture_id, "status": p.capture_status.clone().unwrap_or(p.order_status.clone()), "amount": crate::money::Money::new(p.amount_minor, &p.currency).display(), "refunded": crate::money::Money::new(p.refunded_minor, &p.currency).display(), "refundable": crate::money::Money::new(p.amount_minor - p.refunded_minor, &p.currency).decimal_string(), "refunds": refund_list, "form_token": crate::tokens::url_token(18),
                    "holds_money": matches!(p.capture_status.as_deref(), Some("COMPLETED" | "PARTIALLY_REFUNDED")) && p.refunded_minor < p.amount_minor,
                    "unhonoured": p.unhonoured_at.is_some() })),
                "errors": {},
                "mails": mails.iter().map(|m| json!({ "id": m.id, "kind": m.kind, "state": m.state, "attempts": m.attempts, "error": m.last_error, "to": m.to_email })).collect::<Vec<_>>(),
            }))
        })
        .await
}

#[derive(FromForm)]
pub struct ReasonForm {
    #[field(default = String::new())]
    csrf: String,
    /// The explicit confirmation box (so the action never goes through on one click).
    #[field(default = false)]
    confirm: bool,
    #[field(default = String::new())]
    reason: String,
}

#[post("/bookings/<id>/cancel", data = "<form>")]
async fn cancel_booking(
    db: &State<Db>,
    admin: Admin,
    id: i64,
    form: Form<ReasonForm>,
) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    if !form.confirm {
        return detail_with_errors(
            db,
            &staff,
            id,
            json!({ "cancel_confirm": "Tick the box to confirm the cancellation." }),
        )
        .await;
    }
    let reason: String = form.reason.chars().take(300).collect();
    let was_paid = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let before = Booking::find(conn, id)?;
                let moved = transition(
                    conn,
                    id,
                    &[
                        BookingState::Held,
                        BookingState::AwaitingPayment,
                        BookingState::Paid,
                    ],
                    BookingState::Cancelled,
                    &format!("cancelled by {}: {reason}", staff.user.email),
                )?;
                if moved.is_some() {
                    auth::audit(
                        conn,
                        &staff,
                        "booking.cancel",
                        "booking",
                        Some(id),
                        Some(json!({ "state": before.state })),
                        Some(json!({ "state": "cancelled", "reason": reason })),
                    )?;
                }
                Ok::<_, diesel::result::Error>(moved.map(|_| before.state() == BookingState::Paid))
            })
            .map_err(Into::into)
        })
        .await?;
    let to = Redirect::to(format!("/admin/bookings/{id}"));
    Ok(Page::Flash(match was_paid {
        Some(true) => Flash::success(
            to,
            "Booking cancelled and its seats released; the buyer is told by mail.",
        ),
        Some(false) => Flash::success(to, "Booking cancelled and its seats released."),
        None => Flash::error(to, "Nothing to cancel: the booking is no longer active."),
    }))
}

#[derive(FromForm)]
pub struct RefundForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = false)]
    confirm: bool,
    /// Decimal amount in the booking's currency; empty for everything left.
    #[field(default = String::new())]
    amount: String,
    #[field(default = String::new())]
    reason: String,
    /// One-time token of the rendered form (see `PayPal::refund`).
    #[field(default = String::new())]
    refund_token: String,
}

/// Parses "12.50" in `currency` into minor units.
pub fn parse_amount(text: &str, currency: &str) -> Option<i64> {
    let digits = crate::money::minor_digits(currency) as usize;
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || frac.len() > digits
        || !frac.chars().all(|c| c.is_ascii_digit())
        || whole.len() > 12
    {
        return None;
    }
    let frac = format!("{frac:0<digits$}");
    Some(
        whole.parse::<i64>().ok()? * 10i64.pow(digits as u32)
            + if digits == 0 {
                0
            } else {
                frac.parse::<i64>().ok()?
            },
    )
}

#[post("/bookings/<id>/refund", data = "<form>")]
async fn refund_booking(
    db: &State<Db>,
    paypal: &State<PayPal>,
    admin: Admin,
    id: i64,
    form: Form<RefundForm>,
) -> AppResult<Page> {
    let staff = admin.0;
    staff.check_csrf(&form.csrf)?;
    let booking = db.run(move |conn| Ok(Booking::find(conn, id)?)).await?;
    let amount = if form.amount.trim().is_empty() {
        None
    } else {
        match parse_amount(&form.amount, &booking.currency) {
            Some(a) => Some(a),
            None => {
                let msg = "Enter the amount like 12.50, or leave it empty to refund everything that is left.";
                return detail_with_errors(db, &staff, id, json!({ "amount": msg, "amount_value": form.amount.chars().take(30).collect::<String>() })).await;
            }
        }
    };
    if !form.confirm {
        return detail_with_errors(db, &staff, id, json!({ "refund_confirm": "Tick the box to confirm the refund.", "amount_value": form.amount.chars().take(30).collect::<String>() })).await;
    }
    let reason: String = form.reason.chars().take(250).collect();
    // The audit entry is written with the refund request, so a refund finished later by the
    // reconciliation job still says who asked for it.
    let (s2, r2, state, currency) = (
        staff.clone(),
        reason.clone(),
        booking.state.clone(),
        booking.currency.clone(),
    );
    let audit = move |conn: &mut diesel::PgConnection, refund_id: i64| {
        auth::audit(
            conn,
            &s2,
            "booking.refund",
            "booking",
            Some(id),
            Some(json!({ "state": state })),
            Some(json!({
                "refund_id": refund_id,
                "amount_minor": amount,
                "amount": amount.map_or_else(
                    || "all that was left".to_string(),
                    |a| crate::money::Money::new(a, &currency).display(),
                ),
                "reason": r2,
            })),
        )
    };
    let token = Some(form.refund_token.as_str()).filter(|t| !t.is_empty());
    if let Err(e) = paypal.refund(db, id, amount, &reason, token, audit).await {
        if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) {
            return Err(e.into());
        }
        return detail_with_errors(db, &staff, id, json!({ "amount": e.message, "amount_value": form.amount.chars().take(30).collect::<String>() })).await;
    }
    let done = match amount {
        Some(a) => format!(
            "Refunded {} through PayPal; the buyer is told by mail.",
            crate::money::Money::new(a, &booking.currency).display()
        ),
        None => {
            "Refunded everything that was left through PayPal; the buyer is told by mail.".into()
        }
    };
    Ok(Page::Flash(Flash::success(
        Redirect::to(format!("/admin/bookings/{id}")),
        done,
    )))
}

#[post("/outbox/<id>/resend", data = "<form>")]
async fn resend_mail(
    db: &State<Db>,
    staff: Staff,
    id: i64,
    form: Form<CsrfOnly>,
) -> AppResult<Redirect> {
    staff.check_csrf(&form.csrf)?;
    let booking_id = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let booking_id: i64 = outbox::table
                    .find(id)
                    .select(outbox::booking_id)
                    .first(conn)?;
                crate::outbox::resend(conn, id)?;
                auth::audit(
                    conn,
                    &staff,
                    "mail.resend",
                    "outbox",
                    Some(id),
                    None,
                    Some(json!({ "state": "pending" })),
                )?;
                Ok::<_, diesel::result::Error>(booking_id)
            })
            .map_err(AppError::from)
        })
        .await?;
    Ok(Redirect::to(format!("/admin/bookings/{booking_id}")))
}

// ---------------------------------------------------------------- check-in

#[get("/checkin?<event>")]
async fn checkin_page(db: &State<Db>, staff: Staff, event: Option<i64>) -> AppResult<Template> {
    let list: Vec<(i64, String)> = db
        .run(|conn| {
            Ok(events::table
                .filter(events::ends_at.gt(Utc::now() - chrono::Duration::days(1)))
                .order(events::starts_at)
                .select((events::id, events::title))
                .load(conn)?)
        })
        .await?;
    Ok(page(
        "admin/checkin",
        &staff,
        json!({ "title": "Check-in", "events": list.iter().map(|(id, t)| json!({"id": id, "title": t})).collect::<Vec<_>>(), "event": event, "result": null }),
    ))
}

#[derive(FromForm)]
pub struct CheckinForm {
    #[field(default = String::new())]
    csrf: String,
    #[field(default = 0)]
    event: i64,
    #[field(default = String::new())]
    code: String,
}

#[post("/checkin", data = "<form>")]
async fn checkin(db: &State<Db>, staff: Staff, form: Form<CheckinForm>) -> AppResult<Template> {
    staff.check_csrf(&form.csrf)?;
    let code = crate::tokens::normalize_code(&form.code);
    let event_id = form.event;
    let s2 = staff.clone();
    let (result, list) = db
        .run(move |conn| {
            let result = conn.transaction(|conn| {
                let found: Option<(Attendee, Booking)> = attendees::table
                    .inner_join(bookings::table)
                    .filter(attendees::ticket_code.eq(&code))
                    .select((Attendee::as_select(), Booking::as_select()))
                    .for_update()
                    .first(conn)
                    .optional()?;
                Ok::<_, diesel::result::Error>(match found {
                    None => json!({ "kind": "unknown", "message": "No ticket has this code." }),
                    Some((_, b)) if b.event_id != event_id => json!({ "kind": "wrong_event", "message": "This ticket is for another event." }),
                    Some((_, b)) if b.state() != BookingState::Paid => json!({ "kind": "invalid", "message": format!("This ticket is not valid (booking {}).", b.state().label()) }),
                    Some((a, b)) if a.checked_in_at.is_some() => {
                        let tz = Event::find(conn, b.event_id)?.tz();
                        let at = timefmt::local_datetime(a.checked_in_at.unwrap_or_default(), tz);
                        json!({ "kind": "already", "message": format!("Already checked in: {} (at {at}).", a.name) })
                    }
                    Some((a, _)) => {
                        diesel::update(attendees::table.find(a.id)).set(attendees::checked_in_at.eq(diesel::dsl::now)).execute(conn)?;
                        auth::audit(conn, &s2, "attendee.checkin", "attendee", Some(a.id), Some(json!({ "checked_in": false })), Some(json!({ "checked_in": true })))?;
                        json!({ "kind": "valid", "message": format!("Valid: {} — welcome!", a.name) })
                    }
                })
            })?;
            let list: Vec<(i64, String)> = events::table.filter(events::ends_at.gt(Utc::now() - chrono::Duration::days(1))).order(events::starts_at).select((events::id, events::title)).load(conn)?;
            Ok((result, list))
        })
        .await?;
    Ok(page(
        "admin/checkin",
        &staff,
        json!({ "title": "Check-in", "events": list.iter().map(|(id, t)| json!({"id": id, "title": t})).collect::<Vec<_>>(), "event": event_id, "result": result }),
    ))
}

// ---------------------------------------------------------------- outbox, audit, export

#[get("/outbox?<state>")]
async fn outbox_page(db: &State<Db>, staff: Staff, state: Option<&str>) -> AppResult<Template> {
    let state = state
        .filter(|s| ["pending", "sent", "failed"].contains(s))
        .map(str::to_string);
    let s2 = state.clone();
    let rows: Vec<crate::models::OutboxRow> = db
        .run(move |conn| {
            let mut q = outbox::table
                .order(outbox::id.desc())
                .limit(200)
                .select(crate::models::OutboxRow::as_select())
                .into_boxed();
            if let Some(s) = s2 {
                q = q.filter(outbox::state.eq(s));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let list: Vec<_> = rows.iter().map(|m| json!({ "id": m.id, "kind": m.kind, "booking_id": m.booking_id, "state": m.state, "attempts": m.attempts, "error": m.last_error, "to": m.to_email, "subject": m.subject, "created": m.created_at.format("%Y-%m-%d %H:%M UTC").to_string() })).collect();
    Ok(page(
        "admin/outbox",
        &staff,
        json!({ "title": "Mail outbox", "mails": list, "state": state }),
    ))
}

/// (id, who, action, entity, entity id, before, after, ip, when).
type AuditRow = (
    i64,
    Option<String>,
    String,
    String,
    Option<i64>,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
    String,
    chrono::DateTime<Utc>,
);

#[get("/audit?<action>")]
async fn audit_page(db: &State<Db>, admin: Admin, action: Option<&str>) -> AppResult<Template> {
    let action = action
        .map(|a| a.chars().take(60).collect::<String>())
        .filter(|a| !a.is_empty());
    let a2 = action.clone();
    let rows: Vec<AuditRow> = db
        .run(move |conn| {
            let mut q = audit_log::table
                .left_join(users::table)
                .order(audit_log::id.desc())
                .limit(300)
                .select((
                    audit_log::id,
                    users::email.nullable(),
                    audit_log::action,
                    audit_log::entity,
                    audit_log::entity_id,
                    audit_log::before,
                    audit_log::after,
                    audit_log::ip,
                    audit_log::created_at,
                ))
                .into_boxed();
            if let Some(a) = a2 {
                q = q.filter(audit_log::action.eq(a));
            }
            Ok(q.load(conn)?)
        })
        .await?;
    let list: Vec<_> = rows.iter().map(|r| json!({ "id": r.0, "who": r.1, "action": r.2, "entity": r.3, "entity_id": r.4, "changes": audit_changes(r.5.as_ref(), r.6.as_ref()), "ip": r.7, "at": r.8.format("%Y-%m-%d %H:%M:%S UTC").to_string() })).collect();
    Ok(page(
        "admin/audit",
        &admin.0,
        json!({ "title": "Audit log", "entries": list, "action": action }),
    ))
}

/// An audit entry's before/after snapshots as readable lines: `field: old → new` for what
/// changed, `field: value` for what was set on a new record.
pub fn audit_changes(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Vec<String> {
    use serde_json::Value;
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (b.get(k), a.get(k)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(x), Some(y)) => Some(format!("{k}: {} → {}", show(x), show(y))),
            (None, Some(y)) => Some(format!("{k}: {}", show(y))),
            (Some(x), None) => Some(format!("{k}: {} (removed)", show(x))),
            (None, None) => None,
        })
        .collect()
}

/// Neutralises spreadsheet formulas: a value starting with = + - @ (or a tab/CR) gets a
/// leading apostrophe, so Excel and LibreOffice show it as text.
pub fn csv_safe(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

#[get("/export/attendees.csv?<event>")]
async fn export_csv(db: &State<Db>, staff: Staff, event: i64) -> AppResult<Csv> {
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
async fn export_bookings_csv(db: &State<Db>, staff: Staff, event: i64) -> AppResult<Csv> {
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

#[cfg(test)]
mod tests {
    use super::audit_changes;
    use serde_json::json;

    #[test]
    fn audit_changes_lists_what_changed() {
        let before = json!({ "visibility": "draft", "capacity": 100, "title": "Gala" });
        let after =
            json!({ "visibility": "public", "capacity": 100, "title": "Gala", "note": null });
        assert_eq!(
            audit_changes(Some(&before), Some(&after)),
            vec!["note: —", "visibility: draft → public"]
        );
        assert_eq!(
            audit_changes(None, Some(&json!({ "amount": "€12.50", "id": 3 }))),
            vec!["amount: €12.50", "id: 3"]
        );
        assert_eq!(
            audit_changes(Some(&json!({ "role": "staff" })), None),
            vec!["role: staff (removed)"]
        );
        assert!(audit_changes(None, None).is_empty());
    }
}
