//! What bench/images.sh times: the function's own code (`copies::make_copies`) on one file,
//! in one process, writing the two copies next to where it is told.
//!   copies <input> <output-prefix>    writes <output-prefix>_200 and <output-prefix>_75
//!   copies --sample <w>x<h> <out.jpg|out.png>
//!                                     writes a deterministic photo-like test image
use images::contract::COPY_WIDTHS;
use images::copies::{self, Format};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [flag, size, out] if flag == "--sample" => sample(size, out),
        [input, prefix] => make(input, prefix),
        _ => Err(
            "usage: copies <input> <output-prefix> | copies --sample <w>x<h> <out.jpg|out.png>"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copies: {e}");
            ExitCode::FAILURE
        }
    }
}

fn make(input: &str, prefix: &str) -> Result<(), String> {
    let bytes = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let made = copies::make_copies(&bytes).map_err(|e| format!("{input}: {e}"))?;
    for (width, copy) in COPY_WIDTHS.iter().zip(made.copies) {
        let path = format!("{prefix}_{width}");
        std::fs::write(&path, copy.bytes).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// Smooth waves (a photo's large areas) under a little deterministic noise (its texture), so
/// that the encoded file's size and the decoder's work resemble a photograph's.
fn sample(size: &str, out: &str) -> Result<(), String> {
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| format!("{size:?} is not <width>x<height>"))?;
    let mut seed = 0x2545_f491_u32;
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed % 24) as f32 - 12.0;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let wave = |a: f32, b: f32, c: f32| {
            let v = 128.0 + 100.0 * ((fx * a + fy * b) * std::f32::consts::TAU + c).sin() + noise;
            v.clamp(0.0, 255.0) as u8
        };
        image::Rgb([
            wave(3.0, 1.0, 0.0),
            wave(1.0, 4.0, 1.0),
            wave(5.0, -2.0, 2.0),
        ])
    });
    let format = match out.rsplit('.').next() {
        Some("png") => Format::Png,
        Some("jpg" | "jpeg") => Format::Jpeg,
        _ => return Err(format!("{out}: name it .jpg or .png")),
    };
    let image = image::DynamicImage::ImageRgb8(image);
    let bytes = match format {
        // A camera's quality, not the copies' 75.
        Format::Jpeg => {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
                .encode_image(&image)
                .map_err(|e| e.to_string())?;
            bytes
        }
        Format::Png => copies::encode(&image, format).map_err(|e| e.to_string())?,
    };
    std::fs::write(out, bytes).map_err(|e| format!("{out}: {e}"))
}
