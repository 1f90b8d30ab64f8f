//! `--plot FILE.html`: every answer's latency over time, coloured by the version that
//! served it, with the alias's weight changes marked. One self-contained file of inline
//! SVG (no script, no fonts, no network), written by hand: a charting library would either
//! fetch from a CDN or embed far more than this needs.

use std::fmt::Write;
use std::time::Duration;

use crate::stats::{Report, Stats};

const W: f64 = 1000.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 44.0;
/// Beyond this many points the plot keeps every n-th one (and says so).
const MAX_POINTS: usize = 100_000;

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
const UNATTRIBUTED: &str = "#7f7f7f";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page. `title` names the target (stage or URL).
pub fn html(title: &str, stats: &Stats, report: &Report) -> String {
    let samples = stats.samples();
    let labels = stats.labels();
    let end = samples
        .iter()
        .map(|s| s.scheduled)
        .max()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_millis(1))
        .as_secs_f64();
    let (lo_ms, hi_ms) = samples.iter().fold((f64::MAX, 0.0f64), |(lo, hi), s| {
        let ms = (s.latency.as_secs_f64() * 1000.0).max(0.001);
        (lo.min(ms), hi.max(ms))
    });
    let (lo_ms, hi_ms) = if samples.is_empty() {
        (1.0, 10.0)
    } else {
        (lo_ms, hi_ms)
    };
    // Log scale in whole decades: a 1 ms server and a 500 ms stall on one readable axis.
    let lo_dec = lo_ms.log10().floor();
    let hi_dec = hi_ms.log10().ceil().max(lo_dec + 1.0);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |secs: f64| LEFT + secs / end * pw;
    let y = |ms: f64| TOP + ph - (ms.max(0.001).log10() - lo_dec) / (hi_dec - lo_dec) * ph;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>"##
    );
    // y: decades, with 2 and 5 between them.
    let mut dec = lo_dec;
    while dec <= hi_dec + 1e-9 {
        for m in [1.0, 2.0, 5.0] {
            let ms = 10f64.powf(dec) * m;
            if ms.log10() > hi_dec + 1e-9 {
                break;
            }
            let yy = y(ms);
            let (stroke, label) = if m == 1.0 {
                ("#ccc", true)
            } else {
                ("#eee", false)
            };
            let _ = write!(
                svg,
                r#"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="{stroke}"/>"#,
                LEFT + pw
            );
            if label || hi_dec - lo_dec <= 2.0 {
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                    LEFT - 6.0,
                    yy + 4.0,
                    ms_label(ms)
                );
            }
        }
        dec += 1.0;
    }
    // x: about ten steps of 1, 2 or 5 times a power of ten seconds.
    let step = nice_step(end / 10.0);
    let mut t = 0.0;
    while t <= end + 1e-9 {
        let xx = x(t);
        let _ = write!(
            svg,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{}" stroke="#eee"/><text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            trim_float(t)
        );
        t += step;
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since the start (each request at its scheduled time)</text>"#,
        LEFT + pw / 2.0,
        H - 8.0
    );
    let _ = write!(
        svg,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">latency (log scale, from the scheduled time)</text>"#,
        TOP + ph / 2.0
    );

    // One path per version (dots as zero-length round-capped strokes), failures as crosses.
    let stride = samples.len().div_ceil(MAX_POINTS).max(1);
    let groups = labels.len() + 1;
    let mut dots = vec![String::new(); groups];
    let mut crosses = vec![String::new(); groups];
    for s in samples.iter().step_by(stride) {
        let g = s.version.unwrap_or(labels.len());
        let (xx, yy) = (
            x(s.scheduled.as_secs_f64()),
            y(s.latency.as_secs_f64() * 1000.0),
        );
        if s.success {
            let _ = write!(dots[g], "M{xx:.1} {yy:.1}h0");
        } else {
            let _ = write!(crosses[g], "M{:.1} {:.1}l5 5m0 -5l-5 5", xx - 2.5, yy - 2.5);
        }
    }
    // Colours follow version order (the stable version, usually the lower number, first),
    // whatever order the answers came in; the biggest group is drawn first so that a small
    // canary stays visible on top of it.
    let mut by_version: Vec<usize> = (0..labels.len()).collect();
    by_version.sort_by(|a, b| crate::stats::version_order(&labels[*a], &labels[*b]));
    let colour = |g: usize| {
        if g == labels.len() {
            UNATTRIBUTED
        } else {
            let rank = by_version.iter().position(|x| *x == g).unwrap_or(g);
            COLOURS[rank % COLOURS.len()]
        }
    };
    let mut draw_order: Vec<usize> = (0..groups).collect();
    draw_order.sort_by_key(|g| std::cmp::Reverse(dots[*g].len() + crosses[*g].len()));
    for g in draw_order {
        if !dots[g].is_empty() {
            let _ = write!(
                svg,
                r#"<path class="v{g}" d="{}" stroke="{}" stroke-width="3.5" stroke-linecap="round" stroke-opacity="0.7" fill="none"/>"#,
                dots[g],
                colour(g)
            );
        }
        if !crosses[g].is_empty() {
            let _ = write!(
                svg,
                r#"<path class="v{g} failed" d="{}" stroke="{}" stroke-width="1.5" fill="none"/>"#,
                crosses[g],
                colour(g)
            );
        }
    }

    // Weight changes: a dashed line at each, labelled with the split from then on.
    for (i, c) in stats.splits().iter().enumerate() {
        let xx = x(c.at.as_secs_f64().min(end));
        let text: Vec<String> = c
            .split
            .0
            .iter()
            .map(|(v, w)| format!("v{v} {}%", trim_float(w * 100.0)))
            .collect();
        let _ = write!(
            svg,
            r##"<line class="weight-change" x1="{xx:.1}" x2="{xx:.1}" y1="{}" y2="{}" stroke="#000" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" font-size="11">{}{}</text>"##,
            TOP - 4.0,
            TOP + ph,
            xx + 3.0,
            TOP - 8.0 - 14.0 * (i % 2) as f64,
            if i == 0 { "alias: " } else { "→ " },
            escape(&text.join(" / "))
        );
    }

    // Legend, above the plot.
    let mut lx = LEFT;
    let ly = 16.0;
    let legend_order: Vec<usize> = by_version
        .iter()
        .copied()
        .chain(std::iter::once(labels.len()))
        .collect();
    for g in legend_order {
        let (name, count) = if g < labels.len() {
            let r = report.versions.get(&labels[g]);
            (
                format!(
                    "version {} ({:.1}%{})",
                    labels[g],
                    r.map_or(0.0, |r| r.share * 100.0),
                    // The same estimate as the report's table and the probe judge: its
                    // success counting the unattributed failures that were its own.
                    r.and_then(|r| r.success_estimated)
                        .map_or(String::new(), |e| format!(", ~{:.1}% success", e * 100.0))
                ),
                r.map_or(0, |r| r.requests),
            )
        } else {
            ("unattributed".to_string(), report.unattributed.requests)
        };
        if count == 0 {
            continue;
        }
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{ly}">{} · {count}</text>"#,
            ly - 9.0,
            colour(g),
            lx + 14.0,
            escape(&name)
        );
        lx += 40.0 + 7.0 * (name.len() + count.to_string().len()) as f64;
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{ly}" text-anchor="end">× failed</text>"#,
        W - RIGHT
    );
    svg += "</svg>";

    let l = report.latency_ms;
    let summary = format!(
        "{} requests at {:.1}/s (asked {:.1}/s), success {:.2}%{}",
        report.requests,
        report.rate,
        report.requested_rate,
        report.success * 100.0,
        l.map(|l| format!(
            ", p50 {} p99 {} max {}",
            ms_label(l.p50),
            ms_label(l.p99),
            ms_label(l.max)
        ))
        .unwrap_or_default()
    );
    let thinned = if stride > 1 {
        format!("<p>Every {stride}th answer is drawn; the figures count all of them.</p>")
    } else {
        String::new()
    };
    let warnings: String = report
        .warnings
        .iter()
        .map(|w| format!("<p class=\"warning\">⚠ {}</p>", escape(w)))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>probe: {t}</title>\
         <style>body{{font-family:sans-serif;margin:16px;color:#222}}h1{{font-size:18px}}\
         .warning{{color:#b00}}</style></head><body>\
         <h1>promote probe: {t}</h1><p>{s}</p>{warnings}{thinned}{svg}</body></html>\n",
        t = escape(title),
        s = escape(&summary),
    )
}

fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * p)
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{}s", trim_float(ms / 1000.0))
    } else if ms >= 1.0 {
        format!("{}ms", trim_float(ms))
    } else {
        format!("{}µs", trim_float(ms * 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Answer, Outcome, Split};

    fn stats() -> Stats {
        let mut s = Stats::new(10.0);
        s.split_from(
            Duration::ZERO,
            Split(vec![("3".into(), 0.9), ("4".into(), 0.1)]),
        );
        s.split_from(
            Duration::from_secs(2),
            Split(vec![("3".into(), 0.5), ("4".into(), 0.5)]),
        );
        for i in 0..40u64 {
            let (status, v) = match i % 4 {
                0 => (200, Some("4")),
                1 => (502, None),
                _ => (200, Some("3")),
            };
            s.record(&Outcome {
                seq: i,
                scheduled: Duration::from_millis(i * 100),
                sent: Some(Duration::from_millis(i * 100)),
                latency: Duration::from_millis(1 + i * 10),
                result: Ok(Answer {
                    status,
                    version: v.map(str::to_string),
                }),
            });
        }
        s
    }

    #[test]
    fn the_page_is_self_contained_and_marks_versions_and_weight_changes() {
        let s = stats();
        let page = html("live <stage>", &s, &s.report());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("live &lt;stage&gt;"), "titles are escaped");
        // Nothing is fetched: no script or stylesheet source, no link other than the SVG
        // namespace, which is an identifier and never requested.
        for fetch in ["src=", "href=", "@import", "url("] {
            assert!(!page.contains(fetch), "{fetch} in the page");
        }
        assert_eq!(page.matches("http").count(), 1, "only the SVG namespace");
        assert_eq!(page.matches("class=\"weight-change\"").count(), 2);
        assert!(page.contains("alias: v3 90% / v4 10%"), "{page}");
        assert!(page.contains("→ v3 50% / v4 50%"));
        // Version 3 (label 0), version 4 (label 1) and the unattributed 502s as crosses.
        assert!(page.contains(r#"class="v0""#) && page.contains(r#"class="v1""#));
        assert!(page.contains(r#"class="v2 failed""#));
        assert!(page.contains("unattributed · 10"));
        // The legend's success counts the 502s the split says were each version's: version 4
        // was due 12 (10% of 20, then 50% of 20) and answered 10; version 3 due 28, gave 20.
        assert!(page.contains("version 4 (33.3%, ~83.3% success)"), "{page}");
        assert!(page.contains("version 3 (66.7%, ~71.4% success)"), "{page}");
        assert_eq!(
            page.matches("h0").count(),
            30,
            "one dot per successful answer"
        );
    }

    #[test]
    fn axes_use_readable_steps() {
        assert_eq!(nice_step(0.37), 0.5);
        assert_eq!(nice_step(2.0), 2.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(ms_label(0.5), "500µs");
        assert_eq!(ms_label(250.0), "250ms");
        assert_eq!(ms_label(1500.0), "1.5s");
    }
}
