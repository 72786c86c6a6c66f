//! Guest avatars: an uploaded picture (JPEG, PNG, WebP, GIF) is decoded within limits, cropped to a
//! centred square and re-encoded at 256×256 — the guest's original bytes are never stored or served.

/// Avatars are stored square at this size.
pub const AVATAR_SIZE: u32 = 256;

/// Picture decodes are CPU-heavy: two at a time, whatever the crowd does.
pub static AVATAR_DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Decode an uploaded picture (JPEG, PNG, WebP, GIF), crop it to a centred square and re-encode it at
/// 256×256: JPEG, or PNG when it has transparency. Never stores the guest's original bytes.
pub fn normalise_avatar(bytes: &[u8]) -> Result<(Vec<u8>, &'static str), image::ImageError> {
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
    let mut out = Vec::new();
    if square.color().has_alpha() {
        square.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)?;
        Ok((out, "image/png"))
    } else {
        let rgb = square.to_rgb8();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88).encode_image(&rgb)?;
        Ok((out, "image/jpeg"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatars_are_cropped_to_256_squares() {
        let img = image::RgbImage::from_pixel(640, 480, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let (out, ct) = normalise_avatar(&png).unwrap();
        assert_eq!(ct, "image/jpeg");
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (256, 256));
        assert!(normalise_avatar(b"GIF89a but not really").is_err());
        assert!(normalise_avatar(b"hello world").is_err());
    }
}
