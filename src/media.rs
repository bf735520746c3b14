//! Event images (issue 15): the upload field of the event form and the one place an upload
//! becomes stored variants. An upload is decoded with bounded dimensions and memory (a
//! decompression bomb is refused before its pixels are allocated), turned upright by its
//! EXIF orientation, scaled to the widths of [`ticketing_db::models::media::variant_sizes`]
//! (never wider than it was) and re-encoded, so nothing of the file but its pixels
//! survives: no EXIF (GPS position, camera serial), no comments. Decoding runs on a
//! blocking thread, one image at a time. Tests: `tests/it/media.rs`.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use rocket::data::{Data, ToByteUnit};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::form::{self, DataField, FromFormField, ValueField};
use rocket::http::ContentType;
use rocket::tokio::sync::Semaphore;
use rocket::Request;

use ticketing_db::models::media::{
    largest_size, variant_sizes, EncodedImage, EncodedVariant, MediaFormat, HASH_CHARS,
};

/// The largest file the event form takes.
pub const MAX_UPLOAD_BYTES: u64 = 8 * 1024 * 1024;
/// The most a multipart form may hold in all: a file over [`MAX_UPLOAD_BYTES`] up to this
/// size still gets its message next to the field (the part past the limit is read and
/// dropped, not kept); a larger body is refused whole (413). Only the event form takes
/// multipart bodies ([`MultipartOnlyForUploads`]), and only after the admin guard.
pub const MAX_FORM_BYTES: u64 = 32 * 1024 * 1024;
/// The most pixels on either side of an upload.
pub const MAX_SIDE: u32 = 8192;
/// The most pixels of an upload in all (a 40-megapixel photo; 8192 × 8192 is refused).
pub const MAX_PIXELS: u64 = 40_000_000;
/// The most memory the decoder may take, the decoded pixels included.
const MAX_DECODER_BYTES: u64 = 256 * 1024 * 1024;
/// JPEG quality of the stored variants.
const JPEG_QUALITY: u8 = 82;

/// The image field of a multipart form: nothing chosen, a file over [`MAX_UPLOAD_BYTES`]
/// (read no further than the limit), or the file's bytes. It never fails, so a too-big
/// file becomes a message next to the field with the rest of the form kept.
#[derive(Debug, Clone, Default)]
pub enum Upload {
    #[default]
    None,
    TooBig,
    File(Arc<Vec<u8>>),
}

#[rocket::async_trait]
impl<'v> FromFormField<'v> for Upload {
    fn from_value(_field: ValueField<'v>) -> form::Result<'v, Self> {
        // A url-encoded form (or a multipart text part) carries no file.
        Ok(Upload::None)
    }

    async fn from_data(field: DataField<'v, '_>) -> form::Result<'v, Self> {
        let capped = field
            .data
            .open(MAX_UPLOAD_BYTES.bytes())
            .into_bytes()
            .await
            .map_err(form::Error::custom)?;
        if !capped.is_complete() {
            return Ok(Upload::TooBig);
        }
        let bytes = capped.into_inner();
        Ok(if bytes.is_empty() {
            Upload::None
        } else {
            Upload::File(Arc::new(bytes))
        })
    }

    fn default() -> Option<Self> {
        Some(Upload::None)
    }
}

/// Multipart bodies only where a file is uploaded: the event form (create, edit). Rocket
/// would parse any form route's body as multipart too, buffering each text part up to
/// [`MAX_FORM_BYTES`], so elsewhere the body is marked as plain bytes, which no form route
/// reads (test `media::multipart_bodies_are_read_only_by_the_event_form`).
pub struct MultipartOnlyForUploads;

/// `/admin/events` and `/admin/events/<id>`.
fn takes_uploads(path: &str) -> bool {
    match path.strip_prefix("/admin/events") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

#[rocket::async_trait]
impl Fairing for MultipartOnlyForUploads {
    fn info(&self) -> Info {
        Info {
            name: "multipart only for uploads",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _data: &mut Data<'_>) {
        let multipart = req.content_type().is_some_and(|ct| ct.is_form_data());
        if multipart && !takes_uploads(req.uri().path().as_str()) {
            req.replace_header(ContentType::Binary);
        }
    }
}

/// Why an upload was refused; [`Refused::message`] is shown next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    TooBig,
    NotAnImage,
    TooManyPixels,
}

impl Refused {
    pub fn message(self) -> String {
        match self {
            Refused::TooBig => format!(
                "The file is larger than {} MiB. Choose a smaller image.",
                MAX_UPLOAD_BYTES / 1024 / 1024
            ),
            Refused::NotAnImage => {
                "This file is not a JPEG, PNG or WebP image we can read. Choose another file."
                    .to_string()
            }
            Refused::TooManyPixels => format!(
                "The image is too large: at most {MAX_SIDE} pixels on a side and {} megapixels \
                 in all. Scale it down and try again.",
                MAX_PIXELS / 1_000_000
            ),
        }
    }
}

/// One image at a time: decoding a large photo takes a core and up to
/// [`MAX_DECODER_BYTES`], and the VPS has two cores.
fn gate() -> &'static Semaphore {
    static GATE: OnceLock<Semaphore> = OnceLock::new();
    GATE.get_or_init(|| Semaphore::new(1))
}

/// Decodes and re-encodes `bytes` off the async runtime (see [`encode`]).
pub async fn process(bytes: Arc<Vec<u8>>) -> Result<EncodedImage, Refused> {
    let _permit = gate().acquire().await.map_err(|_| Refused::NotAnImage)?;
    rocket::tokio::task::spawn_blocking(move || encode(&bytes))
        .await
        .unwrap_or(Err(Refused::NotAnImage))
}

/// Decodes `bytes` (JPEG, PNG or WebP, whatever the file claims to be), refusing more than
/// [`MAX_SIDE`] or [`MAX_PIXELS`] before any pixel is allocated, and encodes every variant:
/// JPEG, or PNG when some pixel is transparent. Blocking: call it through [`process`].
pub fn encode(bytes: &[u8]) -> Result<EncodedImage, Refused> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| Refused::NotAnImage)?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)
    ) {
        return Err(Refused::NotAnImage);
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODER_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    if width == 0
        || height == 0
        || width > MAX_SIDE
        || height > MAX_SIDE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
        || decoder.total_bytes() > MAX_DECODER_BYTES
    {
        return Err(Refused::TooManyPixels);
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(refusal)?;
    img.apply_orientation(orientation);

    let (lw, lh) = largest_size(img.width(), img.height());
    let largest = if (lw, lh) == (img.width(), img.height()) {
        img
    } else {
        img.thumbnail_exact(lw, lh)
    };
    let format = if largest.color().has_alpha() && largest.to_rgba8().pixels().any(|p| p[3] < 255) {
        MediaFormat::Png
    } else {
        MediaFormat::Jpeg
    };
    let mut variants = Vec::new();
    for (w, h) in variant_sizes(lw, lh) {
        let scaled;
        let v = if (w, h) == (lw, lh) {
            &largest
        } else {
            scaled = largest.thumbnail_exact(w, h);
            &scaled
        };
        variants.push(EncodedVariant {
            width: w,
            height: h,
            bytes: encode_one(v, format)?,
        });
    }
    let hash = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(bytes))[..HASH_CHARS].to_string()
    };
    Ok(EncodedImage {
        hash,
        format,
        variants,
    })
}

fn encode_one(img: &DynamicImage, format: MediaFormat) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    let written = match format {
        MediaFormat::Jpeg => img
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)),
        MediaFormat::Png => img
            .to_rgba8()
            .write_with_encoder(PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Default,
                PngFilter::Adaptive,
            )),
    };
    written.map_err(|_| Refused::NotAnImage)?;
    Ok(out)
}

fn refusal(e: image::ImageError) -> Refused {
    match e {
        image::ImageError::Limits(_) => Refused::TooManyPixels,
        _ => Refused::NotAnImage,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_event_form_takes_uploads() {
        for yes in ["/admin/events", "/admin/events/12"] {
            assert!(super::takes_uploads(yes), "{yes}");
        }
        for no in [
            "/admin/events/12/ticket-types",
            "/admin/events/",
            "/admin/events/x",
            "/admin/eventsx",
            "/checkout/hold",
            "/admin/settings",
        ] {
            assert!(!super::takes_uploads(no), "{no}");
        }
    }
}
