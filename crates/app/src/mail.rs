//! The mail sender: claims due rows of the outbox (`ticketing_domain::outbox`), renders each
//! from Tera templates (`templates/mail/<kind>_text.tera` and `<kind>_html.tera`) with the data
//! as it is now, sends it with lettre over SMTP (or into files), and records the outcome.
//! A crash between a successful send and its commit can repeat one email (at-least-once);
//! the Message-ID is stable per row so mail clients can tell.
//!
//! A confirmation carries every ticket of the booking as one PDF, an attendee's own ticket
//! mail (`attendee_ticket`) only theirs; both are rendered at send time from the booking as
//! it is then (`crate::tickets_pdf`), and each ticket's QR code is an inline PNG referenced
//! by `cid:` from the HTML part: mail clients block SVG and data URIs, and a PNG made with
//! the `png` crate from the QR module matrix keeps the `image` crate out (test
//! `mail::each_attendee_with_an_email_gets_their_own_ticket_once`).

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use ticketing_core::timefmt;
use ticketing_db::models::{Attendee, Booking, Event, OutboxRow};
use ticketing_db::schema::{outbox, waivers};
use ticketing_db::Db;
use ticketing_domain::outbox::record;

pub use settings::{MailSettings, MailTransport, SmtpSecurity};

mod settings;

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
    /// The tickets as PDF: (file name, bytes).
    pub pdf: Option<(String, Vec<u8>)>,
    /// Inline images of the HTML part: (Content-ID, PNG bytes).
    pub inline: Vec<(String, Vec<u8>)>,
}

/// A mail's recipient; an address the mailbox parser refuses is a permanent render error.
fn recipient(name: String, email: &str) -> Result<Mailbox, String> {
    let address = email
        .parse()
        .map_err(|e| format!("recipient {email:?}: {e}"))?;
    Ok(Mailbox::new(Some(name), address))
}

/// The host of `base_url`, without scheme, port or path (for Message-IDs and Content-IDs).
fn host_of(base_url: &str) -> String {
    base_url
        .split("://")
        .nth(1)
        .unwrap_or("localhost")
        .split(['/', ':'])
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
        .to_string()
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
    pub async fn run(
        self: std::sync::Arc<Self>,
        db: Db,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let result = self.send_due(&db, 20).await;
            ticketing_core::telemetry::job_run("outbox", result.is_ok());
            match result {
                Ok(0) => {}
                Ok(n) => tracing::info!(processed = n, "outbox processed"),
                Err(e) => tracing::warn!(error = %e, "outbox run failed"),
            }
        }
    }

    /// Leases and sends up to `limit` due emails; returns how many were tried.
    pub async fn send_due(&self, db: &Db, limit: i64) -> Result<usize, ticketing_db::Error> {
        let ids: Vec<i64> = db
            .run(move |conn| Ok(ticketing_domain::outbox::claim_due(conn, limit)?))
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
        let host = host_of(&self.base_url);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(mail.to)
            .subject(mail.subject)
            .message_id(Some(format!("<outbox-{id}@{host}>")));
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let body = if mail.inline.is_empty() {
            MultiPart::alternative_plain_html(mail.text, mail.html)
        } else {
            // The HTML part and the images it shows by `cid:` belong together.
            let png = ContentType::parse("image/png").expect("valid content type");
            let related = mail.inline.into_iter().fold(
                MultiPart::related().singlepart(SinglePart::html(mail.html)),
                |related, (cid, bytes)| {
                    related.singlepart(Attachment::new_inline(cid).body(bytes, png.clone()))
                },
            );
            MultiPart::alternative()
                .singlepart(SinglePart::plain(mail.text))
                .multipart(related)
        };
        let mut files = Vec::new();
        if let Some((name, bytes)) = mail.pdf {
            files.push(Attachment::new(name).body(
                bytes,
                ContentType::parse("application/pdf").expect("valid content type"),
            ));
        }
        if let Some(ics) = mail.ics {
            files.push(
                Attachment::new("event.ics".into()).body(
                    ics,
                    ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")
                        .expect("valid content type"),
                ),
            );
        }
        let message = if files.is_empty() {
            builder.multipart(body)
        } else {
            builder.multipart(
                files
                    .into_iter()
                    .fold(MultiPart::mixed().multipart(body), |m, f| m.singlepart(f)),
            )
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
    /// Every findable booking of `email` for a "your bookings" mail, newest first: event,
    /// when (in the event's zone), reference, state and link.
    fn booking_links(
        &self,
        conn: &mut PgConnection,
        email: &str,
    ) -> Result<Vec<serde_json::Value>, String> {
        use ticketing_db::schema::{bookings, events};
        diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);
        let rows: Vec<(Booking, Event)> = bookings::table
            .inner_join(events::table)
            .filter(lower(bookings::buyer_email).eq(lower(email.trim())))
            .filter(bookings::state.eq_any(ticketing_domain::outbox::FINDABLE))
            .order(bookings::id.desc())
            .limit(50)
            .select((Booking::as_select(), Event::as_select()))
            .load(conn)
            .map_err(|e| e.to_string())?;
        Ok(rows
            .into_iter()
            .map(|(booking, event)| {
                json!({
                    "reference": booking.reference,
                    "url": format!("{}/bookings/{}", self.base_url, booking.access_token),
                    "state": booking.state.replace('_', " "),
                    "event": event.title,
                    "when": timefmt::local_range(event.starts_at, event.ends_at, event.tz()),
                })
            })
            .collect())
    }

    /// What a refund, cancellation or ticket mail tells the buyer about the change: the
    /// refund (amount, when in the event's zone, the admin's reason) and, for a ticket, which
    /// one and whether the booking closed with it (tests `ticket_changes::*`).
    fn change(
        &self,
        conn: &mut PgConnection,
        row: &OutboxRow,
        booking: &Booking,
        attendee: Option<&Attendee>,
        event: &Event,
    ) -> Result<serde_json::Value, String> {
        let tz = event.tz();
        use ticketing_db::models::Refund;
        use ticketing_db::schema::{payments, refunds};
        let err = |e: diesel::result::Error| e.to_string();
        let counted = ["COMPLETED", "PENDING"];
        // The refund the mail is about: the partial one its row names, the ticket's own, or
        // for a whole-booking refund the latest that counted.
        let refund: Option<Refund> = match (row.kind.as_str(), attendee) {
            ("partial_refund", _) => match row
                .dedupe_key
                .strip_prefix("partial_refund:")
                .and_then(|id| id.parse::<i64>().ok())
            {
                Some(id) => Some(Refund::find(conn, id).map_err(err)?),
                None => None,
            },
            ("ticket_cancelled", Some(a)) => refunds::table
                .filter(refunds::attendee_id.eq(a.id))
                .filter(refunds::status.eq_any(counted))
                .select(Refund::as_select())
                .first(conn)
                .optional()
                .map_err(err)?,
            ("refund", _) => refunds::table
                .inner_join(payments::table)
                .filter(payments::booking_id.eq(booking.id))
                .filter(refunds::status.eq_any(counted))
                .order(refunds::id.desc())
                .select(Refund::as_select())
                .first(conn)
                .optional()
                .map_err(err)?,
            _ => None,
        };
        let ticket = match attendee {
            Some(a) if row.kind == "ticket_cancelled" => {
                let types = ticketing_db::models::TicketType::for_events(conn, &[booking.event_id])
                    .map_err(err)?;
                Some(json!({
                    "name": a.name,
                    "code": a.ticket_code,
                    "ticket_type": types.iter().find(|t| t.id == a.ticket_type_id).map(|t| t.name.clone()).unwrap_or_default(),
                    "refunded": a.cancel_state.as_deref() == Some("refunded"),
                    "reason": a.cancel_reason,
                }))
            }
            _ => None,
        };
        Ok(json!({
            "refund": refund.map(|r| json!({
                "amount": ticketing_core::money::Money::new(r.amount_minor, &r.currency).display(),
                "at": timefmt::local_datetime(r.created_at, tz),
                "reason": r.note,
            })),
            "ticket": ticket,
            // The booking closed with this ticket (it was the last valid one).
            "booking_closed": !booking.state().holds_seats(),
            "booking_state": booking.state().label(),
            "valid_tickets": booking.seats,
        }))
    }

    pub fn render(&self, conn: &mut PgConnection, id: i64) -> Result<Rendered, String> {
        let row: OutboxRow = outbox::table
            .find(id)
            .select(OutboxRow::as_select())
            .first(conn)
            .map_err(|e| e.to_string())?;
        if let Some(user_id) = row.user_id {
            return self.render_account(conn, &row, user_id);
        }
        let booking_id = row
            .booking_id
            .ok_or("the mail has neither a booking nor an account")?;
        let booking = Booking::find(conn, booking_id).map_err(|e| e.to_string())?;
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
        let payment = ticketing_db::models::Payment::find_by_booking(conn, booking.id)
            .map_err(|e| e.to_string())?
            .map(|p| {
                json!({
                    "amount": ticketing_core::money::Money::new(p.amount_minor, &p.currency).display(),
                    "refunded": ticketing_core::money::Money::new(p.refunded_minor, &p.currency).display(),
                })
            });
        let booking_url = format!("{}/bookings/{}", self.base_url, booking.access_token);
        // The tickets this mail carries: all of a paid booking's in the confirmation, the
        // attendee's own in their ticket mail, none otherwise (or once no longer valid).
        let tickets = match (row.kind.as_str(), &attendee) {
            ("confirmation", _) => crate::tickets_pdf::booking_tickets(conn, &booking, None),
            ("attendee_ticket", Some(a)) => {
                crate::tickets_pdf::booking_tickets(conn, &booking, Some(&a.ticket_code))
            }
            _ => Ok(Vec::new()),
        }
        .map_err(|e| e.to_string())?;
        let host = host_of(&self.base_url);
        let cid = |code: &str| format!("qr-{code}@{host}");
        let mut inline = Vec::new();
        for t in &tickets {
            match crate::tickets_pdf::qr_png(&t.qr, 4) {
                Ok(png) => inline.push((cid(&t.code), png)),
                Err(e) => tracing::error!(outbox = id, error = %e, "QR image not made"),
            }
        }
        let has_qr = |code: &str| inline.iter().any(|(c, _)| *c == cid(code));
        let pdf = if tickets.is_empty() {
            None
        } else {
            let name = match (row.kind.as_str(), &attendee) {
                ("attendee_ticket", Some(a)) => {
                    format!("ticket-{}-{}.pdf", booking.reference, a.ticket_code)
                }
                _ => format!("tickets-{}.pdf", booking.reference),
            };
            match crate::tickets_pdf::render(&format!("Tickets {}", booking.reference), &tickets) {
                Ok(bytes) => Some((name, bytes)),
                // The mail still links the booking page; the PDF is not worth failing it.
                Err(e) => {
                    tracing::error!(outbox = id, error = %e, "ticket PDF not made");
                    None
                }
            }
        };
        // Every mail's footer names the organiser and links the legal pages
        // (`legal::mails_name_the_organiser`).
        let (organiser, legal) = self.footer_context(conn)?;
        let ctx = json!({
            "site_name": self.site_name,
            "organiser": organiser,
            "legal": legal,
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
            "attendees": people.iter().map(|a| json!({
                "name": a.name,
                "ticket_code": a.ticket_code,
                "qr_cid": has_qr(&a.ticket_code).then(|| cid(&a.ticket_code)),
            })).collect::<Vec<_>>(),
            "attendee": attendee.as_ref().map(|a| json!({
                "name": a.name,
                "ticket_code": a.ticket_code,
                "ticket_type": tickets.iter().find(|t| t.code == a.ticket_code).map(|t| t.ticket_type.clone()),
                "qr_cid": has_qr(&a.ticket_code).then(|| cid(&a.ticket_code)),
            })),
            "has_pdf": pdf.is_some(),
            "payment": payment,
            "waiver_url": waiver_token.map(|t| format!("{}/waivers/{t}", self.base_url)),
        });
        let mut ctx = tera::Context::from_value(ctx).map_err(|e| e.to_string())?;
        if matches!(
            row.kind.as_str(),
            "refund" | "partial_refund" | "cancellation" | "ticket_cancelled"
        ) {
            ctx.insert(
                "change",
                &self.change(conn, &row, &booking, attendee.as_ref(), &event)?,
            );
        }
        if row.kind == "booking_links" {
            ctx.insert("bookings", &self.booking_links(conn, &booking.buyer_email)?);
        }
        let (text, html) = self.render_parts(&row.kind, &ctx)?;
        let subject = match row.kind.as_str() {
            "confirmation" => format!("Your tickets for {} ({})", event.title, booking.reference),
            "waiver_request" => format!("Please sign the waiver for {}", event.title),
            "attendee_ticket" => format!("Your ticket for {}", event.title),
            "waiver_reminder" => format!(
                "Reminder: sign the waiver for {} before it starts",
                event.title
            ),
            "booking_links" => format!("Your bookings at {}", self.site_name),
            "refund" => format!("Your booking {} was refunded", booking.reference),
            "partial_refund" => format!("Part of your booking {} was refunded", booking.reference),
            "cancellation" => format!("Your booking {} was cancelled", booking.reference),
            "ticket_cancelled" => match attendee.as_ref().and_then(|a| a.cancel_state.as_deref()) {
                Some("refunded") => format!(
                    "A ticket of your booking {} was refunded",
                    booking.reference
                ),
                _ => format!(
                    "A ticket of your booking {} was cancelled",
                    booking.reference
                ),
            },
            "payment_returned" => format!(
                "Your payment for {} is being refunded ({})",
                event.title, booking.reference
            ),
            _ => format!("Your payment for {} came too late", event.title),
        };
        let (name, email) = match &attendee {
            // A cancelled ticket is the buyer's business (they paid for it).
            Some(_) if row.kind == "ticket_cancelled" => {
                (booking.buyer_name.clone(), booking.buyer_email.clone())
            }
            Some(a) if !a.email.is_empty() => (a.name.clone(), a.email.clone()),
            Some(a) => (a.name.clone(), booking.buyer_email.clone()),
            None => (booking.buyer_name.clone(), booking.buyer_email.clone()),
        };
        let to = recipient(name, &email)?;
        let ics = (row.kind == "confirmation").then(|| {
            let host = self.base_url.split("://").nth(1).unwrap_or("tickets");
            ticketing_core::ics::calendar(
                &ticketing_core::ics::CalendarEvent {
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
            pdf,
            inline,
        })
    }

    /// The text and HTML parts of a mail of `kind` (`<kind>_text.tera`, `<kind>_html.tera`).
    fn render_parts(&self, kind: &str, ctx: &tera::Context) -> Result<(String, String), String> {
        let part = |ext: &str| {
            self.tera
                .render(&format!("{kind}_{ext}.tera"), ctx)
                .map_err(|e| format!("{e:?}"))
        };
        Ok((part("text")?, part("html")?))
    }

    /// The organiser and the legal pages' links every mail's footer shows.
    fn footer_context(
        &self,
        conn: &mut PgConnection,
    ) -> Result<(Option<serde_json::Value>, Vec<serde_json::Value>), String> {
        let organiser = match ticketing_db::models::Organiser::get(conn) {
            Ok(o) => Some(json!({
                "name": o.name,
                "address": o.address,
                "contact_email": o.contact_email,
                "phone": o.phone,
            })),
            Err(diesel::NotFound) => None,
            Err(e) => return Err(e.to_string()),
        };
        let legal: Vec<_> = ticketing_db::models::LegalPage::all(conn)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|p| json!({ "title": p.title, "url": format!("{}/legal/{}", self.base_url, p.slug) }))
            .collect();
        Ok((organiser, legal))
    }

    /// A staff account's invite or password-reset mail, with the one-time link the outbox
    /// row carries (`ticketing_domain::accounts`). Once sent, the token is gone from the
    /// row, so the mail cannot be rendered again: the account gets a new link instead.
    fn render_account(
        &self,
        conn: &mut PgConnection,
        row: &OutboxRow,
        user_id: i64,
    ) -> Result<Rendered, String> {
        use ticketing_db::schema::users;
        let secret: Option<String> = outbox::table
            .find(row.id)
            .select(outbox::secret)
            .first(conn)
            .map_err(|e| e.to_string())?;
        let token = secret.ok_or(
            "this account link was sent already and is not kept: send a new one from Users",
        )?;
        let (email, name): (String, String) = users::table
            .find(user_id)
            .select((users::email, users::name))
            .first(conn)
            .map_err(|e| e.to_string())?;
        let (organiser, legal) = self.footer_context(conn)?;
        let (subject, valid_for) = match row.kind.as_str() {
            "account_invite" => (format!("Your account at {}", self.site_name), "7 days"),
            _ => (
                format!("Reset your password at {}", self.site_name),
                "1 hour",
            ),
        };
        let ctx = json!({
            "site_name": self.site_name,
            "organiser": organiser,
            "legal": legal,
            "name": name,
            "email": email,
            "url": format!("{}/admin/set-password/{token}", self.base_url),
            "valid_for": valid_for,
        });
        let ctx = tera::Context::from_value(ctx).map_err(|e| e.to_string())?;
        let (text, html) = self.render_parts(&row.kind, &ctx)?;
        let to = recipient(name, &email)?;
        Ok(Rendered {
            to,
            subject,
            text,
            html,
            ics: None,
            pdf: None,
            inline: Vec::new(),
        })
    }
}
