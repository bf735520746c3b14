//! Mail: a durable outbox and the worker that sends it.
//!
//! A state change that owes the buyer an email writes an `outbox` row in its own
//! transaction ([`on_transition`], [`late_payment`], [`queue_waiver_reminders`]); the row's
//! `dedupe_key` makes a second copy impossible. The worker ([`Mailer::run`]) leases due rows
//! (`FOR UPDATE SKIP LOCKED`, safe with several instances), renders them from Tera templates
//! (`templates/mail/<kind>_text.tera` and `<kind>_html.tera`) with the data as it is now, sends them
//! with lettre over SMTP, and marks them sent, schedules a retry (10 attempts over about a
//! day), or marks them failed on a permanent (5xx) answer. An SMTP outage only delays mail.
//! A crash between a successful send and its commit can repeat one email (at-least-once);
//! the Message-ID is stable per row so mail clients can tell.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rocket_dyn_templates::tera;
use serde_json::json;

use crate::config::{MailSettings, MailTransport, SmtpSecurity};
use crate::models::{Attendee, Booking, BookingState, Event};
use crate::schema::{outbox, waivers};
use crate::{timefmt, Db};

/// Delays before attempts 2, 3, ... (10 attempts over about 24 hours).
const BACKOFF_MINUTES: [i64; 9] = [1, 5, 15, 30, 60, 120, 240, 480, 480];
pub const MAX_ATTEMPTS: i32 = 10;
/// How long a leased row is left alone while it is being sent.
const LEASE_MINUTES: i64 = 5;

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
            if event.waiver_required {
                crate::waivers::ensure_current_text(conn, &event)?;
                for a in booking.attendees(conn)? {
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
          WHERE e.starts_at > now() AND e.starts_at <= now() + interval '24 hours'
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .execute(conn)
}

#[derive(QueryableByName)]
struct Leased {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub booking_id: i64,
    pub attendee_id: Option<i64>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: chrono::DateTime<Utc>,
    pub last_error: String,
    pub to_email: String,
    pub subject: String,
    pub created_at: chrono::DateTime<Utc>,
    pub sent_at: Option<chrono::DateTime<Utc>>,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// A rendered email.
pub struct Rendered {
    pub to: Mailbox,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub ics: Option<String>,
}

/// Renders outbox rows (cheap to clone into blocking database tasks).
#[derive(Clone)]
pub struct Renderer {
    tera: std::sync::Arc<tera::Tera>,
    base_url: String,
    site_name: String,
}

/// Renders and sends outbox rows.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    renderer: Renderer,
    base_url: String,
}

impl Mailer {
    pub fn new(
        settings: &MailSettings,
        template_dir: &std::path::Path,
        base_url: &str,
        site_name: &str,
    ) -> Result<Mailer, String> {
        let transport = match &settings.transport {
            MailTransport::Smtp {
                host,
                port,
                security,
                username,
                password,
            } => {
                let builder = match security {
                    SmtpSecurity::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .map_err(|e| format!("SMTP_HOST: {e}"))?,
                    SmtpSecurity::StartTls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                            .map_err(|e| format!("SMTP_HOST: {e}"))?
                    }
                };
                let mut builder = builder.port(*port).timeout(Some(Duration::from_secs(20)));
                if let (Some(u), Some(p)) = (username, password) {
                    builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
                }
                Transport::Smtp(builder.build())
            }
            MailTransport::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| format!("MAIL_FILE_DIR {dir:?}: {e}"))?;
                Transport::File(AsyncFileTransport::<Tokio1Executor>::new(dir))
            }
        };
        let from = Mailbox::new(
            Some(settings.from_name.clone()),
            settings
                .from_email
                .parse()
                .map_err(|e| format!("MAIL_FROM: {e}"))?,
        );
        let reply_to = match &settings.reply_to {
            Some(r) => Some(Mailbox::new(
                None,
                r.parse().map_err(|e| format!("MAIL_REPLY_TO: {e}"))?,
            )),
            None => None,
        };
        let pattern = template_dir.join("mail").join("*.tera");
        let mut tera = tera::Tera::new(&pattern.to_string_lossy())
            .map_err(|e| format!("mail templates: {e}"))?;
        // Escape everything in the HTML parts (buyers' names are user input).
        tera.autoescape_on(vec!["_html.tera"]);
        let base_url = base_url.trim_end_matches('/').to_string();
        Ok(Mailer {
            transport,
            from,
            reply_to,
            renderer: Renderer {
                tera: std::sync::Arc::new(tera),
                base_url: base_url.clone(),
                site_name: site_name.to_string(),
            },
            base_url,
        })
    }

    pub fn renderer(&self) -> Renderer {
        self.renderer.clone()
    }

    /// Sends what is due, until shutdown.
    pub async fn run(self: std::sync::Arc<Self>, db: Db, mut shutdown: rocket::Shutdown) {
        loop {
            rocket::tokio::select! {
                _ = &mut shutdown => break,
                _ = rocket::tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            match self.send_due(&db, 20).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(processed = n, "outbox processed"),
                Err(e) => tracing::warn!(error = %e, "outbox run failed"),
            }
        }
    }

    /// Leases and sends up to `limit` due emails; returns how many were tried.
    pub async fn send_due(&self, db: &Db, limit: i64) -> Result<usize, crate::error::AppError> {
        let ids: Vec<i64> = db
            .run(move |conn| {
                Ok(diesel::sql_query(
                    "UPDATE outbox SET next_attempt_at = now() + make_interval(mins => $2)
                      WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()
                                   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
                      RETURNING id",
                )
                .bind::<BigInt, _>(limit)
                .bind::<diesel::sql_types::Integer, _>(LEASE_MINUTES as i32)
                .load::<Leased>(conn)?
                .into_iter()
                .map(|r| r.id)
                .collect())
            })
            .await?;
        for id in &ids {
            let id = *id;
            let renderer = self.renderer.clone();
            let rendered = db.run(move |conn| Ok(renderer.render(conn, id))).await?;
            let result = match rendered {
                Ok(mail) => {
                    let (to, subject) = (mail.to.email.to_string(), mail.subject.clone());
                    let outcome = self.send(id, mail).await;
                    Some((to, subject, outcome))
                }
                Err(e) => {
                    tracing::error!(outbox = id, error = %e, "email could not be rendered");
                    Some((
                        String::new(),
                        String::new(),
                        Err((true, format!("render: {e}"))),
                    ))
                }
            };
            if let Some((to, subject, outcome)) = result {
                db.run(move |conn| Ok(record(conn, id, &to, &subject, outcome)?))
                    .await?;
            }
        }
        Ok(ids.len())
    }

    async fn send(&self, id: i64, mail: Rendered) -> Result<(), (bool, String)> {
        let host = self
            .base_url
            .split("://")
            .nth(1)
            .unwrap_or("localhost")
            .split(['/', ':'])
            .next()
            .unwrap_or("localhost")
            .to_string();
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(mail.to)
            .subject(mail.subject)
            .message_id(Some(format!("<outbox-{id}@{host}>")));
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let body = MultiPart::alternative_plain_html(mail.text, mail.html);
        let message = match mail.ics {
            Some(ics) => builder.multipart(
                MultiPart::mixed().multipart(body).singlepart(
                    Attachment::new("event.ics".into()).body(
                        ics,
                        ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")
                            .expect("valid content type"),
                    ),
                ),
            ),
            None => builder.multipart(body),
        }
        .map_err(|e| (true, format!("message: {e}")))?;
        match &self.transport {
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| (e.is_permanent(), e.to_string())),
            Transport::File(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| (false, e.to_string())),
        }
    }
}

impl Renderer {
    /// Renders outbox row `id` from the data as it is now.
    pub fn render(&self, conn: &mut PgConnection, id: i64) -> Result<Rendered, String> {
        let row: OutboxRow = outbox::table
            .find(id)
            .select(OutboxRow::as_select())
            .first(conn)
            .map_err(|e| e.to_string())?;
        let booking = Booking::find(conn, row.booking_id).map_err(|e| e.to_string())?;
        let event = Event::find(conn, booking.event_id).map_err(|e| e.to_string())?;
        let people: Vec<Attendee> = booking.attendees(conn).map_err(|e| e.to_string())?;
        let tz = event.tz();
        let attendee = row
            .attendee_id
            .and_then(|aid| people.iter().find(|a| a.id == aid).cloned());
        let waiver_token: Option<String> = match &attendee {
            Some(a) => waivers::table
                .filter(waivers::attendee_id.eq(a.id))
                .select(waivers::token)
                .first(conn)
                .optional()
                .map_err(|e| e.to_string())?,
            None => None,
        };
        let payment = crate::models::Payment::find_by_booking(conn, booking.id)
            .map_err(|e| e.to_string())?
            .map(|p| {
                json!({
                    "amount": crate::money::Money::new(p.amount_minor, &p.currency).display(),
                    "refunded": crate::money::Money::new(p.refunded_minor, &p.currency).display(),
                })
            });
        let booking_url = format!("{}/bookings/{}", self.base_url, booking.access_token);
        let ctx = json!({
            "site_name": self.site_name,
            "booking": {
                "reference": booking.reference,
                "buyer_name": booking.buyer_name,
                "total": booking.total().display(),
                "seats": booking.seats,
                "url": booking_url,
            },
            "event": {
                "title": event.title,
                "venue": event.venue,
                "when": timefmt::local_range(event.starts_at, event.ends_at, tz),
                "timezone": event.timezone,
                "waiver_required": event.waiver_required,
            },
            "attendees": people.iter().map(|a| json!({ "name": a.name, "ticket_code": a.ticket_code })).collect::<Vec<_>>(),
            "attendee": attendee.as_ref().map(|a| json!({ "name": a.name })),
            "payment": payment,
            "waiver_url": waiver_token.map(|t| format!("{}/waivers/{t}", self.base_url)),
        });
        let ctx = tera::Context::from_value(ctx).map_err(|e| e.to_string())?;
        let text = self
            .tera
            .render(&format!("{}_text.tera", row.kind), &ctx)
            .map_err(|e| format!("{e:?}"))?;
        let html = self
            .tera
            .render(&format!("{}_html.tera", row.kind), &ctx)
            .map_err(|e| format!("{e:?}"))?;
        let subject = match row.kind.as_str() {
            "confirmation" => format!("Your tickets for {} ({})", event.title, booking.reference),
            "waiver_request" => format!("Please sign the waiver for {}", event.title),
            "waiver_reminder" => format!(
                "Reminder: sign the waiver for {} before it starts",
                event.title
            ),
            "refund" => format!("Your booking {} was refunded", booking.reference),
            "partial_refund" => format!("Part of your booking {} was refunded", booking.reference),
            "cancellation" => format!("Your booking {} was cancelled", booking.reference),
            "payment_returned" => format!(
                "Your payment for {} is being refunded ({})",
                event.title, booking.reference
            ),
            _ => format!("Your payment for {} came too late", event.title),
        };
        let (name, email) = match &attendee {
            Some(a) if !a.email.is_empty() => (a.name.clone(), a.email.clone()),
            Some(a) => (a.name.clone(), booking.buyer_email.clone()),
            None => (booking.buyer_name.clone(), booking.buyer_email.clone()),
        };
        let to = Mailbox::new(
            Some(name),
            email
                .parse()
                .map_err(|e| format!("recipient {email:?}: {e}"))?,
        );
        let ics = (row.kind == "confirmation").then(|| {
            let host = self.base_url.split("://").nth(1).unwrap_or("tickets");
            crate::ics::calendar(
                &crate::ics::CalendarEvent {
                    uid: format!("{}@{host}", booking.reference),
                    title: &event.title,
                    location: &event.venue,
                    description: format!(
                        "Booking {}. Your tickets: {booking_url}",
                        booking.reference
                    ),
                    url: booking_url.clone(),
                    starts_at: event.starts_at,
                    ends_at: event.ends_at,
                },
                Utc::now(),
            )
        });
        Ok(Rendered {
            to,
            subject,
            text,
            html,
            ics,
        })
    }
}

/// Stores the outcome of one attempt.
fn record(
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
    match outcome {
        Ok(()) => diesel::update(outbox::table.find(id))
            .set((
                outbox::state.eq("sent"),
                outbox::attempts.eq(attempts),
                outbox::sent_at.eq(diesel::dsl::now),
                outbox::to_email.eq(to),
                outbox::subject.eq(subject),
                outbox::last_error.eq(""),
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

/// Puts a sent or failed email back in the queue (the admin's "resend").
pub fn resend(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::state.eq("pending"),
            outbox::next_attempt_at.eq(diesel::dsl::now),
            outbox::attempts.eq(0),
        ))
        .execute(conn)
}
