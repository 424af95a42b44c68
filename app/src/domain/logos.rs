//! Listing logos: checked by their content, stored under the SHA-256 of their bytes and served
//! from `/logos/{hash}`.
//!
//! A logo is uploaded by a vendor and shown to every visitor of the catalog, so it must be an
//! image a browser only displays: PNG, JPEG or WebP, judged by the bytes rather than by the file
//! name, and never SVG (which can carry scripts). Its header must also declare sane dimensions,
//! so that a small file cannot unpack into a huge bitmap in visitors' browsers. Because the key is
//! the hash of the bytes, a logo never changes under its URL (it can be cached for good) and the
//! same image uploaded twice is stored once.

use crate::error::AppError;
use crate::model::listing::LogoProblem;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::io::Cursor;

/// The largest logo accepted, in bytes (the `logos.bytes` check constraint agrees).
pub const MAX_LOGO_BYTES: usize = 512 * 1024;
/// Largest width and height, in pixels.
const MAX_SIDE: u32 = 4096;
/// Smallest width and height, in pixels.
const MIN_SIDE: u32 = 16;

/// Checks an uploaded logo by its content and returns its content type: `image/png`,
/// `image/jpeg` or `image/webp`.
///
/// Refused: an empty file, one over [`MAX_LOGO_BYTES`], SVG, anything whose bytes are not PNG,
/// JPEG or WebP (whatever its name) or whose header cannot be read, and images smaller than 16×16
/// or larger than 4096×4096 pixels. Only the header is read, not the pixel data.
pub fn classify(bytes: &[u8]) -> Result<&'static str, LogoProblem> {
    if bytes.is_empty() {
        return Err(LogoProblem::Missing);
    }
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(LogoProblem::TooLarge);
    }
    let (content_type, size) = match infer::get(bytes).map(|kind| kind.mime_type()) {
        Some("image/png") => ("image/png", png_size(bytes)),
        Some("image/jpeg") => ("image/jpeg", jpeg_size(bytes)),
        Some("image/webp") => ("image/webp", webp_size(bytes)),
        // Sniffed only once the raster formats are ruled out, so that text inside a PNG's
        // metadata cannot get a real PNG refused as SVG.
        _ if looks_like_svg(bytes) => return Err(LogoProblem::Svg),
        _ => return Err(LogoProblem::NotImage),
    };
    // A header that cannot be read is no image either, whatever its first bytes say.
    let (width, height) = size.ok_or(LogoProblem::NotImage)?;
    if !(MIN_SIDE..=MAX_SIDE).contains(&width) || !(MIN_SIDE..=MAX_SIDE).contains(&height) {
        return Err(LogoProblem::Dimensions);
    }
    Ok(content_type)
}

/// [`classify`], with the problem as an error beside the `logo` field.
pub fn check(bytes: &[u8]) -> Result<&'static str, AppError> {
    classify(bytes).map_err(|problem| AppError::invalid("logo", problem.label()))
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches(|c: char| c == '\u{feff}' || c.is_whitespace());
    head.starts_with("<?xml") || head.contains("<svg")
}

/// Width and height from a real PNG decoder, which checks the signature, the chunk CRCs and the
/// `IHDR` chunk up to the first image data.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let reader = png::Decoder::new(Cursor::new(bytes)).read_info().ok()?;
    let info = reader.info();
    Some((info.width, info.height))
}

/// Width and height from the first frame header (SOFn), walking the marker segments after SOI.
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    loop {
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        // A marker may be preceded by any number of 0xFF fill bytes.
        let mut marker = *bytes.get(i + 1)?;
        while marker == 0xFF {
            i += 1;
            marker = *bytes.get(i + 1)?;
        }
        i += 2;
        match marker {
            // Another SOI, the end of the image or scan data before any frame header.
            0xD8..=0xDA => return None,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
        if length < 2 {
            return None;
        }
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            // Length (2), sample precision (1), height (2), width (2).
            let header = bytes.get(i + 3..i + 7)?;
            let height = u16::from_be_bytes([header[0], header[1]]);
            let width = u16::from_be_bytes([header[2], header[3]]);
            return Some((width.into(), height.into()));
        }
        i += length;
    }
}

/// Width and height from a WebP's RIFF container and its first chunk (`VP8 `, `VP8L` or `VP8X`).
fn webp_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(b"RIFF") || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let le24 = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 3)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    };
    match bytes.get(12..16)? {
        // Extended format: canvas width and height minus one, 24 bits each.
        b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
        // Lossless: signature 0x2f, then width and height minus one, 14 bits each.
        b"VP8L" if *bytes.get(20)? == 0x2F => {
            let b = bytes.get(21..25)?;
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        // Lossy: a 3-byte frame tag, the start code 9d 01 2a, then 14-bit width and height.
        b"VP8 " if bytes.get(23..26)? == [0x9D, 0x01, 0x2A] => {
            let b = bytes.get(26..30)?;
            let width = u16::from_le_bytes([b[0], b[1]]) & 0x3FFF;
            let height = u16::from_le_bytes([b[2], b[3]]) & 0x3FFF;
            Some((width.into(), height.into()))
        }
        _ => None,
    }
}

/// The SHA-256 of `bytes` in lowercase hex: a logo's key.
pub fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The path a logo is served from.
pub fn url(hash: &str) -> String {
    format!("/logos/{hash}")
}

fn is_hash(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks `bytes` (see [`check`]), stores them unless the same image is already stored, and
/// returns their hash.
pub async fn store(conn: &mut PgConnection, bytes: &[u8]) -> Result<String, AppError> {
    let content_type = check(bytes)?;
    let hash = hash(bytes);
    // The key is the hash of the bytes, so an existing row already holds this very image: a
    // repeated upload (or a concurrent one) is a no-op rather than a conflict.
    sqlx::query(
        "insert into logos (hash, content_type, bytes) values ($1, $2, $3) \
         on conflict (hash) do nothing",
    )
    .bind(&hash)
    .bind(content_type)
    .bind(bytes)
    .execute(conn)
    .await?;
    Ok(hash)
}

/// The content type and bytes of the logo with this hash, or `None` when there is none (or the
/// hash is not 64 lowercase hex digits, in which case the database is not asked).
pub async fn load(pool: &PgPool, hash: &str) -> Result<Option<(String, Vec<u8>)>, AppError> {
    if !is_hash(hash) {
        return Ok(None);
    }
    let logo = sqlx::query_as("select content_type, bytes from logos where hash = $1")
        .bind(hash)
        .fetch_optional(pool)
        .await?;
    Ok(logo)
}

/// Tile colours for generated logos; white text on each has a contrast ratio of at least 4.5:1.
const PALETTE: [[u8; 3]; 8] = [
    [0x1D, 0x4E, 0xD8], // blue
    [0x04, 0x78, 0x57], // emerald
    [0xB9, 0x1C, 0x1C], // red
    [0x6D, 0x28, 0xD9], // violet
    [0xC2, 0x41, 0x0C], // orange
    [0x0F, 0x76, 0x6E], // teal
    [0xBE, 0x18, 0x5D], // pink
    [0x37, 0x41, 0x51], // slate
];

/// A 5×7 bitmap font, A–Z then 0–9: one byte per row, the five low bits left to right.
#[rustfmt::skip]
const FONT: [[u8; 7]; 36] = [
    [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E], // A B
    [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C], // C D
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10], // E F
    [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // G H
    [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C], // I J
    [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F], // K L
    [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // M N
    [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10], // O P
    [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], // Q R
    [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // S T
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04], // U V
    [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11], // W X
    [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F], // Y Z
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 0 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 2 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 4 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 6 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 8 9
];

fn glyph(c: char) -> Option<&'static [u8; 7]> {
    match c {
        'A'..='Z' => FONT.get(c as usize - 'A' as usize),
        '0'..='9' => FONT.get(26 + c as usize - '0' as usize),
        _ => None,
    }
}

/// The first letter or digit of each of the first two words of `label`, upper-cased.
fn initials(label: &str) -> Vec<char> {
    label
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '.' | '/' | '&'))
        .filter_map(|word| {
            word.chars()
                .map(|c| c.to_ascii_uppercase())
                .find(|&c| glyph(c).is_some())
        })
        .take(2)
        .collect()
}

/// A placeholder logo for demo data: a 128×128 PNG of a rounded tile, its colour picked by
/// `seed`, showing the initials of `label` (A–Z, 0–9; other characters are skipped) in white.
pub fn generate_png(label: &str, seed: u64) -> Vec<u8> {
    const SIZE: usize = 128;
    const RADIUS: f32 = 24.0;
    const SCALE: usize = 8;
    // `seed % len` is below 8, so the cast cannot truncate.
    let [r, g, b] = PALETTE[(seed % PALETTE.len() as u64) as usize];

    let mut pixels = vec![0u8; SIZE * SIZE * 4];
    for (i, pixel) in pixels.chunks_exact_mut(4).enumerate() {
        // Distance from the pixel centre to the tile's inner square gives anti-aliased corners.
        let (x, y) = ((i % SIZE) as f32 + 0.5, (i / SIZE) as f32 + 0.5);
        let inner = RADIUS..=SIZE as f32 - RADIUS;
        let dx = x - x.clamp(*inner.start(), *inner.end());
        let dy = y - y.clamp(*inner.start(), *inner.end());
        let coverage = (RADIUS + 0.5 - (dx * dx + dy * dy).sqrt()).clamp(0.0, 1.0);
        pixel.copy_from_slice(&[r, g, b, (coverage * 255.0).round() as u8]);
    }

    let glyphs: Vec<&[u8; 7]> = initials(label).into_iter().filter_map(glyph).collect();
    // Glyphs are five cells wide with one empty cell between them; two of them (88 pixels) fit
    // inside the tile, so the indexing below stays in bounds.
    let width = (glyphs.len() * 6).saturating_sub(1) * SCALE;
    let (left, top) = ((SIZE - width) / 2, (SIZE - 7 * SCALE) / 2);
    for (n, rows) in glyphs.iter().enumerate() {
        for (row, bits) in rows.iter().enumerate() {
            for col in (0..5).filter(|col| bits & (0x10 >> col) != 0) {
                let (x0, y0) = (left + (n * 6 + col) * SCALE, top + row * SCALE);
                for y in y0..y0 + SCALE {
                    let start = (y * SIZE + x0) * 4;
                    for pixel in pixels[start..start + SCALE * 4].chunks_exact_mut(4) {
                        pixel.copy_from_slice(&[255, 255, 255, 255]);
                    }
                }
            }
        }
    }

    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, SIZE as u32, SIZE as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let written = encoder.write_header().and_then(|mut writer| {
        writer.write_image_data(&pixels)?;
        writer.finish()
    });
    // Writing to a Vec cannot fail, and `pixels` holds exactly SIZE × SIZE RGBA pixels, so the
    // encoder has nothing to reject.
    written.expect("encoding an in-memory PNG of the declared size");
    png
}

#[cfg(test)]
mod tests;
