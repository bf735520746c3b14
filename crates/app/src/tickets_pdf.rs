//! Tickets as files: a PDF with one A4 page per attendee (event, date and time in the event's
//! zone, venue, attendee, ticket type, ticket code and its QR code drawn as vector squares),
//! and the same QR code as a small PNG for the inline image of a ticket mail. The QR payload
//! is the ticket code signed with the event's door key (`ticketing_domain::door`:
//! `CODE.<signature>`), which check-in verifies, offline too; the printed code is unchanged.
//!
//! Only a paid booking has tickets ([`booking_tickets`]); the booking page's download routes
//! and the mail sender both render from the booking as it is now (tests
//! `tickets_pdf::tests::*`, `it::tickets::*`).
//!
//! Text is set in PDF's built-in Helvetica (nothing to embed), which shows WinAnsi only:
//! other characters are transliterated (`Łukasz` → `Lukasz`, while `é` stays; test
//! `tickets_pdf::tests::names_outside_winansi_are_transliterated`).

use diesel::prelude::*;
use printpdf::{BuiltinFont, Color, Mm, PdfDocument, PdfLayerReference, Rect, Rgb};
use ticketing_core::timefmt;
use ticketing_db::models::{Booking, BookingState, Event, TicketType};

/// One ticket: what its page shows.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub event_title: String,
    pub when: String,
    pub venue: String,
    pub attendee_name: String,
    pub ticket_type: String,
    pub code: String,
    /// The QR payload: the code and its signature.
    pub qr: String,
    pub reference: String,
}

/// The tickets of `booking` (all, or the one whose code is `only`), in attendee order; empty
/// when the booking is not paid (held, unpaid, cancelled, refunded, reversed, expired) or no
/// attendee has that code.
pub fn booking_tickets(
    conn: &mut PgConnection,
    booking: &Booking,
    only: Option<&str>,
) -> QueryResult<Vec<Ticket>> {
    if booking.state() != BookingState::Paid {
        return Ok(Vec::new());
    }
    let event = Event::find(conn, booking.event_id)?;
    let types = TicketType::for_events(conn, &[event.id])?;
    let when = timefmt::local_range(event.starts_at, event.ends_at, event.tz());
    let key = ticketing_domain::door::key(conn, event.id)?;
    Ok(booking
        .attendees(conn)?
        .into_iter()
        .filter(|a| only.is_none_or(|code| a.ticket_code == code))
        // A ticket cancelled or refunded on its own is no ticket any more.
        .filter(|a| {
            ticketing_domain::bookings::usability(a, booking, booking.event_id)
                == ticketing_domain::bookings::Usability::Usable
        })
        .map(|a| Ticket {
            event_title: event.title.clone(),
            when: format!("{when} ({})", event.timezone),
            venue: event.venue.clone(),
            ticket_type: types
                .iter()
                .find(|t| t.id == a.ticket_type_id)
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            attendee_name: a.name,
            qr: key.payload(&a.ticket_code),
            code: a.ticket_code,
            reference: booking.reference.clone(),
        })
        .collect())
}

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN: f32 = 20.0;
const QR_SIZE: f32 = 80.0;

/// A PDF of `tickets`, one page each. `title` is the document's title.
pub fn render(title: &str, tickets: &[Ticket]) -> Result<Vec<u8>, String> {
    let (doc, first_page, first_layer) =
        PdfDocument::new(winansi(title), Mm(PAGE_W), Mm(PAGE_H), "ticket");
    let regular = doc
        .add_builtin_font(BuiltinFont::Helvetica)
        .map_err(|e| e.to_string())?;
    let bold = doc
        .add_builtin_font(BuiltinFont::HelveticaBold)
        .map_err(|e| e.to_string())?;
    for (i, t) in tickets.iter().enumerate() {
        let layer = if i == 0 {
            doc.get_page(first_page).get_layer(first_layer)
        } else {
            let (page, layer) = doc.add_page(Mm(PAGE_W), Mm(PAGE_H), "ticket");
            doc.get_page(page).get_layer(layer)
        };
        let mut y = PAGE_H - MARGIN - 8.0;
        for line in wrap(&winansi(&t.event_title), 40) {
            layer.use_text(line, 22.0, Mm(MARGIN), Mm(y), &bold);
            y -= 10.0;
        }
        y -= 2.0;
        for line in [&t.when, &t.venue] {
            for part in wrap(&winansi(line), 75) {
                layer.use_text(part, 12.0, Mm(MARGIN), Mm(y), &regular);
                y -= 6.5;
            }
        }
        y -= 8.0;
        for (label, value) in [
            ("Attendee", &t.attendee_name),
            ("Ticket", &t.ticket_type),
            ("Code", &t.code),
        ] {
            layer.use_text(label, 10.0, Mm(MARGIN), Mm(y), &regular);
            for part in wrap(&winansi(value), 50) {
                layer.use_text(part, 16.0, Mm(MARGIN + 25.0), Mm(y), &bold);
                y -= 8.0;
            }
        }
        y -= 4.0;
        draw_qr(&layer, &t.qr, MARGIN, y - QR_SIZE, QR_SIZE)?;
        y -= QR_SIZE + 10.0;
        layer.use_text(
            winansi(&format!(
                "Booking {} - show this page (printed or on a phone) at the entrance.",
                t.reference
            )),
            10.0,
            Mm(MARGIN),
            Mm(y),
            &regular,
        );
    }
    doc.save_to_bytes().map_err(|e| e.to_string())
}

/// The QR code of `code` as squares, one filled rectangle per horizontal run of dark modules,
/// inside a `size` mm square whose lower left corner is (`x`, `y`), quiet zone included.
fn draw_qr(layer: &PdfLayerReference, code: &str, x: f32, y: f32, size: f32) -> Result<(), String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| e.to_string())?;
    let width = qr.width();
    let colors = qr.to_colors();
    // Four modules of quiet zone on each side, as the standard asks.
    let module = size / (width as f32 + 8.0);
    layer.set_fill_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
    for row in 0..width {
        let mut col = 0;
        while col < width {
            if colors[row * width + col] != qrcode::Color::Dark {
                col += 1;
                continue;
            }
            let start = col;
            while col < width && colors[row * width + col] == qrcode::Color::Dark {
                col += 1;
            }
            let left = x + (start as f32 + 4.0) * module;
            let top = y + size - (row as f32 + 4.0) * module;
            layer.add_rect(Rect::new(
                Mm(left),
                Mm(top - module),
                Mm(left + (col - start) as f32 * module),
                Mm(top),
            ));
        }
    }
    Ok(())
}

/// The QR code of `code` as a black-and-white PNG, `scale` pixels a module, quiet zone
/// included: the inline image of a ticket mail (mail clients block SVG and data URIs).
pub fn qr_png(code: &str, scale: usize) -> Result<Vec<u8>, String> {
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| e.to_string())?;
    let width = qr.width();
    let colors = qr.to_colors();
    let side = (width + 8) * scale;
    let mut pixels = vec![255u8; side * side];
    for row in 0..width {
        for col in 0..width {
            if colors[row * width + col] == qrcode::Color::Dark {
                for dy in 0..scale {
                    let start = ((row + 4) * scale + dy) * side + (col + 4) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// `s` with every character that WinAnsi (Helvetica's encoding here) cannot show replaced
/// by its ASCII transliteration.
fn winansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for ch in s.chars() {
        let shown = ch == ' '
            || !printpdf::lopdf::Document::encode_text(
                Some("WinAnsiEncoding"),
                ch.encode_utf8(&mut buf),
            )
            .is_empty();
        if shown && !ch.is_control() {
            out.push(ch);
        } else if !ch.is_control() {
            out.push_str(deunicode::deunicode_char(ch).unwrap_or("?"));
        }
    }
    out
}

/// Splits `s` into lines of at most about `width` characters, at spaces where it can.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let mut word = word.to_string();
        while word.chars().count() > width {
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(head);
        }
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use printpdf::lopdf;

    fn ticket(name: &str, code: &str) -> Ticket {
        Ticket {
            event_title: "Winter Concert in the Old Town Hall".into(),
            when: "Sat 12 Dec 2026, 19:30 – 23:00 CET (Europe/Berlin)".into(),
            venue: "Old Town Hall, Main Square 1".into(),
            attendee_name: name.into(),
            ticket_type: "Standing".into(),
            code: code.into(),
            qr: format!("{code}.c2lnbmF0dXJl"),
            reference: "BK-7Q2X".into(),
        }
    }

    /// The text shown on each page: every `Tj` string, decoded with the fonts' encoding,
    /// which must be WinAnsi for every font (lopdf's `extract_text` misses printpdf's font
    /// resources and falls back to StandardEncoding, so it is not used here).
    fn page_texts(pdf: &[u8]) -> Vec<String> {
        let doc = lopdf::Document::load_mem(pdf).expect("the PDF parses");
        let fonts: Vec<_> = doc
            .objects
            .values()
            .filter_map(|o| o.as_dict().ok())
            .filter(|d| d.get(b"Type").and_then(|t| t.as_name()).ok() == Some(b"Font"))
            .collect();
        assert!(!fonts.is_empty());
        for font in fonts {
            assert_eq!(
                font.get(b"Encoding").unwrap().as_name().unwrap(),
                b"WinAnsiEncoding"
            );
        }
        doc.get_pages()
            .values()
            .map(|page| {
                let content =
                    lopdf::content::Content::decode(&doc.get_page_content(*page).unwrap()).unwrap();
                content
                    .operations
                    .iter()
                    .filter(|op| op.operator == "Tj")
                    .filter_map(|op| op.operands.first()?.as_str().ok())
                    .map(|bytes| lopdf::Document::decode_text(Some("WinAnsiEncoding"), bytes))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    }

    #[test]
    fn one_page_per_attendee_with_every_field() {
        let pdf = render(
            "Tickets BK-7Q2X",
            &[
                ticket("Zoë Müller", "TKT-AAAA-1111"),
                ticket("Ann Lee", "TKT-BBBB-2222"),
            ],
        )
        .unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let pages = page_texts(&pdf);
        assert_eq!(pages.len(), 2);
        for (page, (name, code)) in pages.iter().zip([
            ("Zoë Müller", "TKT-AAAA-1111"),
            ("Ann Lee", "TKT-BBBB-2222"),
        ]) {
            for field in [
                "Winter Concert in the Old",
                "Sat 12 Dec 2026, 19:30 – 23:00 CET (Europe/Berlin)",
                "Old Town Hall, Main Square 1",
                name,
                "Standing",
                code,
                "BK-7Q2X",
            ] {
                assert!(page.contains(field), "{field:?} missing from {page:?}");
            }
        }
        assert!(
            !pages[1].contains("Zoë"),
            "each page holds its own attendee"
        );
    }

    #[test]
    fn the_qr_code_is_drawn_as_squares() {
        let pdf = render("t", &[ticket("Ann", "TKT-AAAA-1111")]).unwrap();
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let page = *doc.get_pages().values().next().unwrap();
        let content =
            lopdf::content::Content::decode(&doc.get_page_content(page).unwrap()).unwrap();
        let rects = content
            .operations
            .iter()
            .filter(|op| op.operator == "re")
            .count();
        // A version-1 code has 21x21 modules; its dark runs are well over 50 rectangles.
        assert!(rects > 50, "only {rects} rectangles");
    }

    #[test]
    fn names_outside_winansi_are_transliterated() {
        assert_eq!(winansi("Łukasz Żółw"), "Lukasz Zólw");
        assert_eq!(winansi("Zoë – “Café”"), "Zoë – “Café”");
        let pdf = render("t", &[ticket("Łukasz", "TKT-1")]).unwrap();
        assert!(page_texts(&pdf)[0].contains("Lukasz"));
    }

    #[test]
    fn long_words_and_titles_wrap() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefgh", 3), vec!["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), vec![""]);
    }

    #[test]
    fn the_png_qr_is_a_png_of_the_right_size() {
        let png = qr_png("TKT-AAAA-1111", 4).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width % 4, 0);
    }
}
