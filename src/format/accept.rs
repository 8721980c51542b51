//! `Accept` negotiation (RFC 9110 §12.5.1): how much a request wants each
//! media type on offer.
//!
//! The header is a list of media ranges (`type/subtype`, `type/*`, `*/*`),
//! each with parameters and a weight `q` from 0 to 1 (1 when left out; 0
//! means "not acceptable"); several `Accept` fields make one list, in
//! order. A media type on offer takes the weight of the most specific range
//! that matches it (`type/subtype` over `type/*` over `*/*`, then the range
//! with more parameters, then the first listed). Between two offers, the
//! higher weight wins, then the more specific range, then the range listed
//! first. Entries that do not parse, and fields that are not visible ASCII,
//! are skipped: the rest of the header still counts.
//!
//! Parameters match leniently: a range's parameter excludes an offer only
//! when the offer has that parameter with another value
//! (`text/plain;version=1.0.0` does not match `text/plain; version=0.0.4`,
//! but `text/csv;charset=utf-8` matches `text/csv`).

use std::cmp::Reverse;

use http::header::ACCEPT;
use http::HeaderMap;
use mediatype::{names, MediaType, MediaTypeList, Name, Value};

/// A parsed media type (of an offer), for [`Accept::preference`].
pub(crate) type Offer<'a> = MediaType<'a>;

/// `application/json`: what the default format is offered as.
pub(crate) const JSON: Offer<'static> = MediaType::new(names::APPLICATION, names::JSON);

/// Parses a media type on offer (`application/health+json`); `None` when
/// it is not one, and then no `Accept` header selects it.
pub(crate) fn offer(media_type: &str) -> Option<Offer<'_>> {
    MediaType::parse(media_type).ok()
}

/// Whether `offer` is `application/json`, whatever its parameters.
pub(crate) fn is_json(offer: &Offer<'_>) -> bool {
    offer.ty == JSON.ty && offer.subty == JSON.subty && offer.suffix.is_none()
}

/// How a range is written: `*/*`, `type/*` or `type/subtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Any,
    Type,
    Exact,
}

/// One media range of the header.
#[derive(Debug)]
struct Range<'a> {
    media: MediaType<'a>,
    /// Parameters before `q` (those after it are extensions, ignored).
    params: usize,
    level: Level,
    /// Weight in thousandths, 0..=1000.
    q: u16,
    /// Place in the header fields, from 0.
    order: usize,
}

impl Range<'_> {
    fn params(&self) -> &[(Name<'_>, Value<'_>)] {
        &self.media.params[..self.params]
    }

    /// Precedence among the ranges that match one offer.
    fn specificity(&self) -> (Level, usize) {
        (self.level, self.params)
    }

    fn matches(&self, offer: &Offer<'_>) -> bool {
        let kind = match self.level {
            Level::Any => true,
            Level::Type => self.media.ty == offer.ty,
            Level::Exact => {
                self.media.ty == offer.ty
                    && self.media.subty == offer.subty
                    && self.media.suffix == offer.suffix
            }
        };
        kind && self.params().iter().all(|(name, value)| {
            offer
                .params
                .iter()
                .filter(|(n, _)| n == name)
                .all(|(_, v)| {
                    v.unquoted_str()
                        .eq_ignore_ascii_case(value.unquoted_str().as_ref())
                })
        })
    }
}

/// How much a request wants an offer: greater is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Preference {
    /// Weight in thousandths, 1..=1000.
    q: u16,
    /// Of the range that gave the weight.
    specificity: (Level, usize),
    /// Of that range: listed earlier is better.
    order: Reverse<usize>,
}

/// The media ranges of a request's `Accept` fields.
#[derive(Debug)]
pub(crate) struct Accept<'a> {
    ranges: Vec<Range<'a>>,
}

impl<'a> Accept<'a> {
    /// Every well-formed range of every `Accept` field of `headers`, in order.
    pub(crate) fn from_headers(headers: &'a HeaderMap) -> Self {
        let entries = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|field| field.to_str().ok())
            .flat_map(MediaTypeList::new)
            .filter_map(Result::ok);
        let ranges = entries
            .filter_map(range)
            .enumerate()
            .map(|(order, mut range)| {
                range.order = order;
                range
            })
            .collect();
        Self { ranges }
    }

    /// Whether the request named no range at all (no `Accept`, or none that parses).
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How much the request wants `offer`; `None` when it is not acceptable
    /// (no range matches it, or the one that decides has `q=0`).
    pub(crate) fn preference(&self, offer: &Offer<'_>) -> Option<Preference> {
        let decides = self
            .ranges
            .iter()
            .filter(|r| r.matches(offer))
            .max_by_key(|r| (r.specificity(), Reverse(r.order)))?;
        (decides.q > 0).then_some(Preference {
            q: decides.q,
            specificity: decides.specificity(),
            order: Reverse(decides.order),
        })
    }
}

/// The range an entry stands for, when it is one: a wildcard type only
/// with a wildcard subtype, and a well-formed weight.
fn range(media: MediaType<'_>) -> Option<Range<'_>> {
    let any_subtype = media.subty == "*" && media.suffix.is_none();
    let level = match (media.ty == "*", any_subtype) {
        (true, true) => Level::Any,
        (true, false) => return None,
        (false, true) => Level::Type,
        (false, false) => Level::Exact,
    };
    let weight = media.params.iter().position(|(name, _)| name == "q");
    let q = match weight {
        Some(i) => qvalue(media.params[i].1.as_str())?,
        None => 1000,
    };
    Some(Range {
        params: weight.unwrap_or(media.params.len()),
        media,
        level,
        q,
        order: 0,
    })
}

/// A weight (`0`, `0.5`, `1.000`: at most three decimals, at most 1) in thousandths.
fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(ACCEPT, field.parse().unwrap());
        }
        headers
    }

    fn q_of(fields: &[&str], media_type: &str) -> Option<u16> {
        let headers = headers(fields);
        let accept = Accept::from_headers(&headers);
        accept.preference(&offer(media_type).unwrap()).map(|p| p.q)
    }

    #[test]
    fn weights() {
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("0."), Some(0));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.05"), Some(50));
        assert_eq!(qvalue("0.123"), Some(123));
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        for bad in [
            "", ".5", "1.5", "1.001", "2", "0.1234", "-0", "0,5", "abc", "\"1\"",
        ] {
            assert_eq!(qvalue(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_most_specific_range_gives_the_weight() {
        let accept = ["text/*;q=0.7, text/csv;q=0, */*;q=0.1, text/plain;version=1;q=0.9"];
        assert_eq!(q_of(&accept, "text/csv"), None);
        assert_eq!(q_of(&accept, "text/html"), Some(700));
        assert_eq!(q_of(&accept, "image/png"), Some(100));
        assert_eq!(q_of(&accept, "text/plain; version=1"), Some(900));
        // A parameter the offer does not have does not keep it out.
        assert_eq!(q_of(&accept, "text/plain"), Some(900));
        // One it has with another value does.
        assert_eq!(q_of(&accept, "text/plain; version=2"), Some(700));
        // Names and values of types and parameters, in any case.
        assert_eq!(
            q_of(&["TEXT/Plain;Version=\"1\";Q=0.3"], "text/plain;version=1"),
            Some(300)
        );
        // Between equally specific ranges, the first listed.
        assert_eq!(q_of(&["text/csv;q=0.2, text/csv"], "text/csv"), Some(200));
    }

    #[test]
    fn nothing_matches_nothing() {
        assert_eq!(q_of(&[], "text/csv"), None);
        assert_eq!(q_of(&["image/png"], "text/csv"), None);
        assert_eq!(q_of(&["application/*"], "text/csv"), None);
        assert!(Accept::from_headers(&headers(&[""])).is_empty());
    }

    #[test]
    fn malformed_entries_are_skipped_alone() {
        let headers = headers(&[
            "text/csv;q=2, nonsense, */html, text/, /csv, text/csv;q=abc, text/csv junk",
            "text/csv;q=0.4, application/json",
        ]);
        let accept = Accept::from_headers(&headers);
        let kept: Vec<_> = accept
            .ranges
            .iter()
            .map(|r| (r.media.to_string(), r.q, r.order))
            .collect();
        assert_eq!(
            kept,
            [
                ("text/csv; q=0.4".to_owned(), 400, 0),
                ("application/json".to_owned(), 1000, 1)
            ]
        );
    }

    #[test]
    fn extensions_after_the_weight_are_not_parameters() {
        assert_eq!(
            q_of(&["text/plain;q=0.5;version=1"], "text/plain; version=2"),
            Some(500)
        );
    }
}
