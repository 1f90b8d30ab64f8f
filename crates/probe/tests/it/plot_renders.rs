//! The `--plot` page renders in a real browser: headless Chromium (Debian's `chromium`)
//! takes a screenshot of it, which must be a PNG of the window's size with far more drawn
//! on it than on a blank page of the same size. Offline: the page fetches nothing, and
//! Chromium's own background networking is switched off.
//!
//! Skipped, saying so, where no `chromium` is installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use probe::stats::{Answer, Outcome, Split, Stats};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 720;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// (width, height) from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn screenshot(browser: &Path, page: &Path, out: &Path, profile: &Path) -> Vec<u8> {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read(out).unwrap()
}

fn stats() -> Stats {
    let mut s = Stats::new(100.0);
    s.split_from(
        Duration::ZERO,
        Split(vec![("3".into(), 0.9), ("4".into(), 0.1)]),
    );
    s.split_from(
        Duration::from_secs(5),
        Split(vec![("3".into(), 0.5), ("4".into(), 0.5)]),
    );
    for i in 0..1000u64 {
        let at = Duration::from_millis(i * 10);
        let in_stall = (300..350).contains(&i);
        let latency = if in_stall {
            Duration::from_millis(3500 - i * 10 + 1)
        } else {
            Duration::from_micros(800 + (i * 37) % 900)
        };
        let (status, version) = match i % 10 {
            0 => (200, Some("4")),
            7 => (502, None),
            _ => (200, Some("3")),
        };
        s.record(&Outcome {
            seq: i,
            scheduled: at,
            sent: Some(at),
            latency,
            result: Ok(Answer {
                status,
                version: version.map(str::to_string),
            }),
        });
    }
    s
}

#[test]
fn the_plot_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED the_plot_renders_in_headless_chromium: no `chromium` on PATH \
             (Debian: apt-get install chromium)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("probe-plot-render-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = stats();
    let page = dir.join("plot.html");
    std::fs::write(&page, probe::plot::html("live (test)", &s, &s.report())).unwrap();
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();

    let profile = dir.join("profile");
    let shot = screenshot(&browser, &page, &dir.join("plot.png"), &profile);
    let empty = screenshot(&browser, &blank, &dir.join("blank.png"), &profile);
    // Keep the picture for a person to look at: PROBE_PLOT_SCREENSHOT=path.
    if let Some(keep) = std::env::var_os("PROBE_PLOT_SCREENSHOT") {
        std::fs::write(keep, &shot).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(png_size(&shot), (WIDTH, HEIGHT));
    // A blank page compresses to almost nothing; a thousand dots, axes and text do not.
    assert!(
        shot.len() > 10 * empty.len(),
        "the screenshot ({} bytes) is not much more than a blank page ({} bytes)",
        shot.len(),
        empty.len()
    );
}
