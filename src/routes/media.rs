//! Event images as the site serves them (issue 15): `GET /media/<hash>-<width>.<ext>`, one
//! stored variant (see `crate::media`). The URL is the content's hash and nothing of the
//! event, so a private event's image says nothing of it; the content behind a URL never
//! changes, so it is cached for a year (`public, max-age=31536000, immutable`). Anything
//! else under `/media` is the site's 404. Tests: `media::variants_are_served_*`,
//! `media::unknown_media_is_404`.

use rocket::http::{ContentType, Header};
use rocket::{get, routes, Route, State};

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::media::{MediaFormat, HASH_CHARS};
use crate::models::MediaImage;

pub fn routes() -> Vec<Route> {
    routes![variant]
}

/// One variant's bytes, with its type and the year-long cache header.
#[derive(rocket::Responder)]
pub struct MediaFile {
    body: Vec<u8>,
    content_type: ContentType,
    cache: Header<'static>,
}

/// `<hash>-<width>.<ext>`: 32 lower-case hex digits, a width of 1 to 4 digits without a
/// leading zero, `jpg` or `png`.
fn parse_name(name: &str) -> Option<(&str, u32, MediaFormat)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let format = MediaFormat::from_extension(ext)?;
    let (hash, width) = stem.split_once('-')?;
    let hash_ok = hash.len() == HASH_CHARS
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let width_ok = (1..=4).contains(&width.len())
        && !width.starts_with('0')
        && width.bytes().all(|b| b.is_ascii_digit());
    if !hash_ok || !width_ok {
        return None;
    }
    Some((hash, width.parse().ok()?, format))
}

#[get("/<name>")]
async fn variant(db: &State<Db>, name: &str) -> AppResult<MediaFile> {
    let (hash, width, format) = parse_name(name).ok_or_else(AppError::not_found)?;
    let hash = hash.to_string();
    let (stored, body) = db
        .run(move |conn| Ok(MediaImage::variant_bytes(conn, &hash, width)?))
        .await?;
    if MediaFormat::parse(&stored) != Some(format) {
        return Err(AppError::not_found());
    }
    Ok(MediaFile {
        body,
        content_type: match format {
            MediaFormat::Jpeg => ContentType::JPEG,
            MediaFormat::Png => ContentType::PNG,
        },
        cache: Header::new("Cache-Control", "public, max-age=31536000, immutable"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_parsed_strictly() {
        let h = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse_name(&format!("{h}-480.jpg")),
            Some((h, 480, MediaFormat::Jpeg))
        );
        assert_eq!(
            parse_name(&format!("{h}-1600.png")),
            Some((h, 1600, MediaFormat::Png))
        );
        for bad in [
            format!("{h}-0480.jpg"),
            format!("{h}-480.gif"),
            format!("{h}-480"),
            format!("{h}-12345.jpg"),
            format!("{}-480.jpg", h.to_uppercase()),
            format!("{}-480.jpg", &h[1..]),
            format!("{h}-480.jpg.jpg"),
            format!("{h}--480.jpg"),
            "x.jpg".to_string(),
        ] {
            assert_eq!(parse_name(&bad), None, "{bad}");
        }
    }
}
