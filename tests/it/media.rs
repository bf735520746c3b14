//! Event media (issue 15): the image an admin uploads on the event form (re-encoded into a
//! few widths without metadata, served at content-hashed URLs with a year-long cache, 404
//! for anything else; too big, not an image and decompression bombs refused next to the
//! field; alt text required; replace and remove audited), the venue's address and
//! coordinates with the OpenStreetMap link, and the organiser's contact on the event page.

use std::io::Cursor;

use diesel::prelude::*;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use ticketing::models::{Event, NewUser, User};
use ticketing::schema::{audit_log, events, media_images, media_variants};

use crate::helpers::{hidden_csrf, EventSpec, TestApp};

const BOUNDARY: &str = "----media-test-boundary-7MA4YWxkTrZu0gW";

/// A multipart body: text fields, then an optional file (field `image`).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((filename, content_type, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_type() -> ContentType {
    ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY))
}

/// Posts a multipart form; (status, Location, body).
async fn post_multipart(
    client: &Client,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, &[u8])>,
) -> (Status, Option<String>, String) {
    let res = client
        .post(path.to_string())
        .header(multipart_type())
        .body(multipart(fields, file))
        .dispatch()
        .await;
    let status = res.status();
    let location = res.headers().get_one("Location").map(str::to_string);
    (
        status,
        location,
        res.into_string().await.unwrap_or_default(),
    )
}

/// GET `path`: (status, body), with Tera's `&#x2F;` read back as `/` so URLs compare as a
/// browser reads them.
async fn get(client: &Client, path: &str) -> (Status, String) {
    let res = client.get(path.to_string()).dispatch().await;
    let status = res.status();
    let body = res.into_string().await.unwrap_or_default();
    (status, body.replace("&#x2F;", "/"))
}

/// Creates an admin and logs it in; returns the session's CSRF token.
async fn admin(app: &TestApp) -> String {
    User::insert(
        &mut app.conn(),
        &NewUser {
            email: "admin@example.com".into(),
            name: "Admin".into(),
            password_hash: ticketing::passwords::hash("correct horse battery"),
            role: "admin".into(),
        },
    )
    .unwrap();
    let (_, page) = get(&app.client, "/admin/login").await;
    let res = app
        .client
        .post("/admin/login")
        .header(ContentType::Form)
        .body(format!(
            "csrf={}&email=admin%40example.com&password=correct+horse+battery",
            hidden_csrf(&page)
        ))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let (_, page) = get(&app.client, "/admin/checkin").await;
    hidden_csrf(&page)
}

/// The fields of a valid event form (a draft in 2030: a new event has no ticket types, so
/// it cannot be public yet; see [`go_live`]), with `extra` added or replacing.
fn event_fields<'a>(csrf: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("csrf", csrf),
        ("title", "Photo Night"),
        ("slug", "photo-night"),
        ("venue", "Kulturhaus"),
        ("timezone", "Europe/Berlin"),
        ("starts_at", "2030-05-01T19:00"),
        ("ends_at", "2030-05-01T23:00"),
        ("capacity", "50"),
        ("visibility", "draft"),
        ("description", "Pictures."),
    ];
    for (k, v) in extra {
        fields.retain(|(name, _)| name != k);
        fields.push((k, v));
    }
    fields
}

fn png(img: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An opaque gradient, `w` × `h`.
fn photo(w: u32, h: u32) -> Vec<u8> {
    png(DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    })))
}

/// A JPEG `w` × `h` with an EXIF block (orientation 6: turn 90° clockwise to show it) and a
/// comment carrying a marker, both of which must not survive.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, _| {
        Rgb([if x < w / 2 { 255 } else { 0 }, 0, 0])
    }));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
    let jpeg = out.into_inner();
    // TIFF header (little-endian), one IFD entry: Orientation (0x0112), SHORT, 1, value 6.
    let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0".to_vec();
    tiff.extend_from_slice(b"GPS-SECRET-52.5163N");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    segment.extend_from_slice(&app1);
    let comment = b"COMMENT-SECRET";
    segment.extend_from_slice(&[0xFF, 0xFE]);
    segment.extend_from_slice(&((comment.len() + 2) as u16).to_be_bytes());
    segment.extend_from_slice(comment);
    let mut with = jpeg[..2].to_vec();
    with.extend_from_slice(&segment);
    with.extend_from_slice(&jpeg[2..]);
    with
}

/// A valid 1 × 1 PNG whose header then claims `w` × `h`: what a decompression bomb looks
/// like to a decoder before it allocates (CRC fixed so the header is well formed).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(DynamicImage::ImageLuma8(image::GrayImage::new(1, 1)));
    // signature (8), length (4), "IHDR" (4), then width and height.
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn media_rows(app: &TestApp) -> (i64, i64) {
    let mut conn = app.conn();
    (
        media_images::table.count().get_result(&mut conn).unwrap(),
        media_variants::table.count().get_result(&mut conn).unwrap(),
    )
}

/// Gives the event `slug` a ticket type and makes it `visibility` (public, or private with
/// a fresh link), as an admin would after adding the type (issue 16: no event goes live
/// without ticket types).
fn go_live(app: &TestApp, slug: &str, visibility: &str) -> Event {
    let mut conn = app.conn();
    let event = event_by_slug(app, slug);
    crate::helpers::add_ticket_type(&mut conn, &event, "Seat", 1000, 10);
    diesel::update(events::table.find(event.id))
        .set((
            events::visibility.eq(visibility),
            events::private_token
                .eq((visibility == "private").then(ticketing::tokens::private_event_token)),
        ))
        .execute(&mut conn)
        .unwrap();
    event_by_slug(app, slug)
}

fn event_by_slug(app: &TestApp, slug: &str) -> Event {
    Event::find_by_slug(&mut app.conn(), slug).unwrap()
}

/// Decodes a served variant.
fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("a served variant decodes")
}

#[rocket::async_test]
async fn variants_are_served_with_their_type_and_a_year_long_cache() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let upload = photo(2000, 1000);
    let (status, location, body) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "A hall full of people")]),
        Some(("hall.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    assert!(location.unwrap().starts_with("/admin/events/"));
    let event = event_by_slug(&app, "photo-night");
    let hash = event.image_hash.clone().expect("the event shows the image");
    assert_eq!(hash.len(), 32);
    assert_eq!(
        (event.image_width, event.image_height),
        (Some(1600), Some(800))
    );
    assert_eq!(event.image_format.as_deref(), Some("jpeg"));
    assert_eq!(event.image_alt, "A hall full of people");
    assert_eq!(media_rows(&app), (1, 3));

    for (w, h) in [(480, 240), (960, 480), (1600, 800)] {
        let res = app
            .client
            .get(format!("/media/{hash}-{w}.jpg"))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok, "{w}");
        assert_eq!(res.content_type(), Some(ContentType::JPEG));
        assert_eq!(
            res.headers().get_one("Cache-Control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(
            res.headers().get_one("X-Content-Type-Options"),
            Some("nosniff")
        );
        let bytes = res.into_bytes().await.unwrap();
        let img = decode(&bytes);
        assert_eq!((img.width(), img.height()), (w, h));
    }

    go_live(&app, "photo-night", "public");
    let (status, page) = get(&app.client, "/events/photo-night").await;
    assert_eq!(status, Status::Ok);
    let srcset = format!(
        "srcset=\"/media/{hash}-480.jpg 480w, /media/{hash}-960.jpg 960w, /media/{hash}-1600.jpg 1600w\""
    );
    assert!(page.contains(&srcset), "{page}");
    assert!(page.contains(&format!("src=\"/media/{hash}-960.jpg\"")));
    assert!(page.contains("sizes=\"(min-width: 980px) 948px, calc(100vw - 32px)\""));
    assert!(page.contains("width=\"1600\" height=\"800\" alt=\"A hall full of people\""));

    let (_, listing) = get(&app.client, "/").await;
    assert!(
        listing.contains(&format!(
            "class=\"card-thumb\" src=\"/media/{hash}-480.jpg\" width=\"480\" height=\"240\" alt=\"\""
        )),
        "{listing}"
    );
}

#[rocket::async_test]
async fn unknown_media_is_404() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let upload = photo(800, 600);
    let (status, _, body) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "Stage")]),
        Some(("s.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let hash = event_by_slug(&app, "photo-night").image_hash.unwrap();
    let (ok, _) = get(&app.client, &format!("/media/{hash}-800.jpg")).await;
    assert_eq!(ok, Status::Ok);
    let other = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/media/{other}-800.jpg"),
        format!("/media/{hash}-960.jpg"), // not a stored width (800 is the widest)
        format!("/media/{hash}-1600.jpg"), // never upscaled
        format!("/media/{hash}-800.png"), // stored as JPEG
        format!("/media/{hash}-0800.jpg"),
        format!("/media/{}-800.jpg", hash.to_uppercase()),
        format!("/media/{hash}.jpg"),
        format!("/media/{hash}-800.jpg/x"),
        "/media/".to_string(),
        "/media/..%2F..%2Fetc%2Fpasswd".to_string(),
    ] {
        let (status, body) = get(&app.client, &path).await;
        assert_eq!(status, Status::NotFound, "{path}");
        assert!(body.contains("<html"), "the site's 404 page for {path}");
    }
}

#[rocket::async_test]
async fn variants_are_never_upscaled_and_metadata_is_gone() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    // A small image: one variant, its own size.
    let small = photo(300, 200);
    let (status, _, body) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "Small")]),
        Some(("small.png", "image/png", &small)),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let e = event_by_slug(&app, "photo-night");
    let widths: Vec<i32> = media_variants::table
        .filter(media_variants::hash.eq(e.image_hash.as_ref().unwrap()))
        .select(media_variants::width)
        .order(media_variants::width)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(widths, vec![300]);

    // A JPEG from a phone held upright: EXIF says turn it, and carries a position.
    let jpeg = jpeg_with_exif(600, 300);
    let (status, _, body) = post_multipart(
        &app.client,
        &format!("/admin/events/{}", e.id),
        &event_fields(&csrf, &[("image_alt", "Upright")]),
        Some(("phone.jpg", "image/jpeg", &jpeg)),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let e = event_by_slug(&app, "photo-night");
    assert_eq!((e.image_width, e.image_height), (Some(300), Some(600)));
    let stored: Vec<Vec<u8>> = media_variants::table
        .filter(media_variants::hash.eq(e.image_hash.as_ref().unwrap()))
        .select(media_variants::bytes)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(stored.len(), 1);
    let bytes = &stored[0];
    for marker in [&b"Exif"[..], b"GPS-SECRET", b"COMMENT-SECRET"] {
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "{} survived",
            String::from_utf8_lossy(marker)
        );
    }
    let img = decode(bytes);
    assert_eq!((img.width(), img.height()), (300, 600));
    // Turned clockwise: the red left half is now the top half.
    let top = img.to_rgb8().get_pixel(150, 100).0;
    let bottom = img.to_rgb8().get_pixel(150, 500).0;
    assert!(
        top[0] > 200 && bottom[0] < 60,
        "top {top:?} bottom {bottom:?}"
    );
    // The replaced image was the only user of its rows: gone.
    assert_eq!(media_rows(&app), (1, 1));

    // Transparency is kept: PNG out.
    let logo = png(DynamicImage::ImageRgba8(RgbaImage::from_fn(
        500,
        500,
        |x, _| Rgba([0, 0, 0, if x < 250 { 0 } else { 255 }]),
    )));
    let (status, _, body) = post_multipart(
        &app.client,
        &format!("/admin/events/{}", e.id),
        &event_fields(&csrf, &[("image_alt", "Logo")]),
        Some(("logo.png", "image/png", &logo)),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let e = event_by_slug(&app, "photo-night");
    assert_eq!(e.image_format.as_deref(), Some("png"));
    let res = app
        .client
        .get(format!("/media/{}-480.png", e.image_hash.unwrap()))
        .dispatch()
        .await;
    assert_eq!(res.content_type(), Some(ContentType::PNG));
    let img = decode(&res.into_bytes().await.unwrap());
    assert_eq!(img.to_rgba8().get_pixel(10, 10).0[3], 0);
}

/// Posts a new event with `file` and checks it is refused with `message` next to the image
/// field, the typed input kept, and nothing stored.
async fn refused(app: &TestApp, csrf: &str, file: (&str, &str, &[u8]), message: &str) {
    let (status, _, page) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(
            csrf,
            &[
                ("image_alt", "Kept alt"),
                ("venue_address", "Hauptstraße 1"),
            ],
        ),
        Some(file),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity, "{}", file.0);
    assert!(
        page.contains(&format!(
            "<p class=\"field-error\" id=\"ev-image-error\">{message}"
        )),
        "{}: {page}",
        file.0
    );
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(page.contains("value=\"Photo Night\""), "title kept");
    assert!(page.contains("value=\"Kept alt\""), "alt kept");
    assert!(page.contains(">Hauptstraße 1</textarea>"), "address kept");
    let count: i64 = events::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(count, 0, "{}", file.0);
    assert_eq!(media_rows(app), (0, 0));
}

#[rocket::async_test]
async fn too_big_not_an_image_and_bombs_are_refused_next_to_the_field() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let mut big = photo(100, 100);
    big.resize(8 * 1024 * 1024 + 1, 0);
    refused(
        &app,
        &csrf,
        ("big.png", "image/png", &big),
        "The file is larger than 8 MiB.",
    )
    .await;
    refused(
        &app,
        &csrf,
        ("notes.png", "image/png", b"just some text, not a picture"),
        "This file is not a JPEG, PNG or WebP image",
    )
    .await;
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    refused(
        &app,
        &csrf,
        ("anim.gif", "image/gif", gif),
        "This file is not a JPEG, PNG or WebP image",
    )
    .await;
    // A PNG cut short after its header.
    let whole = photo(64, 64);
    refused(
        &app,
        &csrf,
        ("cut.png", "image/png", &whole[..60]),
        "This file is not a JPEG, PNG or WebP image",
    )
    .await;
    // Bombs: a side over the limit, and 49 megapixels within the side limit.
    for (w, h) in [(30_000, 30_000), (7_000, 7_000), (100_000, 1)] {
        refused(
            &app,
            &csrf,
            ("bomb.png", "image/png", &png_claiming(w, h)),
            "The image is too large: at most 8192 pixels on a side and 40 megapixels",
        )
        .await;
    }
}

#[rocket::async_test]
async fn a_file_far_over_the_limit_still_gets_its_message() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let mut huge = photo(100, 100);
    huge.resize(20 * 1024 * 1024, 7);
    refused(
        &app,
        &csrf,
        ("huge.png", "image/png", &huge),
        "The file is larger than 8 MiB.",
    )
    .await;
}

#[rocket::async_test]
async fn multipart_bodies_are_read_only_by_the_event_form() {
    let app = TestApp::spawn().await;
    let event = EventSpec::public("gig", 10).insert(&mut app.conn());
    let t = crate::helpers::add_ticket_type(&mut app.conn(), &event, "Standard", 0, 10);
    let qty = format!("qty[{}]", t.id);
    let id = event.id.to_string();
    let fields = [("event_id", id.as_str()), (qty.as_str(), "1")];
    // The hold form, url-encoded: taken.
    let res = app
        .client
        .post("/checkout/hold")
        .header(ContentType::Form)
        .body(format!("event_id={id}&qty%5B{}%5D=1", t.id))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    // The same fields as multipart: not read at all.
    let (status, _, _) = post_multipart(&app.client, "/checkout/hold", &fields, None).await;
    assert!(status.code >= 400 && status.code < 500, "{status}");
    let held: i64 = ticketing::schema::bookings::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(held, 1);
}

#[rocket::async_test]
async fn alt_text_is_required_with_an_image_and_removal_is_audited() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let upload = photo(640, 480);
    let (status, _, page) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "   ")]),
        Some(("a.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        page.contains("id=\"ev-image_alt-error\">Describe the image"),
        "{page}"
    );
    assert!(page.contains("id=\"ev-image-error\">Choose the image again"));
    assert_eq!(media_rows(&app), (0, 0));

    let (status, _, _) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "First")]),
        Some(("a.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let e = event_by_slug(&app, "photo-night");
    let first = e.image_hash.clone().unwrap();
    let edit = format!("/admin/events/{}", e.id);
    let (_, page) = get(&app.client, &edit).await;
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(
        page.contains(&format!("src=\"/media/{first}-480.jpg\"")),
        "preview"
    );
    assert!(page.contains("name=\"remove_image\""));

    // Keeping the image with its alt text cleared is refused, and changes nothing.
    let (status, _, page) = post_multipart(
        &app.client,
        &edit,
        &event_fields(&csrf, &[("image_alt", "")]),
        None,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("id=\"ev-image_alt-error\">Describe the image"));
    assert_eq!(event_by_slug(&app, "photo-night").image_alt, "First");

    // A new alt text alone is saved.
    let (status, _, _) = post_multipart(
        &app.client,
        &edit,
        &event_fields(&csrf, &[("image_alt", "Second")]),
        None,
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(event_by_slug(&app, "photo-night").image_alt, "Second");

    // Replaced: new hash, the old rows are gone, the audit entry says so.
    let other = photo(700, 500);
    let (status, _, _) = post_multipart(
        &app.client,
        &edit,
        &event_fields(&csrf, &[("image_alt", "Third")]),
        Some(("b.png", "image/png", &other)),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let second = event_by_slug(&app, "photo-night").image_hash.unwrap();
    assert_ne!(first, second);
    let (gone, _) = get(&app.client, &format!("/media/{first}-480.jpg")).await;
    assert_eq!(gone, Status::NotFound);
    assert_eq!(media_rows(&app), (1, 2));

    // Removed (the alt text may be empty then).
    let (status, _, body) = post_multipart(
        &app.client,
        &edit,
        &event_fields(&csrf, &[("image_alt", ""), ("remove_image", "true")]),
        None,
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let e = event_by_slug(&app, "photo-night");
    assert_eq!(e.image_hash, None);
    assert_eq!(e.image_alt, "");
    assert_eq!(media_rows(&app), (0, 0));
    go_live(&app, "photo-night", "public");
    let (status, page) = get(&app.client, "/events/photo-night").await;
    assert_eq!(status, Status::Ok);
    assert!(!page.contains("event-image"));

    let trail: Vec<(String, Option<serde_json::Value>, Option<serde_json::Value>)> =
        audit_log::table
            .filter(audit_log::entity_id.eq(e.id))
            .order(audit_log::id)
            .select((audit_log::action, audit_log::before, audit_log::after))
            .load(&mut app.conn())
            .unwrap();
    let images: Vec<(String, serde_json::Value, serde_json::Value)> = trail
        .into_iter()
        .map(|(a, b, after)| {
            (
                a,
                b.map(|b| b["image"].clone()).unwrap_or_default(),
                after.unwrap()["image"].clone(),
            )
        })
        .collect();
    assert_eq!(
        images,
        vec![
            (
                "event.create".into(),
                serde_json::Value::Null,
                first.clone().into()
            ),
            (
                "event.update".into(),
                first.clone().into(),
                first.clone().into()
            ),
            ("event.update".into(), first.into(), second.clone().into()),
            (
                "event.update".into(),
                second.into(),
                serde_json::Value::Null
            ),
        ]
    );
}

#[rocket::async_test]
async fn address_and_coordinates_are_validated() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    for (lat, lon, field, message) in [
        (
            "91",
            "13.4",
            "venue_latitude",
            "Enter a latitude between -90 and 90",
        ),
        (
            "-90.5",
            "13.4",
            "venue_latitude",
            "Enter a latitude between -90 and 90",
        ),
        (
            "52.5",
            "180.01",
            "venue_longitude",
            "Enter a longitude between -180 and 180",
        ),
        (
            "52.5",
            "east",
            "venue_longitude",
            "Enter a longitude between -180 and 180",
        ),
        (
            "NaN",
            "13.4",
            "venue_latitude",
            "Enter a latitude between -90 and 90",
        ),
        (
            "inf",
            "13.4",
            "venue_latitude",
            "Enter a latitude between -90 and 90",
        ),
        ("52.5", "", "venue_longitude", "Enter the longitude too"),
        ("", "13.4", "venue_latitude", "Enter the latitude too"),
    ] {
        let (status, _, page) = post_multipart(
            &app.client,
            "/admin/events",
            &event_fields(&csrf, &[("venue_latitude", lat), ("venue_longitude", lon)]),
            None,
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity, "{lat} {lon}");
        assert!(
            page.contains(&format!("id=\"ev-{field}-error\">{message}")),
            "{lat} {lon}: {page}"
        );
        assert!(page.contains(&format!("value=\"{lat}\"")), "kept");
    }
    let control = "Line\u{0}one";
    let (status, _, page) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("venue_address", control)]),
        None,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("id=\"ev-venue_address-error\">Remove the control characters"));
    let count: i64 = events::table.count().get_result(&mut app.conn()).unwrap();
    assert_eq!(count, 0);

    // A decimal comma is taken; both ends of the ranges are fine.
    let (status, _, body) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(
            &csrf,
            &[
                ("venue_address", "Platz der Republik 1\r\n11011 Berlin"),
                ("venue_latitude", "52,5186"),
                ("venue_longitude", "-180"),
            ],
        ),
        None,
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let e = event_by_slug(&app, "photo-night");
    assert_eq!(e.venue_address, "Platz der Republik 1\r\n11011 Berlin");
    assert_eq!(
        (e.venue_latitude, e.venue_longitude),
        (Some(52.5186), Some(-180.0))
    );
    let (_, edit) = get(&app.client, &format!("/admin/events/{}", e.id)).await;
    assert!(edit.contains("value=\"52.5186\""));
    assert!(edit.contains("value=\"-180\""));
}

/// Sets an event's place directly.
fn place(app: &TestApp, id: i64, address: &str, coords: Option<(f64, f64)>) {
    diesel::update(events::table.find(id))
        .set((
            events::venue_address.eq(address),
            events::venue_latitude.eq(coords.map(|c| c.0)),
            events::venue_longitude.eq(coords.map(|c| c.1)),
        ))
        .execute(&mut app.conn())
        .unwrap();
}

#[rocket::async_test]
async fn the_map_link_is_built_from_coordinates_or_the_address() {
    let app = TestApp::spawn().await;
    let event = EventSpec::public("gig", 10).insert(&mut app.conn());

    place(
        &app,
        event.id,
        "Müller & Söhne Saal\nKöpenicker Str. 1 #2\n10179 Berlin",
        None,
    );
    let (_, page) = get(&app.client, "/events/gig").await;
    assert!(
        page.contains(
            "<a class=\"map-link\" href=\"https://www.openstreetmap.org/search?query=M%C3%BCller+%26+S%C3%B6hne+Saal%2C+K%C3%B6penicker+Str.+1+%232%2C+10179+Berlin\">Open in OpenStreetMap</a>"
        ),
        "{page}"
    );
    assert!(page.contains(
        "<strong>Test Hall</strong><br>Müller &amp; Söhne Saal<br>Köpenicker Str. 1 #2<br>10179 Berlin"
    ));

    place(&app, event.id, "Anywhere", Some((52.5163, -0.1276)));
    // The cached page lasts a second.
    rocket::tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, page) = get(&app.client, "/events/gig").await;
    assert!(
        page.contains("href=\"https://www.openstreetmap.org/?mlat=52.5163&amp;mlon=-0.1276#map=17/52.5163/-0.1276\""),
        "{page}"
    );

    // Neither address nor coordinates: the venue's name is searched.
    place(&app, event.id, "", None);
    rocket::tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, page) = get(&app.client, "/events/gig").await;
    assert!(page.contains("href=\"https://www.openstreetmap.org/search?query=Test+Hall\""));
    // No third party is asked for anything by the page itself.
    assert!(!page.contains("<iframe"));
    assert!(!page.contains("src=\"https://"));
}

#[rocket::async_test]
async fn the_event_page_names_the_organiser_with_contact_links() {
    let app = TestApp::spawn().await;
    EventSpec::public("gig", 10).insert(&mut app.conn());
    let (_, page) = get(&app.client, "/events/gig").await;
    assert!(
        page.contains(
            "<p>Organised by <strong>Beispiel Events GmbH</strong> — contact: <a href=\"mailto:kontakt@example.org\">kontakt@example.org</a>, <a href=\"tel:+49301234567\">+49 30 1234567</a></p>"
        ),
        "{page}"
    );
}

#[rocket::async_test]
async fn a_private_events_image_url_is_only_the_hash() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let upload = photo(500, 500);
    let (status, _, body) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(
            &csrf,
            &[("slug", "secret-party"), ("image_alt", "Balloons")],
        ),
        Some(("p.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    let e = go_live(&app, "secret-party", "private");
    let token = e.private_token.clone().unwrap();
    let (status, page) = get(&app.client, &format!("/p/{token}")).await;
    assert_eq!(status, Status::Ok);
    let hash = e.image_hash.unwrap();
    let urls: Vec<&str> = page
        .split("/media/")
        .skip(1)
        .map(|rest| rest.split(['"', ' ']).next().unwrap())
        .collect();
    assert!(!urls.is_empty());
    for url in urls {
        assert!(
            url == format!("{hash}-480.jpg") || url == format!("{hash}-500.jpg"),
            "{url}"
        );
    }
    // The image is the hash of the upload: nothing of the event's slug or token.
    use sha2::Digest;
    assert_eq!(hash, hex::encode(sha2::Sha256::digest(&upload))[..32]);
    let res = app
        .client
        .get(format!("/media/{hash}-500.jpg"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.headers().get_one("X-Robots-Tag"), None);
}

#[rocket::async_test]
async fn a_duplicate_shares_the_image_until_neither_shows_it() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let upload = photo(640, 480);
    let (status, _, _) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "Shared")]),
        Some(("a.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    let original = event_by_slug(&app, "photo-night");
    let hash = original.image_hash.clone().unwrap();
    let res = app
        .client
        .post(format!("/admin/events/{}/duplicate", original.id))
        .header(ContentType::Form)
        .body(format!("csrf={csrf}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let copy_id: i64 = res.headers().get_one("Location").unwrap()["/admin/events/".len()..]
        .parse()
        .unwrap();
    let copy = Event::find(&mut app.conn(), copy_id).unwrap();
    assert_eq!(copy.image_hash.as_deref(), Some(hash.as_str()));
    assert_eq!(copy.image_alt, "Shared");
    assert_eq!(copy.venue, original.venue);

    // The original drops it: the copy still shows it, so it stays.
    let (status, _, _) = post_multipart(
        &app.client,
        &format!("/admin/events/{}", original.id),
        &event_fields(&csrf, &[("remove_image", "true")]),
        None,
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(media_rows(&app), (1, 2));
    let (ok, _) = get(&app.client, &format!("/media/{hash}-640.jpg")).await;
    assert_eq!(ok, Status::Ok);

    // The copy drops it too: gone.
    let copy_slug = copy.slug.clone();
    let fields = event_fields(
        &csrf,
        &[
            ("slug", copy_slug.as_str()),
            ("visibility", "draft"),
            ("remove_image", "true"),
        ],
    );
    let (status, _, body) = post_multipart(
        &app.client,
        &format!("/admin/events/{copy_id}"),
        &fields,
        None,
    )
    .await;
    assert_eq!(status, Status::SeeOther, "{body}");
    assert_eq!(media_rows(&app), (0, 0));
}

#[rocket::async_test]
async fn a_save_refused_late_stores_no_image_and_asks_for_it_again() {
    let app = TestApp::spawn().await;
    let csrf = admin(&app).await;
    let (status, _, _) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[]),
        None,
    )
    .await;
    assert_eq!(status, Status::SeeOther);
    // The same slug again, with an image: refused by the database's unique slug, after the
    // image was stored in the same transaction, which is rolled back with it.
    let upload = photo(640, 480);
    let (status, _, page) = post_multipart(
        &app.client,
        "/admin/events",
        &event_fields(&csrf, &[("image_alt", "Late")]),
        Some(("a.png", "image/png", &upload)),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("Another event already uses this slug."));
    assert!(
        page.contains("id=\"ev-image-error\">Choose the image again"),
        "{page}"
    );
    assert!(page.contains("value=\"Late\""));
    assert_eq!(media_rows(&app), (0, 0));
}
