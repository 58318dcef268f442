//! The frame every console page shares: the document head (stylesheets, scripts, the
//! viewport for phones), the navigation bar, and helpers for numbers, sizes and ages.

use maud::{html, Markup, DOCTYPE};

/// The sections of the console, in the order of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Topics,
    Groups,
}

impl Section {
    const ALL: [Section; 3] = [Section::Overview, Section::Topics, Section::Groups];

    fn title(self) -> &'static str {
        match self {
            Section::Overview => "Overview",
            Section::Topics => "Topics",
            Section::Groups => "Consumer groups",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Section::Overview => "/",
            Section::Topics => "/topics",
            Section::Groups => "/groups",
        }
    }
}

/// A whole page: `title` names it in the browser tab, `section` lights up the navigation,
/// `cluster_id` is shown at the right of the bar.
pub fn page(title: &str, section: Section, cluster_id: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · weir" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/uPlot.min.css";
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/uPlot.iife.min.js" defer {}
                script src="/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "weir" }
                    nav {
                        @for s in Section::ALL {
                            a href=(s.href()) class=[(s == section).then_some("current")] { (s.title()) }
                        }
                    }
                    span.cluster { "cluster " code { (cluster_id) } }
                }
                main { (body) }
            }
        }
    }
}

/// A labelled figure for the overview cards.
pub fn card(label: &str, value: impl maud::Render) -> Markup {
    html! {
        div.card {
            div.label { (label) }
            div.value { (value) }
        }
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size in bytes in the largest unit that keeps it at or above one: `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// An age in seconds as a person reads it: `0 s`, `45 s`, `12 min`, `3.5 h`, `2.0 d`.
pub fn age(seconds: f64) -> String {
    if seconds < 1.0 {
        "0 s".to_string()
    } else if seconds < 120.0 {
        format!("{} s", seconds.round())
    } else if seconds < 7_200.0 {
        format!("{} min", (seconds / 60.0).round())
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3_600.0)
    } else {
        format!("{:.1} d", seconds / 86_400.0)
    }
}

/// A group's status as a coloured badge; the class is the status itself.
pub fn status_badge(status: &str) -> Markup {
    html! { span class={ "status " (status) } { (status) } }
}

/// JSON pretty-printed when a value parses as JSON, else the text as is.
pub fn pretty_json(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if !(value.is_object() || value.is_array()) {
        return None;
    }
    serde_json::to_string_pretty(&value).ok()
}

/// Bytes as lowercase hex pairs separated by spaces, for values that are not text.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A time in milliseconds since the epoch as UTC: `2026-12-06 09:30:00.123`.
pub fn utc(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A path segment with everything but unreserved characters percent-encoded, so a group or
/// topic id with `/`, `?` or spaces links to itself.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: numbers, sizes and ages read as a person expects at each unit boundary.
    #[test]
    fn formats_numbers_sizes_and_ages() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(-1_234_567), "-1,234,567");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 + 1024 * 512), "5.5 MiB");
        assert_eq!(age(0.4), "0 s");
        assert_eq!(age(45.0), "45 s");
        assert_eq!(age(600.0), "10 min");
        assert_eq!(age(9_000.0), "2.5 h");
        assert_eq!(age(259_200.0), "3.0 d");
        assert_eq!(hex(&[0, 15, 255]), "00 0f ff");
        assert_eq!(
            pretty_json("{\"a\":1}").as_deref(),
            Some("{\n  \"a\": 1\n}")
        );
        assert_eq!(pretty_json("12"), None);
        assert_eq!(pretty_json("not json"), None);
        assert_eq!(urlencode("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
    }
}
