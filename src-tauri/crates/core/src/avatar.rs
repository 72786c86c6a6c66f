//! Avatars, whatever their platform (a web upload, a WeChat or Telegram profile photo): the picture is
//! decoded within limits, cropped to a centred square and re-encoded twice — 256×256 for the spotlight
//! and a 64×64 thumbnail for small grid cells (`thumb_url`, see ui/grid.js). The original bytes are
//! never stored or served. A platform photo that does not decode keeps the generated placeholder.

use crate::domain::MediaKey;
use crate::store::{Store, StoreError};

/// Avatars are stored square at this size.
pub const AVATAR_SIZE: u32 = 256;
/// And their thumbnails at this one (a grid cell drawn at up to ~64 px).
pub const THUMB_SIZE: u32 = 64;

/// Picture decodes are CPU-heavy: two at a time, whatever the crowd does.
pub static AVATAR_DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// One encoded square picture.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// A picture at both sizes.
#[derive(Clone, Debug)]
pub struct Avatar {
    pub full: Encoded,
    pub thumb: Encoded,
}

/// An avatar's blobs in the media cache.
#[derive(Clone, Debug, PartialEq)]
pub struct AvatarKeys {
    pub avatar: MediaKey,
    pub thumb: MediaKey,
}

#[derive(Debug, thiserror::Error)]
pub enum AvatarError {
    #[error("not a picture: {0}")]
    Image(#[from] image::ImageError),
    #[error("the picture decode did not finish: {0}")]
    Task(String),
}

/// Decode a picture (JPEG, PNG, WebP, GIF), crop it to a centred square and re-encode it at 256×256
/// and 64×64: JPEG, or PNG when it has transparency.
pub fn normalise_avatar(bytes: &[u8]) -> Result<Avatar, image::ImageError> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(64 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode()?;
    let square = img.resize_to_fill(
        AVATAR_SIZE,
        AVATAR_SIZE,
        image::imageops::FilterType::Lanczos3,
    );
    let thumb = square.resize_exact(
        THUMB_SIZE,
        THUMB_SIZE,
        image::imageops::FilterType::Lanczos3,
    );
    Ok(Avatar {
        full: encode(&square)?,
        thumb: encode(&thumb)?,
    })
}

fn encode(img: &image::DynamicImage) -> Result<Encoded, image::ImageError> {
    let mut out = Vec::new();
    if img.color().has_alpha() {
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
        Ok(Encoded {
            bytes: out,
            content_type: "image/png",
        })
    } else {
        let rgb = img.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88).encode_image(&rgb)?;
        Ok(Encoded {
            bytes: out,
            content_type: "image/jpeg",
        })
    }
}

/// [`normalise_avatar`] off the async threads, at most [`AVATAR_DECODES`] at a time.
pub async fn normalise(bytes: Vec<u8>) -> Result<Avatar, AvatarError> {
    let _slot = AVATAR_DECODES
        .acquire()
        .await
        .map_err(|e| AvatarError::Task(e.to_string()))?;
    tokio::task::spawn_blocking(move || normalise_avatar(&bytes))
        .await
        .map_err(|e| AvatarError::Task(e.to_string()))?
        .map_err(AvatarError::Image)
}

/// Put both sizes into the media cache.
pub fn store(store: &Store, avatar: &Avatar) -> Result<AvatarKeys, StoreError> {
    Ok(AvatarKeys {
        avatar: store.put_media(&avatar.full.bytes, avatar.full.content_type)?,
        thumb: store.put_media(&avatar.thumb.bytes, avatar.thumb.content_type)?,
    })
}

/// A platform's profile photo, normalised and cached; `None` (the generated placeholder stays) when
/// it does not decode — a bad photo never costs the person their place or their message.
pub async fn cache_platform_photo(
    store: &Store,
    bytes: Vec<u8>,
) -> Result<Option<AvatarKeys>, StoreError> {
    match normalise(bytes).await {
        Ok(a) => Ok(Some(self::store(store, &a)?)),
        Err(e) => {
            tracing::info!(error = %e, "a profile photo that does not decode: keeping the placeholder");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    #[test]
    fn avatars_are_cropped_to_256_squares_with_a_64_thumbnail() {
        let a = normalise_avatar(&picture(640, 480)).unwrap();
        assert_eq!(a.full.content_type, "image/jpeg");
        assert_eq!(a.thumb.content_type, "image/jpeg");
        let back = image::load_from_memory(&a.full.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (256, 256));
        let thumb = image::load_from_memory(&a.thumb.bytes).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (64, 64));
        assert!(normalise_avatar(b"GIF89a but not really").is_err());
        assert!(normalise_avatar(b"hello world").is_err());
    }

    #[test]
    fn transparent_pictures_stay_png_at_both_sizes() {
        let img = image::RgbaImage::from_pixel(300, 300, image::Rgba([0, 0, 0, 0]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let a = normalise_avatar(&png).unwrap();
        assert_eq!(
            (a.full.content_type, a.thumb.content_type),
            ("image/png", "image/png")
        );
    }
}
