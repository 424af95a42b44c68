use super::*;
use crate::model::listing::LogoProblem;

fn message(result: Result<&'static str, AppError>) -> String {
    match result {
        Err(AppError::Invalid { field, message }) if field == "logo" => message,
        other => panic!("expected an invalid logo, got {other:?}"),
    }
}

fn encode_gray(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().unwrap();
    let row = (width as usize).div_ceil(8);
    writer
        .write_image_data(&vec![0; row * height as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

/// SOI, a JFIF APP0 segment, a baseline frame header (64 high, 48 wide, 3 components), EOI.
fn minimal_jpeg() -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    jpeg.extend_from_slice(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x40, 0x00, 0x30, 0x03]);
    jpeg.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    jpeg
}

fn webp(chunk: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(4 + 8 + payload.len() as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBP");
    webp.extend_from_slice(chunk);
    webp.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    webp.extend_from_slice(payload);
    webp
}

#[test]
fn generated_logos_are_valid_128px_pngs() {
    for (seed, label) in (0..).zip(["Acme CRM", "stripe", "", "Ünïon 42", "!!", "x"]) {
        let png = generate_png(label, seed);
        assert_eq!(check(&png).unwrap(), "image/png");
        assert_eq!(png_size(&png), Some((128, 128)));
    }
    assert_ne!(generate_png("A", 0), generate_png("A", 1));
}

#[test]
fn initials_are_first_letters_of_the_first_two_words() {
    assert_eq!(initials("Acme CRM sync"), ['A', 'C']);
    assert_eq!(initials("hub-spot"), ['H', 'S']);
    assert_eq!(initials("Ünïon 42"), ['N', '4']);
    assert_eq!(initials("stripe"), ['S']);
    assert!(initials("日本 !!").is_empty());
}

#[test]
fn text_named_like_a_png_is_refused() {
    assert_eq!(
        classify(b"just some text in a file called logo.png"),
        Err(LogoProblem::NotImage)
    );
    let msg = message(check(b"just some text in a file called logo.png"));
    assert!(msg.contains("not a PNG, JPEG or WebP image"), "{msg}");
    let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
    fake.extend_from_slice(b"not really chunks");
    assert_eq!(classify(&fake), Err(LogoProblem::NotImage));
}

#[test]
fn svg_is_refused_because_it_can_carry_scripts() {
    for svg in [
        "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        "\u{feff}  <svg onload=\"alert(1)\"><script>alert(2)</script></svg>",
        "<!-- logo --><svg viewBox=\"0 0 1 1\"></svg>",
    ] {
        assert!(
            message(check(svg.as_bytes())).contains("SVG can carry scripts")
                && classify(svg.as_bytes()) == Err(LogoProblem::Svg),
            "{svg}"
        );
    }
}

#[test]
fn empty_and_oversized_files_are_refused() {
    assert_eq!(classify(b""), Err(LogoProblem::Missing));
    let mut big = generate_png("Big", 0);
    big.resize(600 * 1024, 0);
    assert_eq!(classify(&big), Err(LogoProblem::TooLarge));
    assert!(message(check(&big)).contains("512 KiB"));
    big.truncate(MAX_LOGO_BYTES + 1);
    assert_eq!(classify(&big), Err(LogoProblem::TooLarge));
    big.truncate(MAX_LOGO_BYTES);
    assert_ne!(
        classify(&big),
        Err(LogoProblem::TooLarge),
        "512 KiB exactly is allowed"
    );
}

#[test]
fn dimensions_must_be_between_16_and_4096_pixels() {
    let bomb = encode_gray(5000, 5000);
    assert!(bomb.len() < MAX_LOGO_BYTES, "a small file of 25 megapixels");
    assert_eq!(classify(&bomb), Err(LogoProblem::Dimensions));
    assert_eq!(classify(&encode_gray(8, 64)), Err(LogoProblem::Dimensions));
    assert_eq!(check(&encode_gray(16, 4096)).unwrap(), "image/png");
}

#[test]
fn jpeg_is_judged_by_its_frame_header() {
    let jpeg = minimal_jpeg();
    assert_eq!(jpeg_size(&jpeg), Some((48, 64)));
    assert_eq!(check(&jpeg).unwrap(), "image/jpeg");
    // The SOI marker alone is not enough: no frame header, no logo.
    for fake in [
        &b"\xFF\xD8\xFF\xE0garbage garbage"[..],
        b"\xFF\xD8\xFF\xD9",
        b"\xFF\xD8\xFF",
    ] {
        assert_eq!(classify(fake), Err(LogoProblem::NotImage));
    }
}

#[test]
fn webp_is_judged_by_its_riff_header() {
    // Lossless, 64×32: signature, then width-1 and height-1 in 14 bits each.
    let bits: u32 = 63 | (31 << 14);
    let mut lossless = vec![0x2F];
    lossless.extend_from_slice(&bits.to_le_bytes());
    assert_eq!(check(&webp(b"VP8L", &lossless)).unwrap(), "image/webp");
    assert_eq!(webp_size(&webp(b"VP8L", &lossless)), Some((64, 32)));
    // Extended, 5000×100: refused as too large.
    let extended = [0, 0, 0, 0, 0x87, 0x13, 0, 99, 0, 0];
    assert_eq!(
        classify(&webp(b"VP8X", &extended)),
        Err(LogoProblem::Dimensions)
    );
    // Lossy, 200×100.
    let lossy = [0, 0, 0, 0x9D, 0x01, 0x2A, 200, 0, 100, 0];
    assert_eq!(webp_size(&webp(b"VP8 ", &lossy)), Some((200, 100)));
    assert_eq!(
        classify(&webp(b"ABCD", &lossless)),
        Err(LogoProblem::NotImage)
    );
}

#[test]
fn hash_is_lowercase_sha256_hex_and_url_uses_it() {
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(hash(b""), empty);
    assert!(is_hash(empty));
    assert!(!is_hash(&empty.to_uppercase()) && !is_hash("../logos") && !is_hash(&empty[1..]));
    assert_eq!(url(empty), format!("/logos/{empty}"));
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from logos")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "../migrations")]
async fn storing_the_same_logo_twice_keeps_one_row(pool: PgPool) {
    let png = generate_png("Twice", 3);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(store(&mut conn, &png).await.unwrap(), hash(&png));
    assert_eq!(store(&mut conn, &png).await.unwrap(), hash(&png));
    assert_eq!(count(&pool).await, 1);
}

#[sqlx::test(migrations = "../migrations")]
async fn load_returns_the_content_type_and_bytes(pool: PgPool) {
    let jpeg = minimal_jpeg();
    let mut conn = pool.acquire().await.unwrap();
    let stored = store(&mut conn, &jpeg).await.unwrap();
    let loaded = load(&pool, &stored).await.unwrap();
    assert_eq!(loaded, Some(("image/jpeg".to_owned(), jpeg)));
    assert_eq!(load(&pool, &hash(b"unknown")).await.unwrap(), None);
}

#[sqlx::test(migrations = "../migrations")]
async fn invalid_logos_and_hashes_never_reach_the_table(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    let refused = store(&mut conn, b"<svg/>").await;
    assert!(matches!(refused, Err(AppError::Invalid { .. })));
    assert_eq!(count(&pool).await, 0);
    let upper = hash(b"x").to_uppercase();
    for bad in ["", "abc", "../../etc/passwd", &upper, &"g".repeat(64)] {
        assert_eq!(load(&pool, bad).await.unwrap(), None, "{bad}");
    }
}
