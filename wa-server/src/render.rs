//! QR rendering: the engine hands out the QR *string*; here it becomes a PNG or an SVG
//! (qrcode crate for the module matrix, png crate for the image).

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module in the PNG.
const SCALE: usize = 8;
/// Quiet zone around the symbol, in modules (ISO/IEC 18004 §6.3.8 asks for 4).
const QUIET: usize = 4;

/// Why a QR could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The string does not fit in a QR symbol.
    #[error("QR encoding failed: {0}")]
    Qr(#[from] qrcode::types::QrError),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}

fn code(data: &str) -> Result<QrCode, RenderError> {
    // Level M, as WhatsApp Web renders its QR.
    Ok(QrCode::with_error_correction_level(
        data.as_bytes(),
        EcLevel::M,
    )?)
}

/// The QR of `data` as a greyscale PNG (8 px per module, 4-module quiet zone).
///
/// # Errors
/// [`RenderError`].
pub fn qr_png(data: &str) -> Result<Vec<u8>, RenderError> {
    let code = code(data)?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET, i / width + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            let row = y * side;
            pixels[row + mx * SCALE..row + (mx + 1) * SCALE].fill(0);
        }
    }
    let side = u32::try_from(side).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
        writer.finish()?;
    }
    Ok(out)
}

/// The QR of `data` as an SVG document.
///
/// # Errors
/// [`RenderError::Qr`].
pub fn qr_svg(data: &str) -> Result<String, RenderError> {
    Ok(code(data)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_whatsapp_sized_qr_as_png_and_svg() {
        let data = "2@AbCdEfGh0123456789,NoiseKeyBase64AAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,\
                    IdentityKeyBase64AAAAAAAAAAAAAAAAAAAAAAAAAAAA=,AdvSecretBase64AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let png = qr_png(data).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = qr_svg(data).expect("svg");
        assert!(svg.contains("<svg"));
    }
}
