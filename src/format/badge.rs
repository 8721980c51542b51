//! Badges: small SVG images of the status and the uptime, in the look of
//! the "flat" badges people put in READMEs.
//!
//! Two rounded halves, the label on grey and the message on a colour,
//! white text with a one-pixel shadow. Each half is as wide as its text in
//! Verdana 11px (measured with a per-character width table, as badge
//! services do) plus 5px of padding on each side, rounded up to an odd
//! width so the text falls on the pixel grid. The image names itself
//! (`role="img"`, `aria-label`, `<title>`) as "label: message".

use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use http::StatusCode;

use super::Rendered;
use crate::report::Status;

/// Media type of a badge.
pub(crate) const MEDIA_TYPE: &str = "image/svg+xml";

/// The colours of a badge's message half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadgeColor {
    /// `#4c1`: all good.
    BrightGreen,
    /// `#97ca00`.
    Green,
    /// `#dfb317`.
    Yellow,
    /// `#fe7d37`.
    Orange,
    /// `#e05d44`.
    Red,
    /// `#007ec6`.
    Blue,
    /// `#9f9f9f`: no data.
    LightGrey,
}

impl BadgeColor {
    /// The colour as `#rgb` or `#rrggbb`.
    pub(crate) fn hex(self) -> &'static str {
        match self {
            BadgeColor::BrightGreen => "#4c1",
            BadgeColor::Green => "#97ca00",
            BadgeColor::Yellow => "#dfb317",
            BadgeColor::Orange => "#fe7d37",
            BadgeColor::Red => "#e05d44",
            BadgeColor::Blue => "#007ec6",
            BadgeColor::LightGrey => "#9f9f9f",
        }
    }

    /// The colour of a status: ok green, degraded orange, down red,
    /// maintenance blue.
    pub(crate) fn of_status(status: Status) -> Self {
        match status {
            Status::Ok => BadgeColor::BrightGreen,
            Status::Degraded => BadgeColor::Orange,
            Status::Down => BadgeColor::Red,
            Status::Maintenance => BadgeColor::Blue,
        }
    }

    /// The colour of an uptime in percent: from 99.9 bright green, from 99
    /// green, from 95 yellow, from 90 orange, below red; grey for no data.
    pub(crate) fn of_uptime(percent: Option<f64>) -> Self {
        match percent.filter(|p| !p.is_nan()) {
            None => BadgeColor::LightGrey,
            Some(p) if p >= 99.9 => BadgeColor::BrightGreen,
            Some(p) if p >= 99.0 => BadgeColor::Green,
            Some(p) if p >= 95.0 => BadgeColor::Yellow,
            Some(p) if p >= 90.0 => BadgeColor::Orange,
            Some(_) => BadgeColor::Red,
        }
    }
}

/// The label half's colour.
const LABEL_COLOR: &str = "#555";
/// Height of a badge, in pixels.
const HEIGHT: u32 = 20;
/// Space on each side of a text, in pixels.
const PADDING: u32 = 5;
/// Texts are drawn at 10 times their size and scaled down by 10, for
/// sub-pixel positions in whole numbers.
const SCALE: u32 = 10;

/// Advance widths of the printable ASCII characters (`' '` to `'~'`) in
/// Verdana at 11px, in tenths of a pixel.
const VERDANA_11: [u8; 95] = [
    39, 43, 50, 90, 70, 120, 80, 30, 50, 50, 70, 90, 40, 50, 40, 50, // ' ' to '/'
    70, 70, 70, 70, 70, 70, 70, 70, 70, 70, // '0' to '9'
    50, 50, 90, 90, 90, 60, 110, // ':' to '@'
    75, 75, 77, 85, 70, 63, 85, 83, 46, 50, 76, 61, 93, // 'A' to 'M'
    82, 87, 66, 87, 76, 75, 68, 81, 75, 110, 75, 68, 75, // 'N' to 'Z'
    50, 50, 50, 90, 70, 70, // '[' to '`'
    66, 69, 57, 69, 66, 39, 69, 70, 30, 38, 65, 30, 110, // 'a' to 'm'
    70, 67, 69, 69, 47, 57, 43, 70, 65, 90, 65, 65, 58, // 'n' to 'z'
    70, 50, 70, 90, // '{' to '~'
];

/// Width assumed for a character outside printable ASCII, in tenths of a
/// pixel: as wide as the widest letters, so that text is never clipped.
const OTHER_WIDTH: u32 = 110;

/// Width of `text` in Verdana 11px, in whole pixels, rounded up to an odd
/// number.
fn text_width(text: &str) -> u32 {
    let tenths: u32 = text
        .chars()
        .map(|c| match c {
            ' '..='~' => u32::from(VERDANA_11[c as usize - ' ' as usize]),
            c if c.is_control() => 0,
            _ => OTHER_WIDTH,
        })
        .sum();
    let pixels = tenths / 10;
    if pixels % 2 == 0 {
        pixels + 1
    } else {
        pixels
    }
}

/// Writes `text` escaped for XML and HTML (text and quoted attribute
/// values alike). Control characters other than tab and line breaks, which
/// neither allows, become U+FFFD.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// An uptime in percent as a badge or a page says it: rounded down to two
/// decimals (never `100%` unless it is), trailing zeros left out:
/// `99.95%`, `99.9%`, `100%`.
pub(crate) fn percent(value: f64) -> String {
    let value = if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 100.0)
    };
    // The epsilon keeps 99.95 (stored as 99.9499…) from becoming 99.94.
    // At most 10_000: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let hundredths = ((value * 100.0) + 1e-6).floor() as u64;
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    match fraction {
        0 => format!("{whole}%"),
        f if f % 10 == 0 => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    }
}

/// A badge: `label` on grey, `message` on `color`.
///
/// An empty label gives a badge of the message alone; tabs and line
/// breaks are spaces.
pub(crate) fn badge(label: &str, message: &str, color: BadgeColor) -> String {
    // One line: tabs and line breaks are spaces.
    let label = &label.replace(['\t', '\n', '\r'], " ");
    let message = &message.replace(['\t', '\n', '\r'], " ");
    let label_text = if label.is_empty() {
        0
    } else {
        text_width(label)
    };
    let message_text = text_width(message);
    let left = if label.is_empty() {
        0
    } else {
        label_text + 2 * PADDING
    };
    let right = message_text + 2 * PADDING;
    let width = left + right;
    let mut name = String::new();
    if !label.is_empty() {
        escape_into(&mut name, label);
        name.push_str(": ");
    }
    escape_into(&mut name, message);

    let mut svg = String::with_capacity(1024 + 2 * name.len());
    svg.push_str(&format!(
        concat!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" "##,
            r##"viewBox="0 0 {w} {h}" role="img" aria-label="{name}"><title>{name}</title>"##,
            r##"<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" "##,
            r##"stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>"##,
            r##"<clipPath id="r"><rect width="{w}" height="{h}" rx="3" fill="#fff"/></clipPath>"##,
            r##"<g clip-path="url(#r)">"##,
        ),
        w = width,
        h = HEIGHT,
        name = name,
    ));
    if left > 0 {
        svg.push_str(&format!(
            r##"<rect width="{left}" height="{HEIGHT}" fill="{LABEL_COLOR}"/>"##
        ));
    }
    svg.push_str(&format!(
        concat!(
            r##"<rect x="{left}" width="{right}" height="{h}" fill="{color}"/>"##,
            r##"<rect width="{w}" height="{h}" fill="url(#s)"/></g>"##,
            r##"<g fill="#fff" text-anchor="middle" "##,
            r##"font-family="Verdana,Geneva,DejaVu Sans,sans-serif" "##,
            r##"text-rendering="geometricPrecision" font-size="110">"##,
        ),
        left = left,
        right = right,
        w = width,
        h = HEIGHT,
        color = color.hex(),
    ));
    // The label's centre sits a pixel right of its half's, the message's a
    // pixel left of its own: the look of the badges this imitates.
    if left > 0 {
        text(
            &mut svg,
            label,
            SCALE * (PADDING + 1) + SCALE / 2 * label_text,
            label_text,
        );
    }
    if !message.is_empty() {
        let shift = if left > 0 { left - 1 } else { 0 };
        let centre = SCALE * (shift + PADDING) + SCALE / 2 * message_text;
        text(&mut svg, message, centre, message_text);
    }
    svg.push_str("</g></svg>");
    svg
}

/// A text of a badge and its shadow, centred at `x` (tenths of a pixel).
fn text(svg: &mut String, content: &str, x: u32, width: u32) {
    let length = SCALE * width;
    let mut escaped = String::with_capacity(content.len());
    escape_into(&mut escaped, content);
    svg.push_str(&format!(
        concat!(
            r##"<text aria-hidden="true" x="{x}" y="150" fill="#010101" fill-opacity=".3" "##,
            r##"transform="scale(.1)" textLength="{length}">{text}</text>"##,
            r##"<text x="{x}" y="140" transform="scale(.1)" textLength="{length}">{text}</text>"##,
        ),
        x = x,
        length = length,
        text = escaped,
    ));
}

/// The badge of an overall status: `status | ok` in the status's colour.
pub(crate) fn status_badge(status: Status) -> String {
    badge("status", status.as_str(), BadgeColor::of_status(status))
}

/// The badge of an uptime in percent: `uptime | 99.95%`, coloured by
/// [`BadgeColor::of_uptime`]; `uptime | no data` on grey for `None`.
pub(crate) fn uptime_badge(percent_up: Option<f64>) -> String {
    let percent_up = percent_up.filter(|p| !p.is_nan());
    let message = percent_up.map_or_else(|| "no data".to_owned(), percent);
    badge("uptime", &message, BadgeColor::of_uptime(percent_up))
}

/// A badge as a response, cached for `max_age` seconds by browsers and
/// by shared caches and image proxies (`max-age` and `s-maxage`; GitHub's
/// camo honours them). With `X-Content-Type-Options: nosniff` and a
/// `Content-Security-Policy` of `default-src 'none'`: opened on its own,
/// the image can load nothing and run nothing.
pub(crate) fn badge_response(svg: String, max_age: u32) -> Rendered {
    let cache = format!("max-age={max_age}, s-maxage={max_age}");
    let mut rendered = Rendered::new(StatusCode::OK, MEDIA_TYPE, svg)
        .header(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        )
        .header(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'"),
        );
    if let Ok(cache) = HeaderValue::from_str(&cache) {
        rendered.headers.insert(CACHE_CONTROL, cache);
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `svg` and checks what every badge must be; returns the
    /// accessible name and the texts drawn (shadows left out).
    fn check(svg: &str) -> (String, Vec<String>) {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        let number = |name: &str| -> u32 {
            root.attribute(name)
                .unwrap_or_else(|| panic!("no {name}"))
                .parse()
                .unwrap_or_else(|_| panic!("{name} is no whole number"))
        };
        let (width, height) = (number("width"), number("height"));
        assert_eq!(height, HEIGHT);
        assert!(width > 20, "{width}");
        assert_eq!(
            root.attribute("viewBox"),
            Some(format!("0 0 {width} {height}").as_str())
        );
        assert_eq!(root.attribute("role"), Some("img"));
        let name = root.attribute("aria-label").expect("aria-label").to_owned();
        let title = root
            .children()
            .find(|n| n.has_tag_name("title"))
            .expect("a title");
        assert_eq!(title.text(), Some(name.as_str()));
        // The halves fill the badge exactly.
        let rects: Vec<_> = root
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") != Some("url(#s)"))
            .filter(|n| n.parent().is_some_and(|p| p.has_tag_name("g")))
            .collect();
        let covered: u32 = rects
            .iter()
            .map(|r| r.attribute("width").unwrap().parse::<u32>().unwrap())
            .sum();
        assert_eq!(covered, width);
        let texts = root
            .descendants()
            .filter(|n| n.has_tag_name("text") && n.attribute("aria-hidden").is_none())
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect();
        (name, texts)
    }

    #[test]
    fn status_badges_parse_and_say_the_status() {
        for status in [
            Status::Ok,
            Status::Degraded,
            Status::Down,
            Status::Maintenance,
        ] {
            let svg = status_badge(status);
            let (name, texts) = check(&svg);
            assert_eq!(name, format!("status: {status}"));
            assert_eq!(texts, ["status", status.as_str()]);
            assert!(svg.contains(BadgeColor::of_status(status).hex()));
        }
    }

    #[test]
    fn uptime_badges_parse_and_say_the_uptime() {
        for (uptime, message, color) in [
            (Some(100.0), "100%", BadgeColor::BrightGreen),
            (Some(99.95), "99.95%", BadgeColor::BrightGreen),
            (Some(99.9), "99.9%", BadgeColor::BrightGreen),
            (Some(99.899), "99.89%", BadgeColor::Green),
            (Some(99.9999), "99.99%", BadgeColor::BrightGreen),
            (Some(99.0), "99%", BadgeColor::Green),
            (Some(97.5), "97.5%", BadgeColor::Yellow),
            (Some(92.0), "92%", BadgeColor::Orange),
            (Some(12.345), "12.34%", BadgeColor::Red),
            (Some(0.0), "0%", BadgeColor::Red),
            (None, "no data", BadgeColor::LightGrey),
            (Some(f64::NAN), "no data", BadgeColor::LightGrey),
        ] {
            let svg = uptime_badge(uptime);
            let (name, texts) = check(&svg);
            assert_eq!(name, format!("uptime: {message}"), "{uptime:?}");
            assert_eq!(texts, ["uptime", message]);
            assert!(svg.contains(color.hex()), "{uptime:?} {svg}");
        }
    }

    #[test]
    fn odd_text_is_escaped() {
        for (label, message) in [
            (r#"<&"'>"#, r#"</text><script>alert(1)</script>"#),
            ("a & b", "\"quoted\" 'single'"),
            ("ctrl\u{0}\u{1b}", "tab\tand\u{7f}del"),
            ("two\nlines", "cr\r\nlf"),
            ("ünïcödé ✓", "日本語"),
            ("", "message only"),
        ] {
            let svg = badge(label, message, BadgeColor::Blue);
            assert!(!svg.contains("<script"), "{svg}");
            let (name, texts) = check(&svg);
            let clean = |s: &str| {
                s.chars()
                    .map(|c| {
                        if matches!(c, '\t' | '\n' | '\r') {
                            ' '
                        } else if c.is_control() {
                            '\u{fffd}'
                        } else {
                            c
                        }
                    })
                    .collect::<String>()
            };
            let (label, message) = (clean(label), clean(message));
            if label.is_empty() {
                assert_eq!(name, message);
                assert_eq!(texts, [message]);
            } else {
                assert_eq!(name, format!("{label}: {message}"));
                assert_eq!(texts, [label, message]);
            }
        }
    }

    #[test]
    fn responses_say_how_long_to_cache() {
        let rendered = badge_response(status_badge(Status::Ok), 60);
        assert_eq!(rendered.status, StatusCode::OK);
        assert_eq!(rendered.headers["content-type"], MEDIA_TYPE);
        assert_eq!(rendered.headers["cache-control"], "max-age=60, s-maxage=60");
        assert_eq!(rendered.headers["x-content-type-options"], "nosniff");
        assert_eq!(
            rendered.headers["content-security-policy"],
            "default-src 'none'"
        );
        check(std::str::from_utf8(&rendered.body).unwrap());
    }

    #[test]
    fn widths_follow_the_text() {
        // "status" is 33.6px in Verdana 11px: 33, odd; "ok" 13.4px: 13.
        assert_eq!(text_width("status"), 33);
        assert_eq!(text_width("ok"), 13);
        // Even widths are rounded up to odd ones.
        assert_eq!(text_width("00"), 15);
        let svg = status_badge(Status::Ok);
        assert!(svg.contains(r#"width="66" height="20""#), "{svg}");
        // Longer messages make wider badges.
        let short = check(&badge("a", "b", BadgeColor::Red));
        let long = check(&badge("a", "bbbbbbbbbbbbbbbbbbbb", BadgeColor::Red));
        assert_ne!(short, long);
        let width = |svg: &str| {
            let doc = roxmltree::Document::parse(svg).unwrap();
            doc.root_element()
                .attribute("width")
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        assert!(
            width(&badge("a", "bbbbbbbbbbbbbbbbbbbb", BadgeColor::Red))
                > width(&badge("a", "b", BadgeColor::Red)) + 100
        );
    }
}
