//! Demo data for local work and benchmarks: public, private, free, nearly sold-out and
//! not-yet-on-sale events with several ticket types in three time zones, a draft, and an
//! admin account. Safe to run again: what exists already is left as it is.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use crate::models::{Event, NewEvent, NewTicketType, NewUser, Role, TicketType, User};

/// What a seed run did, for printing.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub events_created: Vec<String>,
    pub events_existing: Vec<String>,
    pub private_links: Vec<(String, String)>,
    pub admin_email: String,
    /// Set only when the admin account was created by this run.
    pub admin_password: Option<String>,
}

struct DemoType {
    name: &'static str,
    description: &'static str,
    price_minor: i64,
    capacity: i32,
    max_per_booking: i32,
    opens_in_days: Option<i64>,
}

struct DemoEvent {
    slug: &'static str,
    title: &'static str,
    description: &'static str,
    venue: &'static str,
    timezone: &'static str,
    days_ahead: i64,
    local_start: (u32, u32),
    hours: i64,
    capacity: i32,
    visibility: &'static str,
    currency: &'static str,
    waiver: Option<&'static str>,
    types: Vec<DemoType>,
}

fn demo_events() -> Vec<DemoEvent> {
    let t = |name, description, price_minor, capacity, max_per_booking| DemoType {
        name,
        description,
        price_minor,
        capacity,
        max_per_booking,
        opens_in_days: None,
    };
    vec![
        DemoEvent {
            slug: "midwinter-jazz-night",
            title: "Midwinter Jazz Night",
            description: "An evening of standards and new work from the Lena Roth Quartet, with a guest set by the Kreuzberg Big Band.\n\nDoors open an hour before the first set. The bar serves food until 21:00.",
            venue: "Kesselhaus, Berlin",
            timezone: "Europe/Berlin",
            days_ahead: 14,
            local_start: (19, 30),
            hours: 3,
            capacity: 220,
            visibility: "public",
            currency: "EUR",
            waiver: None,
            types: vec![
                t("Standing", "General admission, standing.", 2500, 150, 8),
                t("Seated", "Reserved seating on the balcony.", 4500, 60, 6),
                t("Front row", "First row, with a signed LP.", 9000, 10, 2),
            ],
        },
        DemoEvent {
            slug: "rust-meetup-async-in-practice",
            title: "Rust Meetup: Async in Practice",
            description: "Three short talks on running async Rust in production, then pizza and conversation.\n\nFree, but please book so we know how many to expect.",
            venue: "Civic Hall, 124 East 14th Street, New York",
            timezone: "America/New_York",
            days_ahead: 7,
            local_start: (18, 0),
            hours: 3,
            capacity: 80,
            visibility: "public",
            currency: "USD",
            waiver: None,
            types: vec![t("Free admission", "", 0, 80, 2)],
        },
        DemoEvent {
            slug: "sunrise-trail-run-10k",
            title: "Sunrise Trail Run 10K",
            description: "A 10 km trail run through the Grunewald, starting at sunrise. Timing chips, water stations and breakfast at the finish.\n\nEvery runner signs a waiver before the start.",
            venue: "Grunewald, Berlin (start at S-Bahn Grunewald)",
            timezone: "Europe/Berlin",
            days_ahead: 21,
            local_start: (7, 30),
            hours: 3,
            capacity: 300,
            visibility: "public",
            currency: "EUR",
            waiver: Some("I take part in the Sunrise Trail Run at my own risk. I confirm that I am fit to run 10 km on uneven ground, that I will follow the marshals' instructions, and that the organisers are not liable for injury or loss except where the law does not allow this to be excluded."),
            types: vec![
                t("Runner", "Includes timing chip and breakfast.", 3000, 250, 4),
                DemoType { opens_in_days: Some(5), ..t("Late entry", "Opens five days from now.", 3500, 50, 4) },
            ],
        },
        DemoEvent {
            slug: "chefs-table-tasting-dinner",
            title: "Chef's Table Tasting Dinner",
            description: "Seven courses at the kitchen counter, cooked in front of you. Only a handful of seats.",
            venue: "Atelier Nord, Hamburg",
            timezone: "Europe/Berlin",
            days_ahead: 10,
            local_start: (19, 0),
            hours: 4,
            capacity: 3,
            visibility: "public",
            currency: "EUR",
            waiver: None,
            types: vec![t("Tasting menu", "Wine pairing included.", 14500, 3, 2)],
        },
        DemoEvent {
            slug: "tokyo-night-market-walk",
            title: "Tokyo Night Market Walk",
            description: "A guided walk through Ameyoko and the back streets of Ueno, tasting as we go.",
            venue: "Ueno Station, Park Exit, Tokyo",
            timezone: "Asia/Tokyo",
            days_ahead: 30,
            local_start: (18, 30),
            hours: 3,
            capacity: 24,
            visibility: "public",
            currency: "JPY",
            waiver: None,
            types: vec![t("Walk with tastings", "", 3500, 24, 4)],
        },
        DemoEvent {
            slug: "founders-private-dinner",
            title: "Founders' Private Dinner",
            description: "An invitation-only dinner for the founding members. Please do not share this link.",
            venue: "The Library Room, Brooklyn",
            timezone: "America/New_York",
            days_ahead: 12,
            local_start: (19, 30),
            hours: 3,
            capacity: 40,
            visibility: "private",
            currency: "USD",
            waiver: None,
            types: vec![t("Dinner seat", "", 8500, 40, 2)],
        },
        DemoEvent {
            slug: "spring-gala-draft",
            title: "Spring Gala (draft)",
            description: "Not announced yet.",
            venue: "To be confirmed",
            timezone: "Europe/Berlin",
            days_ahead: 120,
            local_start: (20, 0),
            hours: 5,
            capacity: 500,
            visibility: "draft",
            currency: "EUR",
            waiver: None,
            types: vec![t("Gala ticket", "", 12000, 500, 4)],
        },
    ]
}

/// `days` from today at `hh:mm` local time in `tz`, as UTC.
fn local_start(tz: Tz, days: i64, (hh, mm): (u32, u32)) -> DateTime<Utc> {
    let date = (Utc::now().with_timezone(&tz) + Duration::days(days)).date_naive();
    let naive = date.and_time(NaiveTime::from_hms_opt(hh, mm, 0).expect("valid demo time"));
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap_or_else(|| Utc.from_utc_datetime(&naive).with_timezone(&tz))
        .with_timezone(&Utc)
}

/// Fills the database with demo data; leaves anything that exists alone.
pub fn run(conn: &mut PgConnection, base_url: &str) -> QueryResult<SeedReport> {
    conn.transaction(|conn| {
        let mut report = SeedReport {
            admin_email: "admin@example.com".into(),
            ..SeedReport::default()
        };
        for demo in demo_events() {
            let existing = Event::find_by_slug(conn, demo.slug).optional()?;
            let event = match existing {
                Some(event) => {
                    report.events_existing.push(demo.slug.into());
                    event
                }
                None => {
                    let tz: Tz = demo.timezone.parse().expect("demo zones are valid");
                    let starts_at = local_start(tz, demo.days_ahead, demo.local_start);
                    let event = Event::insert(
                        conn,
                        &NewEvent {
                            slug: demo.slug.into(),
                            title: demo.title.into(),
                            description: demo.description.into(),
                            venue: demo.venue.into(),
                            timezone: demo.timezone.into(),
                            starts_at,
                            ends_at: starts_at + Duration::hours(demo.hours),
                            capacity: demo.capacity,
                            visibility: demo.visibility.into(),
                            private_token: (demo.visibility == "private")
                                .then(crate::tokens::private_event_token),
                            waiver_required: demo.waiver.is_some(),
                            waiver_text: demo.waiver.unwrap_or_default().into(),
                        },
                    )?;
                    // issue 16: the event's currency first; its ticket types must match it.
                    Event::set_currency(conn, event.id, demo.currency)?;
                    for (position, ty) in demo.types.iter().enumerate() {
                        TicketType::insert(
                            conn,
                            &NewTicketType {
                                event_id: event.id,
                                name: ty.name.into(),
                                description: ty.description.into(),
                                price_minor: ty.price_minor,
                                currency: demo.currency.into(),
                                capacity: ty.capacity,
                                sales_open_at: ty
                                    .opens_in_days
                                    .map(|d| Utc::now() + Duration::days(d)),
                                sales_close_at: Some(starts_at),
                                max_per_booking: ty.max_per_booking,
                                position: position as i32,
                            },
                        )?;
                    }
                    report.events_created.push(demo.slug.into());
                    event
                }
            };
            if let Some(token) = &event.private_token {
                report
                    .private_links
                    .push((event.title.clone(), format!("{base_url}/p/{token}")));
            }
        }
        if User::find_by_email(conn, &report.admin_email)?.is_none() {
            let password = crate::passwords::generate();
            User::insert(
                conn,
                &NewUser {
                    email: report.admin_email.clone(),
                    name: "Demo Admin".into(),
                    password_hash: crate::passwords::hash(&password),
                    role: Role::Admin.as_str().into(),
                },
            )?;
            report.admin_password = Some(password);
        }
        Ok(report)
    })
}
