//! Decoding an upload and making its copies: the image's format from its bytes (not from what
//! the client says), its pixels bounded before they are allocated, and each copy resized and
//! encoded in that format. Pure: bytes in, bytes out (`routes` stores them).
use crate::contract::{self, MAX_PIXELS};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits};
use std::io::Cursor;
use thiserror::Error;

/// JPEG quality of the copies: libvips' default, the engine behind the seed's `sharp`.
pub const JPEG_QUALITY: u8 = 75;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImageError {
    #[error("the file is not a JPEG or PNG image (its first bytes match neither); send one")]
    NotAnImage,
    #[error("the file looks like a {0} but cannot be decoded ({1}); send an intact JPEG or PNG")]
    Corrupt(&'static str, String),
    #[error(
        "the image is {width}x{height}, over {MAX_PIXELS} pixels; send an image of at most 40 megapixels"
    )]
    TooManyPixels { width: u32, height: u32 },
    #[error("the {0} copy could not be encoded: {1}")]
    Encode(&'static str, String),
}

/// One encoded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// An upload, understood: its format and size, and its copies in `COPY_WIDTHS` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copies {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub copies: Vec<Encoded>,
}

/// The format by the file's magic bytes.
pub fn format_of(bytes: &[u8]) -> Result<Format, ImageError> {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(Format::Jpeg),
        Ok(ImageFormat::Png) => Ok(Format::Png),
        _ => Err(ImageError::NotAnImage),
    }
}

/// Decodes `bytes` (JPEG or PNG) with its dimensions checked against `MAX_PIXELS` from the
/// header, before any pixel buffer exists.
pub fn decode(bytes: &[u8]) -> Result<(Format, DynamicImage), ImageError> {
    let format = format_of(bytes)?;
    let corrupt = |e: image::ImageError| ImageError::Corrupt(format.name(), e.to_string());
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut limits = Limits::default();
    // The decoders' own allocations: the pixels of the largest accepted image in 16-bit RGBA.
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::TooManyPixels { width, height });
    }
    // A JPEG's EXIF orientation is applied, so that a portrait photo's copies are portrait.
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok((format, image))
}

/// The copy `width` pixels wide (aspect ratio kept). Shrinking an 8-bit image, each output
/// pixel is the mean of the input pixels it covers (`shrink`: no aliasing, one pass over the
/// input); otherwise (an image narrower than the copy, or 16-bit) image's `thumbnail`, which
/// averages the same way and interpolates when enlarging.
pub fn resize(image: &DynamicImage, width: u32) -> DynamicImage {
    let height = contract::copy_height(image.width(), image.height(), width);
    let (w, h) = (image.width(), image.height());
    if width > w || height > h {
        return image.thumbnail_exact(width, height);
    }
    let shrunk = |channels| shrink(image.as_bytes(), (w, h), channels, (width, height));
    let made = match image {
        DynamicImage::ImageLuma8(_) => {
            image::GrayImage::from_raw(width, height, shrunk(1)).map(DynamicImage::from)
        }
        DynamicImage::ImageLumaA8(_) => {
            image::GrayAlphaImage::from_raw(width, height, shrunk(2)).map(DynamicImage::from)
        }
        DynamicImage::ImageRgb8(_) => {
            image::RgbImage::from_raw(width, height, shrunk(3)).map(DynamicImage::from)
        }
        DynamicImage::ImageRgba8(_) => {
            image::RgbaImage::from_raw(width, height, shrunk(4)).map(DynamicImage::from)
        }
        _ => None,
    };
    made.unwrap_or_else(|| image.thumbnail_exact(width, height))
}

/// Area averaging of interleaved 8-bit pixels, `from` (w, h) to `to` (w, h), no larger in
/// either direction. Input row y goes to output row `y * to_h / from_h`, and column x to
/// `x * to_w / from_w`, so every input pixel counts once, in one output pixel.
///
/// Written here rather than taken from image's `thumbnail`: that one reads each pixel through
/// the generic `Pixel` accessors, and was two thirds of the time of making the copies of a
/// 12-megapixel JPEG (perf, bench/images.sh). `fast_image_resize` would do it with SIMD at
/// the cost of another large crate in every build.
pub fn shrink(src: &[u8], from: (u32, u32), channels: usize, to: (u32, u32)) -> Vec<u8> {
    match channels {
        1 => shrink_n::<1>(src, from, to),
        2 => shrink_n::<2>(src, from, to),
        3 => shrink_n::<3>(src, from, to),
        _ => shrink_n::<4>(src, from, to),
    }
}

fn shrink_n<const C: usize>(src: &[u8], from: (u32, u32), to: (u32, u32)) -> Vec<u8> {
    let (w, h) = (from.0 as usize, from.1 as usize);
    let (ow, oh) = (to.0 as usize, to.1 as usize);
    debug_assert!(ow <= w && oh <= h && ow > 0 && oh > 0);
    let column: Vec<usize> = (0..w).map(|x| x * ow / w * C).collect();
    let mut per_column = vec![0u64; ow];
    for x in 0..w {
        per_column[x * ow / w] += 1;
    }
    let mut out = vec![0u8; ow * oh * C];
    // Sums of one output row; u64, since a cell of a 40-megapixel image can hold more pixels
    // than u32 sums of 255 allow.
    let mut sums = vec![0u64; ow * C];
    let mut y = 0;
    for oy in 0..oh {
        let mut rows = 0u64;
        while y < h && y * oh / h == oy {
            let row = &src[y * w * C..(y + 1) * w * C];
            for (pixel, &at) in row.chunks_exact(C).zip(&column) {
                let cell = &mut sums[at..at + C];
                for k in 0..C {
                    cell[k] += u64::from(pixel[k]);
                }
            }
            rows += 1;
            y += 1;
        }
        let line = &mut out[oy * ow * C..(oy + 1) * ow * C];
        for (ox, (cell, total)) in line
            .chunks_exact_mut(C)
            .zip(sums.chunks_exact(C))
            .enumerate()
        {
            let n = per_column[ox] * rows;
            for k in 0..C {
                cell[k] = ((total[k] + n / 2) / n.max(1)) as u8;
            }
        }
        sums.fill(0);
    }
    out
}

/// `image` encoded as `format`. JPEG holds 8-bit grey or RGB only: anything else is converted
/// (an alpha channel is dropped, 16 bits become 8).
pub fn encode(image: &DynamicImage, format: Format) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let failed = |e: image::ImageError| ImageError::Encode(format.name(), e.to_string());
    match format {
        Format::Jpeg => {
            let converted;
            let image = match image {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
                other => {
                    converted = DynamicImage::ImageRgb8(other.to_rgb8());
                    &converted
                }
            };
            JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .write_image(
                    image.as_bytes(),
                    image.width(),
                    image.height(),
                    image.color().into(),
                )
                .map_err(failed)?;
        }
        Format::Png => {
            PngEncoder::new(&mut out)
                .write_image(
                    image.as_bytes(),
                    image.width(),
                    image.height(),
                    image.color().into(),
                )
                .map_err(failed)?;
        }
    }
    Ok(out)
}

/// Everything POST /images makes of an upload, before anything is stored.
pub fn make_copies(bytes: &[u8]) -> Result<Copies, ImageError> {
    let (format, image) = decode(bytes)?;
    let copies = contract::COPY_WIDTHS
        .iter()
        .map(|&width| {
            let copy = resize(&image, width);
            Ok(Encoded {
                width: copy.width(),
                height: copy.height(),
                bytes: encode(&copy, format)?,
            })
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    Ok(Copies {
        format,
        width: image.width(),
        height: image.height(),
        copies,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    /// A `w` x `h` gradient, encoded as `format`.
    pub(crate) fn sample(w: u32, h: u32, format: Format) -> Vec<u8> {
        let image = match format {
            Format::Jpeg => DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
                Rgb([(x % 256) as u8, (y % 256) as u8, 128])
            })),
            Format::Png => DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
                Rgba([(x % 256) as u8, (y % 256) as u8, 128, 200])
            })),
        };
        encode(&image, format).unwrap()
    }

    fn decoded(bytes: &[u8]) -> (ImageFormat, u32, u32) {
        let format = image::guess_format(bytes).unwrap();
        let image = image::load_from_memory_with_format(bytes, format).unwrap();
        (format, image.width(), image.height())
    }

    #[test]
    fn a_jpeg_gets_jpeg_copies_200_and_75_wide() {
        let made = make_copies(&sample(800, 600, Format::Jpeg)).unwrap();
        assert_eq!(
            (made.format, made.width, made.height),
            (Format::Jpeg, 800, 600)
        );
        let sizes: Vec<_> = made.copies.iter().map(|c| decoded(&c.bytes)).collect();
        assert_eq!(
            sizes,
            [(ImageFormat::Jpeg, 200, 150), (ImageFormat::Jpeg, 75, 56)]
        );
        assert_eq!((made.copies[0].width, made.copies[0].height), (200, 150));
    }

    #[test]
    fn a_png_gets_png_copies_with_its_alpha() {
        let made = make_copies(&sample(300, 900, Format::Png)).unwrap();
        assert_eq!(made.format, Format::Png);
        let sizes: Vec<_> = made.copies.iter().map(|c| decoded(&c.bytes)).collect();
        assert_eq!(
            sizes,
            [(ImageFormat::Png, 200, 600), (ImageFormat::Png, 75, 225)]
        );
        let copy = image::load_from_memory(&made.copies[1].bytes).unwrap();
        assert!(copy.color().has_alpha());
    }

    /// A photo taken with the camera turned: 400x100 pixels stored, EXIF orientation 6 (rotate
    /// 90 degrees clockwise to view). Its copies are portrait, as every viewer shows it.
    #[test]
    fn a_jpegs_exif_orientation_is_applied_before_the_copies() {
        // A little-endian TIFF header and one IFD entry: Orientation (0x0112), SHORT, 1, 6.
        let exif: Vec<u8> = [
            &b"II*\0"[..],
            &8u32.to_le_bytes(),
            &1u16.to_le_bytes(),
            &0x0112u16.to_le_bytes(),
            &3u16.to_le_bytes(),
            &1u32.to_le_bytes(),
            &6u16.to_le_bytes(),
            &[0, 0],
            &0u32.to_le_bytes(),
        ]
        .concat();
        let stored = RgbImage::from_fn(400, 100, |x, _| Rgb([if x < 200 { 250 } else { 5 }, 9, 9]));
        let mut jpeg = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 90);
        encoder.set_exif_metadata(exif).unwrap();
        encoder
            .write_image(stored.as_raw(), 400, 100, image::ExtendedColorType::Rgb8)
            .unwrap();
        let made = make_copies(&jpeg).unwrap();
        assert_eq!((made.width, made.height), (100, 400));
        let sizes: Vec<_> = made.copies.iter().map(|c| decoded(&c.bytes)).collect();
        assert_eq!(
            sizes,
            [(ImageFormat::Jpeg, 200, 800), (ImageFormat::Jpeg, 75, 300)]
        );
        // Turned clockwise, the stored left half (red) is the top.
        let copy = image::load_from_memory(&made.copies[0].bytes)
            .unwrap()
            .to_rgb8();
        assert!(
            copy.get_pixel(100, 100).0[0] > 200,
            "{:?}",
            copy.get_pixel(100, 100)
        );
        assert!(
            copy.get_pixel(100, 700).0[0] < 50,
            "{:?}",
            copy.get_pixel(100, 700)
        );
    }

    #[test]
    fn a_narrow_image_is_enlarged_to_the_widths() {
        let made = make_copies(&sample(50, 20, Format::Png)).unwrap();
        let sizes: Vec<_> = made.copies.iter().map(|c| (c.width, c.height)).collect();
        assert_eq!(sizes, [(200, 80), (75, 30)]);
    }

    #[test]
    fn the_copies_average_the_pixels_they_cover() {
        // Left half black, right half white: the copy's left edge stays black, its right
        // edge white, and no pixel is outside the two.
        let image = DynamicImage::ImageLuma8(image::GrayImage::from_fn(800, 100, |x, _| {
            image::Luma([if x < 400 { 0 } else { 255 }])
        }));
        let copy = resize(&image, 200).to_luma8();
        assert_eq!(copy.dimensions(), (200, 25));
        assert_eq!(copy.get_pixel(0, 10).0[0], 0);
        assert_eq!(copy.get_pixel(199, 10).0[0], 255);
        assert_eq!(copy.get_pixel(99, 10).0[0], 0);
        assert_eq!(copy.get_pixel(100, 10).0[0], 255);
    }

    #[test]
    fn shrinking_averages_each_block_once() {
        // 4x2 RGB: two 2x2 blocks, one of 0/100 and one of 200/255, to 2x1.
        let src: Vec<u8> = [0, 100, 200, 255, 100, 0, 255, 200]
            .iter()
            .flat_map(|&v| [v, v, 7])
            .collect();
        assert_eq!(shrink(&src, (4, 2), 3, (2, 1)), [50, 50, 7, 228, 228, 7]);
        // Uneven: 5 columns to 2 (3 + 2), 3 rows to 1.
        let grey = [10, 20, 30, 40, 50, 10, 20, 30, 40, 50, 10, 20, 30, 40, 50];
        assert_eq!(shrink(&grey, (5, 3), 1, (2, 1)), [20, 45]);
        assert_eq!(
            shrink(&grey, (5, 3), 1, (5, 3)),
            grey,
            "same size is a copy"
        );
    }

    #[test]
    fn every_8_bit_layout_keeps_its_channels() {
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(400, 100, Rgba([1, 2, 3, 4])));
        let copy = resize(&rgba, 200);
        assert_eq!(copy.color(), image::ColorType::Rgba8);
        assert_eq!(copy.to_rgba8().get_pixel(17, 13).0, [1, 2, 3, 4]);
        let la = DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_pixel(
            300,
            300,
            image::LumaA([9, 99]),
        ));
        let copy = resize(&la, 75);
        assert_eq!((copy.width(), copy.height()), (75, 75));
        assert_eq!(copy.to_luma_alpha8().get_pixel(74, 74).0, [9, 99]);
        let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
            400,
            400,
            Rgb([1000u16, 2000, 3000]),
        ));
        assert_eq!(resize(&deep, 200).color(), image::ColorType::Rgb16);
    }

    #[test]
    fn not_an_image_is_refused_by_its_bytes() {
        assert_eq!(make_copies(b"hello, world"), Err(ImageError::NotAnImage));
        assert_eq!(make_copies(b"GIF89a......"), Err(ImageError::NotAnImage));
        assert_eq!(make_copies(b""), Err(ImageError::NotAnImage));
        let mut truncated = sample(64, 64, Format::Png);
        truncated.truncate(60);
        assert!(matches!(
            make_copies(&truncated),
            Err(ImageError::Corrupt("png", _))
        ));
        let mut jpeg = sample(64, 64, Format::Jpeg);
        jpeg.truncate(8);
        assert!(matches!(
            make_copies(&jpeg),
            Err(ImageError::Corrupt("jpeg", _))
        ));
    }

    /// CRC-32 (IEEE), to write a PNG chunk the decoder accepts.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A PNG whose header claims 100000 x 100000 pixels, with a few bytes of data: refused
    /// from the header, before 40 GB are asked for.
    #[test]
    fn a_decompression_bomb_is_refused_from_its_header() {
        let mut bomb = sample(1, 1, Format::Png);
        // The IHDR chunk: length (8..12), type (12..16), width, height (16..24), CRC at 29.
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            make_copies(&bomb),
            Err(ImageError::TooManyPixels {
                width: 100_000,
                height: 100_000
            })
        );
    }
}
