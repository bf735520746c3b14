//! Serializable view models for templates: events and ticket types as a buyer sees them,
//! with prices formatted and times shown in the event's own time zone; and the one reading
//! of a `page=` parameter every paginated list uses ([`page_number`], [`page_offset`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::models::ticket_type::SaleState;
use crate::models::{Event, TicketType};
use crate::timefmt;

/// The highest page number any list shows; larger numbers are read as this one.
pub const MAX_PAGE: i64 = 100_000;

/// A `page=` parameter as a page number from 1 to [`MAX_PAGE`]: missing, zero, negative and
/// huge values are clamped, so no page number can overflow an offset or reach the database
/// as a negative OFFSET (tests `page_numbers_are_clamped` and
/// `hardening::page_numbers_never_fail`).
pub fn page_number(page: Option<i64>) -> i64 {
    page.unwrap_or(1).clamp(1, MAX_PAGE)
}

/// The OFFSET of page `page` (1-based) of `per_page` rows; never negative, never overflows.
pub fn page_offset(page: i64, per_page: i64) -> i64 {
    page.clamp(1, MAX_PAGE)
        .saturating_sub(1)
        .saturating_mul(per_page.max(0))
}

/// An event in the listing.
#[derive(Debug, Serialize)]
pub struct EventCard {
    pub url: String,
    pub title: String,
    pub venue: String,
    pub when: String,
    pub month: String,
    pub day: String,
    /// What can be bought, in words (test `public::the_listing_says_what_can_be_bought`).
    pub sale: String,
    /// True when nothing can be bought now (the label is shown as a badge).
    pub unavailable: bool,
    pub seats_left: i32,
    pub sold_out: bool,
    /// media (issue 15): the event's image, small.
    pub image: Option<EventImageView>,
}

/// The listing's words for an event's ticket types at `now`: "Free", "€30.00", "from
/// €12.00" while some are on sale; otherwise "Sold out", "On sale from <date>" (the
/// earliest opening, in the event's zone) or "Sales closed".
pub fn sale_label(
    event: &Event,
    types: &[TicketType],
    now: chrono::DateTime<chrono::Utc>,
) -> (String, bool) {
    use ticketing_db::models::ticket_type::SaleState;
    let left = event.seats_left();
    let on_sale: Vec<&TicketType> = types
        .iter()
        .filter(|t| t.sale_state(now, left) == SaleState::OnSale)
        .collect();
    if let (Some(min), Some(max)) = (
        on_sale.iter().min_by_key(|t| t.price_minor),
        on_sale.iter().max_by_key(|t| t.price_minor),
    ) {
        let label = if max.price_minor == 0 {
            "Free".to_string()
        } else if min.price_minor == max.price_minor {
            min.price().display()
        } else if min.price_minor == 0 {
            format!("Free, or up to {}", max.price().display())
        } else {
            format!("from {}", min.price().display())
        };
        return (label, false);
    }
    let opening = types
        .iter()
        .filter(|t| t.sale_state(now, left) == SaleState::NotYetOnSale)
        .filter_map(|t| t.sales_open_at)
        .min();
    let label = if types.is_empty() {
        String::new()
    } else if let Some(at) = opening {
        format!("On sale from {}", timefmt::local_datetime(at, event.tz()))
    } else if left == 0
        || types
            .iter()
            .any(|t| t.sale_state(now, left) == SaleState::SoldOut)
    {
        "Sold out".to_string()
    } else {
        "Sales closed".to_string()
    };
    (label, true)
}

impl EventCard {
    pub fn new(event: &Event, types: &[TicketType]) -> EventCard {
        let tz = event.tz();
        let local = event.starts_at.with_timezone(&tz);
        let (sale, unavailable) = sale_label(event, types, chrono::Utc::now());
        EventCard {
            url: format!("/events/{}", event.slug),
            title: event.title.clone(),
            venue: event.venue.clone(),
            when: timefmt::local_range(event.starts_at, event.ends_at, tz),
            month: local.format("%b").to_string(),
            day: local.format("%-d").to_string(),
            sale,
            unavailable,
            seats_left: event.seats_left(),
            sold_out: event.seats_left() == 0,
            image: EventImageView::of(event),
        }
    }
}

/// One ticket type on an event page.
#[derive(Debug, Serialize)]
pub struct TicketTypeView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: String,
    pub price_minor: i64,
    pub currency: String,
    pub seats_left: i32,
    pub state: &'static str,
    pub max_per_booking: i32,
    /// Most a buyer can pick now: the per-booking maximum, capped by the seats left.
    pub max_choice: i32,
    pub opens_at: Option<String>,
    pub closes_at: Option<String>,
}

/// An event page.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description_paragraphs: Vec<String>,
    pub venue: String,
    pub timezone: String,
    pub when: String,
    pub starts_at_utc: String,
    pub ends_at_utc: String,
    pub capacity: i32,
    pub seats_left: i32,
    pub sold_out: bool,
    pub ended: bool,
    pub on_sale: bool,
    pub waiver_required: bool,
    pub ticket_types: Vec<TicketTypeView>,
    /// media (issue 15): the venue's address by line, its map link, the image.
    pub venue_address_lines: Vec<String>,
    pub map_url: Option<String>,
    pub image: Option<EventImageView>,
}

impl EventView {
    pub fn new(event: &Event, types: &[TicketType], now: DateTime<Utc>) -> EventView {
        let tz = event.tz();
        let event_left = event.seats_left();
        let ended = event.has_ended(now);
        let ticket_types: Vec<TicketTypeView> = types
            .iter()
            .map(|t| {
                let state = if ended {
                    SaleState::SalesClosed
                } else {
                    t.sale_state(now, event_left)
                };
                let seats_left = t.seats_left(event_left);
                TicketTypeView {
                    id: t.id,
                    name: t.name.clone(),
                    description: t.description.clone(),
                    price: t.price().display(),
                    price_minor: t.price_minor,
                    currency: t.currency.clone(),
                    seats_left,
                    state: state.as_str(),
                    max_per_booking: t.max_per_booking,
                    max_choice: t.max_per_booking.min(seats_left),
                    opens_at: t.sales_open_at.map(|at| timefmt::local_datetime(at, tz)),
                    closes_at: t.sales_close_at.map(|at| timefmt::local_datetime(at, tz)),
                }
            })
            .collect();
        let on_sale = ticket_types.iter().any(|t| t.state == "on_sale");
        EventView {
            id: event.id,
            slug: event.slug.clone(),
            title: event.title.clone(),
            description_paragraphs: paragraphs(&event.description),
            venue: event.venue.clone(),
            timezone: event.timezone.clone(),
            when: timefmt::local_range(event.starts_at, event.ends_at, tz),
            starts_at_utc: event.starts_at.to_rfc3339(),
            ends_at_utc: event.ends_at.to_rfc3339(),
            capacity: event.capacity,
            seats_left: event_left,
            sold_out: event_left == 0
                || (!ticket_types.is_empty() && ticket_types.iter().all(|t| t.state == "sold_out")),
            ended,
            on_sale,
            waiver_required: event.waiver_required,
            ticket_types,
            venue_address_lines: address_lines(&event.venue_address),
            map_url: map_url(event),
            image: EventImageView::of(event),
        }
    }
}

// media (issue 15) ---------------------------------------------------------------------

/// An event's image as pages show it: `srcset` of every stored variant, the widest as the
/// intrinsic size (so the page keeps its place before the image arrives), and the
/// narrowest for thumbnails.
#[derive(Debug, Clone, Serialize)]
pub struct EventImageView {
    pub src: String,
    pub srcset: String,
    pub width: u32,
    pub height: u32,
    pub alt: String,
    pub thumb_src: String,
    pub thumb_width: u32,
    pub thumb_height: u32,
}

impl EventImageView {
    pub fn of(event: &Event) -> Option<EventImageView> {
        use crate::models::media::{variant_path, variant_sizes, MediaFormat};
        let hash = event.image_hash.as_deref()?;
        let format = MediaFormat::parse(event.image_format.as_deref()?)?;
        let width = u32::try_from(event.image_width?).ok()?;
        let height = u32::try_from(event.image_height?).ok()?;
        let sizes = variant_sizes(width, height);
        let srcset = sizes
            .iter()
            .map(|&(w, _)| format!("{} {w}w", variant_path(hash, w, format)))
            .collect::<Vec<_>>()
            .join(", ");
        // The fallback for browsers without srcset: the widest up to 960 pixels.
        let &(src_w, _) = sizes
            .iter()
            .rev()
            .find(|&&(w, _)| w <= 960)
            .unwrap_or(&sizes[0]);
        let (thumb_width, thumb_height) = sizes[0];
        Some(EventImageView {
            src: variant_path(hash, src_w, format),
            srcset,
            width,
            height,
            alt: event.image_alt.clone(),
            thumb_src: variant_path(hash, thumb_width, format),
            thumb_width,
            thumb_height,
        })
    }
}

/// A multi-line address as its non-empty lines, trimmed.
pub fn address_lines(address: &str) -> Vec<String> {
    address
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// "Open in OpenStreetMap": the venue's coordinates with a marker when they are set, else a
/// search for its address (or, without one, its name); `None` with neither. Built with
/// `url`, so any character of an address is encoded (test
/// `media::the_map_link_is_built_from_coordinates_or_the_address`).
pub fn map_url(event: &Event) -> Option<String> {
    let mut url = url::Url::parse("https://www.openstreetmap.org/").ok()?;
    if let (Some(lat), Some(lon)) = (event.venue_latitude, event.venue_longitude) {
        url.query_pairs_mut()
            .append_pair("mlat", &lat.to_string())
            .append_pair("mlon", &lon.to_string());
        url.set_fragment(Some(&format!("map=17/{lat}/{lon}")));
        return Some(url.into());
    }
    let lines = address_lines(&event.venue_address);
    let query = if lines.is_empty() {
        event.venue.trim().to_string()
    } else {
        lines.join(", ")
    };
    if query.is_empty() {
        return None;
    }
    url.set_path("/search");
    url.query_pairs_mut().append_pair("query", &query);
    Some(url.into())
}

// ----------------------------------------------------------------------- end of media

/// Splits plain text into paragraphs at blank lines (templates escape each one).
pub fn paragraphs(text: &str) -> Vec<String> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod page_tests {
    use super::*;

    #[test]
    fn page_numbers_are_clamped() {
        assert_eq!(page_number(None), 1);
        assert_eq!(page_number(Some(0)), 1);
        assert_eq!(page_number(Some(-5)), 1);
        assert_eq!(page_number(Some(i64::MIN)), 1);
        assert_eq!(page_number(Some(7)), 7);
        assert_eq!(page_number(Some(i64::MAX)), MAX_PAGE);
        assert_eq!(page_offset(1, 25), 0);
        assert_eq!(page_offset(3, 25), 50);
        assert_eq!(page_offset(i64::MAX, i64::MAX), i64::MAX);
        assert_eq!(page_offset(i64::MIN, 25), 0);
    }
}

// issue 16 (admin lists) ---------------------------------------------------------------

/// A state as people read it: every booking, ticket, payment (PayPal order and capture),
/// refund, outbox and mail-kind value the site stores, in words ("Awaiting payment", not
/// `awaiting_payment`). Unknown values come back with underscores as spaces and the first
/// letter capitalised, so nothing shows as a raw code. Registered as the Tera filter
/// `state_label` ([`state_label_filter`]) for admin and customer pages.
pub fn state_label(state: &str) -> String {
    let known = match state {
        // bookings (SPEC §3)
        "held" => "Seats held",
        "awaiting_payment" => "Awaiting payment",
        "paid" => "Paid",
        "cancelled" => "Cancelled",
        "refunded" => "Refunded",
        "expired" => "Expired",
        "reversed" => "Payment reversed",
        // tickets (attendees)
        "valid" => "Valid",
        "checked_in" => "Checked in",
        // outbox
        "pending" => "Waiting to be sent",
        "sent" => "Sent",
        "failed" => "Failed",
        // mail kinds
        "confirmation" => "Booking confirmation",
        "waiver_request" => "Waiver request",
        "waiver_reminder" => "Waiver reminder",
        "refund" => "Refund notice",
        "partial_refund" => "Partial refund notice",
        "cancellation" => "Cancellation notice",
        "late_payment" => "Late payment notice",
        "payment_returned" => "Payment returned",
        "attendee_ticket" => "Attendee's ticket",
        "booking_links" => "Booking links",
        "ticket_cancelled" => "Ticket cancelled",
        "account_invite" => "Account invite",
        "password_reset" => "Password reset",
        // PayPal orders and captures, and refunds
        "CREATED" => "Order created",
        "SAVED" => "Order saved",
        "APPROVED" => "Approved by the buyer",
        "VOIDED" => "Voided",
        "PAYER_ACTION_REQUIRED" => "Buyer action needed",
        "COMPLETED" => "Completed",
        "PENDING" => "Pending at PayPal",
        "DECLINED" => "Declined",
        "DENIED" => "Denied",
        "PARTIALLY_REFUNDED" => "Partly refunded",
        "REFUNDED" => "Refunded",
        "REVERSED" => "Reversed",
        "FAILED" => "Failed",
        "CANCELLED" => "Cancelled",
        "REQUESTED" => "Refund requested",
        "REVIEW" => "Needs checking in PayPal",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let words = state.replace('_', " ").to_lowercase();
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The Tera filter `state_label`: `{{ b.state | state_label }}`.
pub fn state_label_filter(
    value: &rocket_dyn_templates::tera::Value,
    _: &std::collections::HashMap<String, rocket_dyn_templates::tera::Value>,
) -> rocket_dyn_templates::tera::Result<rocket_dyn_templates::tera::Value> {
    Ok(rocket_dyn_templates::tera::Value::String(state_label(
        value.as_str().unwrap_or_default(),
    )))
}

#[cfg(test)]
mod state_label_tests {
    use super::state_label;

    #[test]
    fn states_read_as_words() {
        assert_eq!(state_label("awaiting_payment"), "Awaiting payment");
        assert_eq!(state_label("paid"), "Paid");
        assert_eq!(state_label("REVIEW"), "Needs checking in PayPal");
        assert_eq!(state_label("pending"), "Waiting to be sent");
        assert_eq!(state_label("password_reset"), "Password reset");
        assert_eq!(state_label("some_new_STATE"), "Some new state");
        assert_eq!(state_label(""), "");
        for state in ticketing_db::models::BookingState::ALL {
            assert!(!state_label(state.as_str()).contains('_'));
        }
    }
}
