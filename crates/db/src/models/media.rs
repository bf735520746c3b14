//! Event images (issue 15): an image is stored as a few re-encoded widths in
//! `media_variants`, under a hash of the uploaded bytes (`media_images`). Which widths an
//! image has is decided here, once, for both the code that makes them and the pages that
//! list them in `srcset` ([`variant_sizes`]).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{events, media_images, media_variants};

/// The widths an image is stored at, never wider than the upload: the widest is the
/// upload's width capped at the last one here.
pub const VARIANT_WIDTHS: [u32; 3] = [480, 960, 1600];

/// The hex characters of the SHA-256 of the upload that name an image (128 bits).
pub const HASH_CHARS: usize = 32;

/// The stored formats: JPEG for opaque images, PNG when some pixel is transparent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFormat {
    Jpeg,
    Png,
}

impl MediaFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpeg",
            MediaFormat::Png => "png",
        }
    }

    pub fn parse(s: &str) -> Option<MediaFormat> {
        match s {
            "jpeg" => Some(MediaFormat::Jpeg),
            "png" => Some(MediaFormat::Png),
            _ => None,
        }
    }

    /// The extension in a media URL.
    pub fn extension(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "jpg",
            MediaFormat::Png => "png",
        }
    }

    pub fn from_extension(ext: &str) -> Option<MediaFormat> {
        match ext {
            "jpg" => Some(MediaFormat::Jpeg),
            "png" => Some(MediaFormat::Png),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            MediaFormat::Jpeg => "image/jpeg",
            MediaFormat::Png => "image/png",
        }
    }
}

/// The size of the widest variant of an image `width` × `height` pixels (after its
/// orientation is applied): the same, or scaled down to the widest of [`VARIANT_WIDTHS`].
pub fn largest_size(width: u32, height: u32) -> (u32, u32) {
    let max = VARIANT_WIDTHS[VARIANT_WIDTHS.len() - 1];
    if width <= max {
        (width.max(1), height.max(1))
    } else {
        (max, scaled_height(width, height, max))
    }
}

/// Every variant's size, narrowest first, given the widest variant's size (as stored on
/// the event): each of [`VARIANT_WIDTHS`] narrower than it, then the widest itself. Never
/// wider than the upload (test `media::variants_are_never_upscaled_and_metadata_is_gone`).
pub fn variant_sizes(largest_width: u32, largest_height: u32) -> Vec<(u32, u32)> {
    let mut sizes: Vec<(u32, u32)> = VARIANT_WIDTHS
        .iter()
        .copied()
        .filter(|&w| w < largest_width)
        .map(|w| (w, scaled_height(largest_width, largest_height, w)))
        .collect();
    sizes.push((largest_width, largest_height));
    sizes
}

fn scaled_height(width: u32, height: u32, to_width: u32) -> u32 {
    let h = (u64::from(height) * u64::from(to_width) + u64::from(width) / 2) / u64::from(width);
    u32::try_from(h).unwrap_or(u32::MAX).max(1)
}

/// The path of one variant: `/media/<hash>-<width>.<ext>`.
pub fn variant_path(hash: &str, width: u32, format: MediaFormat) -> String {
    format!("/media/{hash}-{width}.{}", format.extension())
}

/// A stored image.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = media_images, check_for_backend(diesel::pg::Pg))]
pub struct MediaImage {
    pub hash: String,
    pub width: i32,
    pub height: i32,
    pub format: String,
    pub created_at: DateTime<Utc>,
}

/// One encoded width of an image, to store.
#[derive(Debug, Clone)]
pub struct EncodedVariant {
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// An image ready to store: the hash of its upload, its format, its variants narrowest
/// first (the last is the widest).
#[derive(Debug, Clone)]
pub struct EncodedImage {
    pub hash: String,
    pub format: MediaFormat,
    pub variants: Vec<EncodedVariant>,
}

impl EncodedImage {
    /// The widest variant's size.
    pub fn size(&self) -> (u32, u32) {
        self.variants
            .last()
            .map(|v| (v.width, v.height))
            .unwrap_or((1, 1))
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Database methods.
impl MediaImage {
    /// Stores `image` and its variants unless the same upload is stored already.
    pub fn store(conn: &mut PgConnection, image: &EncodedImage) -> QueryResult<()> {
        let (width, height) = image.size();
        let inserted = diesel::insert_into(media_images::table)
            .values((
                media_images::hash.eq(&image.hash),
                media_images::width.eq(to_i32(width)),
                media_images::height.eq(to_i32(height)),
                media_images::format.eq(image.format.as_str()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        if inserted == 0 {
            return Ok(());
        }
        for v in &image.variants {
            diesel::insert_into(media_variants::table)
                .values((
                    media_variants::hash.eq(&image.hash),
                    media_variants::width.eq(to_i32(v.width)),
                    media_variants::height.eq(to_i32(v.height)),
                    media_variants::bytes.eq(&v.bytes),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn find(conn: &mut PgConnection, hash: &str) -> QueryResult<MediaImage> {
        media_images::table
            .find(hash)
            .select(MediaImage::as_select())
            .first(conn)
    }

    /// The bytes of one variant and the image's format; `NotFound` for anything unknown.
    pub fn variant_bytes(
        conn: &mut PgConnection,
        hash: &str,
        width: u32,
    ) -> QueryResult<(String, Vec<u8>)> {
        media_variants::table
            .inner_join(media_images::table)
            .filter(media_variants::hash.eq(hash))
            .filter(media_variants::width.eq(to_i32(width)))
            .select((media_images::format, media_variants::bytes))
            .first(conn)
    }

    /// Deletes the image `hash` (variants included) if no event shows it any more; called
    /// in the transaction that took it off an event.
    pub fn delete_if_unused(conn: &mut PgConnection, hash: &str) -> QueryResult<bool> {
        let used = diesel::dsl::exists(events::table.filter(events::image_hash.eq(hash)));
        let deleted = diesel::delete(media_images::table.find(hash))
            .filter(diesel::dsl::not(used))
            .execute(conn)?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stop_at_the_upload_width() {
        assert_eq!(largest_size(4000, 3000), (1600, 1200));
        assert_eq!(largest_size(800, 600), (800, 600));
        assert_eq!(
            variant_sizes(1600, 1200),
            vec![(480, 360), (960, 720), (1600, 1200)]
        );
        assert_eq!(variant_sizes(800, 600), vec![(480, 360), (800, 600)]);
        assert_eq!(variant_sizes(480, 10), vec![(480, 10)]);
        assert_eq!(variant_sizes(300, 200), vec![(300, 200)]);
        // A strip never gets a zero height.
        assert_eq!(variant_sizes(1600, 1), vec![(480, 1), (960, 1), (1600, 1)]);
    }
}
