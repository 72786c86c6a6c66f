//! The join QR code, drawn as SVG with the `qrcode` crate. Quiet zone included, medium error correction:
//! scannable from the back of a hall when shown large.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

pub fn svg(data: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(512, 512)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .quiet_zone(true)
        .build())
}

/// A short cache-buster for the QR of a given URL.
pub fn version(data: &str) -> String {
    let h = data
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    format!("{h:08x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_an_svg() {
        let s = super::svg("http://192.168.1.2:8787/join/main?t=abc").unwrap();
        assert!(s.starts_with("<?xml") || s.starts_with("<svg"));
        assert!(s.contains("<path") || s.contains("<rect"));
    }
}
