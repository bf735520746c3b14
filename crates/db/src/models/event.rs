//! Events: what is on, where and when, how many seats, and who may see it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use crate::models::TicketType;
use crate::schema::{events, ticket_types};

/// Who can see an event: nobody but staff (`draft`), everyone (`public`), or whoever holds
/// the secret link (`private`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Draft,
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Draft => "draft",
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "draft" => Some(Visibility::Draft),
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub venue: String,
    // media (issue 15): see `EventPlace` and `EventImage`
    pub venue_address: String,
    pub venue_latitude: Option<f64>,
    pub venue_longitude: Option<f64>,
    pub image_hash: Option<String>,
    pub image_width: Option<i32>,
    pub image_height: Option<i32>,
    pub image_format: Option<String>,
    pub image_alt: String,
    pub timezone: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub seats_taken: i32,
    pub visibility: String,
    pub private_token: Option<String>,
    pub waiver_required: bool,
    pub waiver_text: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The currency of every price of the event (issue 16): one of
    /// `ticketing_core::money::PAYPAL_CURRENCIES`; its ticket types follow it.
    pub currency: String,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent {
    pub slug: String,
    pub title: String,
    pub description: String,
    pub venue: String,
    pub timezone: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub visibility: String,
    pub private_token: Option<String>,
    pub waiver_required: bool,
    pub waiver_text: String,
}

// media (issue 15): the venue's address and the event's image, set apart from `NewEvent`
// so the code that makes events without them stays as it is.

/// Where the venue is: its postal address (several lines) and, optionally, its
/// coordinates (both or neither; the database checks the ranges too).
#[derive(Debug, Clone, Default, PartialEq, AsChangeset)]
#[diesel(table_name = events, treat_none_as_null = true)]
pub struct EventPlace {
    pub venue_address: String,
    pub venue_latitude: Option<f64>,
    pub venue_longitude: Option<f64>,
}

/// The image an event shows (a stored [`crate::models::MediaImage`]) and its alt text, or
/// none ([`EventImage::none`]).
#[derive(Debug, Clone, Default, PartialEq, AsChangeset)]
#[diesel(table_name = events, treat_none_as_null = true)]
pub struct EventImage {
    pub image_hash: Option<String>,
    pub image_width: Option<i32>,
    pub image_height: Option<i32>,
    pub image_format: Option<String>,
    pub image_alt: String,
}

impl EventImage {
    pub fn none() -> EventImage {
        EventImage::default()
    }

    /// `image` with `alt` (which must not be blank: the database refuses it).
    pub fn of(image: &crate::models::media::EncodedImage, alt: &str) -> EventImage {
        let (w, h) = image.size();
        EventImage {
            image_hash: Some(image.hash.clone()),
            image_width: i32::try_from(w).ok(),
            image_height: i32::try_from(h).ok(),
            image_format: Some(image.format.as_str().to_string()),
            image_alt: alt.to_string(),
        }
    }
}

/// Which event [`Event::with_ticket_types`] loads, and who may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLookup<'a> {
    /// Any event, whatever its visibility (staff pages, and a hold, which checks the
    /// visibility itself).
    Id(i64),
    /// A public event by its slug.
    PublicSlug(&'a str),
    /// A private event by its secret token.
    PrivateToken(&'a str),
}

impl Event {
    pub fn visibility(&self) -> Visibility {
        Visibility::parse(&self.visibility).unwrap_or(Visibility::Draft)
    }

    /// The event's time zone; UTC if the stored name is somehow unknown.
    pub fn tz(&self) -> Tz {
        ticketing_core::timefmt::parse_tz(&self.timezone).unwrap_or(Tz::UTC)
    }

    pub fn seats_left(&self) -> i32 {
        (self.capacity - self.seats_taken).max(0)
    }

    pub fn has_ended(&self, now: DateTime<Utc>) -> bool {
        self.ends_at <= now
    }

    pub fn place(&self) -> EventPlace {
        EventPlace {
            venue_address: self.venue_address.clone(),
            venue_latitude: self.venue_latitude,
            venue_longitude: self.venue_longitude,
        }
    }

    pub fn image(&self) -> EventImage {
        EventImage {
            image_hash: self.image_hash.clone(),
            image_width: self.image_width,
            image_height: self.image_height,
            image_format: self.image_format.clone(),
            image_alt: self.image_alt.clone(),
        }
    }
}

/// Database methods.
impl Event {
    pub fn insert(conn: &mut PgConnection, new: &NewEvent) -> QueryResult<Event> {
        diesel::insert_into(events::table)
            .values(new)
            .returning(Event::as_returning())
            .get_result(conn)
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Event> {
        events::table
            .find(id)
            .select(Event::as_select())
            .first(conn)
    }

    pub fn find_by_slug(conn: &mut PgConnection, slug: &str) -> QueryResult<Event> {
        events::table
            .filter(events::slug.eq(slug))
            .select(Event::as_select())
            .first(conn)
    }

    /// A public event by its slug; drafts and private events are `NotFound`.
    pub fn find_public_by_slug(conn: &mut PgConnection, slug: &str) -> QueryResult<Event> {
        events::table
            .filter(events::slug.eq(slug))
            .filter(events::visibility.eq(Visibility::Public.as_str()))
            .select(Event::as_select())
            .first(conn)
    }

    /// An event and its ticket types (by position, then id) in one round trip: the one
    /// query behind the event pages, the checkout and the admin event page. `lookup` says
    /// which event and who may see it; a draft, a wrong slug or a wrong token is `NotFound`.
    /// A private event's token column is unique and indexed, so a right and a wrong token
    /// cost the same single index probe.
    pub fn with_ticket_types(
        conn: &mut PgConnection,
        lookup: EventLookup<'_>,
    ) -> QueryResult<(Event, Vec<TicketType>)> {
        let query = events::table.left_join(ticket_types::table).into_boxed();
        let query = match lookup {
            EventLookup::Id(id) => query.filter(events::id.eq(id)),
            EventLookup::PublicSlug(slug) => query
                .filter(events::slug.eq(slug))
                .filter(events::visibility.eq(Visibility::Public.as_str())),
            EventLookup::PrivateToken(token) => query
                .filter(events::private_token.eq(token))
                .filter(events::visibility.eq(Visibility::Private.as_str())),
        };
        let rows = query
            .order((ticket_types::position.asc(), ticket_types::id.asc()))
            .select((Event::as_select(), Option::<TicketType>::as_select()))
            .load::<(Event, Option<TicketType>)>(conn)?;
        with_types(rows)
    }

    /// Public events that have not ended yet, soonest first, one page of them, plus the
    /// total number of such events.
    pub fn list_upcoming_public(
        conn: &mut PgConnection,
        now: DateTime<Utc>,
        limit: i64,
        offset: i64,
    ) -> QueryResult<(Vec<Event>, i64)> {
        let base = events::table
            .filter(events::visibility.eq(Visibility::Public.as_str()))
            .filter(events::ends_at.gt(now));
        let total = base.count().get_result(conn)?;
        let page = base
            .order((events::starts_at.asc(), events::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Event::as_select())
            .load(conn)?;
        Ok((page, total))
    }

    /// Every public event that has not ended (for the sitemap).
    pub fn all_upcoming_public(
        conn: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> QueryResult<Vec<(String, DateTime<Utc>)>> {
        events::table
            .filter(events::visibility.eq(Visibility::Public.as_str()))
            .filter(events::ends_at.gt(now))
            .order((events::starts_at.asc(), events::id.asc()))
            .select((events::slug, events::updated_at))
            .load(conn)
    }

    /// Sets the event's currency (issue 16); the database carries it to the event's ticket
    /// types (foreign key on `(event_id, currency)` with ON UPDATE CASCADE).
    pub fn set_currency(conn: &mut PgConnection, id: i64, currency: &str) -> QueryResult<()> {
        diesel::update(events::table.find(id))
            .set((
                events::currency.eq(currency),
                events::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Sets the venue's address and coordinates.
    pub fn set_place(conn: &mut PgConnection, id: i64, place: &EventPlace) -> QueryResult<()> {
        diesel::update(events::table.find(id))
            .set((place, events::updated_at.eq(diesel::dsl::now)))
            .execute(conn)
            .map(|_| ())
    }

    /// Sets (or with [`EventImage::none`] removes) the event's image; an image no event shows
    /// any more is deleted with its variants.
    pub fn set_image(conn: &mut PgConnection, id: i64, image: &EventImage) -> QueryResult<()> {
        let before: Option<String> = events::table
            .find(id)
            .select(events::image_hash)
            .first(conn)?;
        diesel::update(events::table.find(id))
            .set((image, events::updated_at.eq(diesel::dsl::now)))
            .execute(conn)?;
        if let Some(old) = before.filter(|old| image.image_hash.as_ref() != Some(old)) {
            crate::models::MediaImage::delete_if_unused(conn, &old)?;
        }
        Ok(())
    }

    /// Gives the event a new secret link; the old one stops working with this commit.
    pub fn rotate_private_token(conn: &mut PgConnection, id: i64) -> QueryResult<String> {
        let token = ticketing_core::tokens::private_event_token();
        diesel::update(events::table.find(id))
            .set((
                events::private_token.eq(Some(&token)),
                events::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        Ok(token)
    }
}

/// Folds left-join rows (one per ticket type) into the event and its types.
fn with_types(rows: Vec<(Event, Option<TicketType>)>) -> QueryResult<(Event, Vec<TicketType>)> {
    let mut rows = rows.into_iter();
    let (event, first) = rows.next().ok_or(diesel::result::Error::NotFound)?;
    let types = first
        .into_iter()
        .chain(rows.filter_map(|(_, t)| t))
        .collect();
    Ok((event, types))
}
