//! The mail outbox: a state change that owes the buyer (or an attendee) an email writes an `outbox` row in
//! its own transaction ([`on_transition`], [`late_payment`], [`queue_waiver_reminders`]);
//! the row's `dedupe_key` makes a second copy impossible. The sender (`ticketing_app::mail`)
//! claims due rows ([`claim_due`]), renders and sends them, and stores each attempt's
//! outcome here ([`record`]): sent, a retry (10 attempts over about a day), or failed on a
//! permanent (5xx) answer. An SMTP outage only delays mail.

use chrono::Utc;
use diesel::prelude::*;
use ticketing_db::claim::{self, Due};
use ticketing_db::models::{Booking, BookingState, Event};
use ticketing_db::schema::outbox;

/// Delays before attempts 2, 3, ... (10 attempts over about 24 hours).
const BACKOFF_MINUTES: [i64; 9] = [1, 5, 15, 30, 60, 120, 240, 480, 480];
pub const MAX_ATTEMPTS: i32 = 10;

/// Pending rows whose time has come; a claimed row is left alone for five minutes while it
/// is being sent.
const DUE: Due<'static> = Due {
    table: "outbox",
    alias: "outbox",
    from: "outbox",
    condition: "state = 'pending' AND next_attempt_at <= now()",
    order: "next_attempt_at, id",
    lease: "next_attempt_at = now() + interval '5 minutes'",
};

/// Claims up to `limit` due emails for sending; returns their ids.
pub fn claim_due(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<i64>> {
    claim::claim_due(conn, &DUE, limit)
}

/// Queues one email unless the same one (`dedupe_key`) was queued before.
pub fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    dedupe_key: &str,
    booking_id: i64,
    attendee_id: Option<i64>,
) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind),
            outbox::dedupe_key.eq(dedupe_key),
            outbox::booking_id.eq(booking_id),
            outbox::attendee_id.eq(attendee_id),
        ))
        .on_conflict(outbox::dedupe_key)
        .do_nothing()
        .execute(conn)?;
    Ok(())
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// The states of bookings a buyer is sent the links of when they ask (find my booking):
/// every booking that got as far as the buyer's details.
pub const FINDABLE: [&str; 5] = [
    "awaiting_payment",
    "paid",
    "cancelled",
    "refunded",
    "reversed",
];

/// Queues one "your bookings" mail listing every findable booking of `email` (any case), if
/// there is one; whether it was queued. The row hangs off the newest such booking; each
/// request is its own mail (callers limit how often).
pub fn booking_links(conn: &mut PgConnection, email: &str) -> QueryResult<bool> {
    use ticketing_db::schema::bookings;
    let newest: Option<i64> = bookings::table
        .filter(lower(bookings::buyer_email).eq(lower(email.trim())))
        .filter(bookings::state.eq_any(FINDABLE))
        .order(bookings::id.desc())
        .select(bookings::id)
        .first(conn)
        .optional()?;
    let Some(id) = newest else {
        return Ok(false);
    };
    let key = format!(
        "booking_links:{id}:{}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    enqueue(conn, "booking_links", &key, id, None)?;
    Ok(true)
}

/// The emails a booking's state change owes the buyer, queued in the caller's transaction.
pub fn on_transition(
    conn: &mut PgConnection,
    booking: &Booking,
    from: BookingState,
    to: BookingState,
) -> QueryResult<()> {
    match (from, to) {
        (_, BookingState::Paid) => {
            enqueue(
                conn,
                "confirmation",
                &format!("confirmation:{}", booking.id),
                booking.id,
                None,
            )?;
            let event = Event::find(conn, booking.event_id)?;
            let people = booking.attendees(conn)?;
            if event.waiver_required {
                crate::waivers::ensure_current_text(conn, &event)?;
                for a in &people {
                    crate::waivers::ensure_waiver(conn, a.id)?;
                    enqueue(
                        conn,
                        "waiver_request",
                        &format!("waiver_request:{}", a.id),
                        booking.id,
                        Some(a.id),
                    )?;
                }
            }
            // Each attendee with an address other than the buyer's gets their own ticket
            // (the buyer's confirmation carries them all); once per attendee, however often
            // the payment is settled (test `mail::each_attendee_with_an_email_gets_their_own_ticket_once`).
            for a in people.iter().filter(|a| {
                !a.email.trim().is_empty()
                    && !a
                        .email
                        .trim()
                        .eq_ignore_ascii_case(booking.buyer_email.trim())
            }) {
                enqueue(
                    conn,
                    "attendee_ticket",
                    &format!("attendee_ticket:{}", a.id),
                    booking.id,
                    Some(a.id),
                )?;
            }
        }
        (BookingState::Paid, BookingState::Refunded) => enqueue(
            conn,
            "refund",
            &format!("refund:{}", booking.id),
            booking.id,
            None,
        )?,
        (BookingState::Paid, BookingState::Cancelled | BookingState::Reversed) => enqueue(
            conn,
            "cancellation",
            &format!("cancellation:{}", booking.id),
            booking.id,
            None,
        )?,
        _ => {}
    }
    Ok(())
}

/// "Part of your booking was refunded" (a full refund goes through `on_transition`): one mail
/// for each partial refund row.
pub fn partial_refund(conn: &mut PgConnection, booking_id: i64, refund_id: i64) -> QueryResult<()> {
    enqueue(
        conn,
        "partial_refund",
        &format!("partial_refund:{refund_id}"),
        booking_id,
        None,
    )
}

/// "One of your tickets was cancelled (or refunded)": once per ticket, to the buyer.
pub fn ticket_cancelled(
    conn: &mut PgConnection,
    booking_id: i64,
    attendee_id: i64,
) -> QueryResult<()> {
    enqueue(
        conn,
        "ticket_cancelled",
        &format!("ticket_cancelled:{attendee_id}"),
        booking_id,
        Some(attendee_id),
    )
}

/// "Your payment came too late; nothing was charged."
pub fn late_payment(conn: &mut PgConnection, booking_id: i64) -> QueryResult<()> {
    enqueue(
        conn,
        "late_payment",
        &format!("late_payment:{booking_id}"),
        booking_id,
        None,
    )
}

/// "Your payment came after the booking closed; it is refunded in full." Once per booking.
pub fn payment_returned(conn: &mut PgConnection, booking_id: i64) -> QueryResult<()> {
    enqueue(
        conn,
        "payment_returned",
        &format!("payment_returned:{booking_id}"),
        booking_id,
        None,
    )
}

/// Queues one reminder, once, for each attendee of a paid booking whose event needs a waiver,
/// starts within 24 hours, and whose waiver is not signed yet. Returns how many were queued.
pub fn queue_waiver_reminders(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO outbox (kind, dedupe_key, booking_id, attendee_id)
         SELECT 'waiver_reminder', 'waiver_reminder:' || a.id, b.id, a.id
           FROM attendees a
           JOIN bookings b ON b.id = a.booking_id AND b.state = 'paid'
           JOIN events e ON e.id = b.event_id AND e.waiver_required
           JOIN waivers w ON w.attendee_id = a.id AND w.signed_at IS NULL
          WHERE a.cancelled_at IS NULL AND e.starts_at > now() AND e.starts_at <= now() + interval '24 hours'
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .execute(conn)
}

/// Stores the outcome of one attempt: `Err((permanent, error))` for a failed one.
pub fn record(
    conn: &mut PgConnection,
    id: i64,
    to: &str,
    subject: &str,
    outcome: Result<(), (bool, String)>,
) -> QueryResult<()> {
    let attempts: i32 = outbox::table
        .find(id)
        .select(outbox::attempts)
        .first(conn)?;
    let attempts = attempts + 1;
    ticketing_core::telemetry::mail_attempt(match &outcome {
        Ok(()) => "sent",
        Err((permanent, _)) if *permanent || attempts >= MAX_ATTEMPTS => "failed",
        Err(_) => "retry",
    });
    match outcome {
        Ok(()) => diesel::update(outbox::table.find(id))
            .set((
                outbox::state.eq("sent"),
                outbox::attempts.eq(attempts),
                outbox::sent_at.eq(diesel::dsl::now),
                outbox::to_email.eq(to),
                outbox::subject.eq(subject),
                outbox::last_error.eq(""),
                // An account link's token leaves the database with its mail.
                outbox::secret.eq(None::<String>),
            ))
            .execute(conn)?,
        Err((permanent, error)) => {
            let failed = permanent || attempts >= MAX_ATTEMPTS;
            let delay = BACKOFF_MINUTES[((attempts - 1) as usize).min(BACKOFF_MINUTES.len() - 1)];
            tracing::warn!(outbox = id, attempts, permanent, error = %error, "email not sent");
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::state.eq(if failed { "failed" } else { "pending" }),
                    outbox::attempts.eq(attempts),
                    outbox::next_attempt_at.eq(Utc::now() + chrono::Duration::minutes(delay)),
                    outbox::last_error.eq(error.chars().take(1000).collect::<String>()),
                    outbox::to_email.eq(to),
                    outbox::subject.eq(subject),
                ))
                .execute(conn)?
        }
    };
    Ok(())
}

/// Puts a sent or failed email back in the queue (the admin's "resend"). Only a buyer's
/// mail: an account link's token left with its mail, so it cannot be sent again (a new link
/// is issued instead).
pub fn resend(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::booking_id.is_not_null()),
    )
    .set((
        outbox::state.eq("pending"),
        outbox::next_attempt_at.eq(diesel::dsl::now),
        outbox::attempts.eq(0),
    ))
    .execute(conn)
}
