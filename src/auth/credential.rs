//! Reading the key a request carries, without panicking on any input.

use http::header::{HeaderName, AUTHORIZATION};
use http::HeaderMap;

/// The key of a request, or why it could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Credential<'a> {
    /// No key at all.
    None,
    /// A key.
    Key(&'a str),
    /// A header that is there but unusable.
    Malformed(&'static str),
}

/// The key from `header` (when configured) or, when `bearer`, from
/// `Authorization: Bearer`. The key header wins when both are there.
pub(crate) fn credential<'a>(
    headers: &'a HeaderMap,
    header: Option<&HeaderName>,
    bearer: bool,
) -> Credential<'a> {
    if let Some(name) = header {
        let mut values = headers.get_all(name).iter();
        if let Some(value) = values.next() {
            if values.next().is_some() {
                return Credential::Malformed("more than one API key header");
            }
            return match value.to_str().map(str::trim) {
                Ok("") => Credential::Malformed("the API key header is empty"),
                Ok(key) => Credential::Key(key),
                Err(_) => Credential::Malformed("the API key header is not valid text"),
            };
        }
    }
    if !bearer {
        return Credential::None;
    }
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Credential::None;
    };
    if values.next().is_some() {
        return Credential::Malformed("more than one Authorization header");
    }
    let Ok(text) = value.to_str() else {
        return Credential::Malformed("the Authorization header is not valid text");
    };
    let text = text.trim();
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credential::Malformed("only Bearer authorization is accepted");
    }
    match token.trim() {
        "" => Credential::Malformed("the Bearer token is missing"),
        token => Credential::Key(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &[u8])]) -> Credential<'static> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        let h: &'static HeaderMap = Box::leak(Box::new(h));
        credential(h, Some(&HeaderName::from_static("x-api-key")), true)
    }

    #[test]
    fn every_shape() {
        assert_eq!(read(&[]), Credential::None);
        assert_eq!(read(&[("x-api-key", b"k1")]), Credential::Key("k1"));
        assert_eq!(
            read(&[("authorization", b"Bearer k2")]),
            Credential::Key("k2")
        );
        assert_eq!(
            read(&[("authorization", b"bearer   k3 ")]),
            Credential::Key("k3")
        );
        assert_eq!(
            read(&[("x-api-key", b"k1"), ("authorization", b"Bearer k2")]),
            Credential::Key("k1")
        );
        assert!(matches!(
            read(&[("x-api-key", b"")]),
            Credential::Malformed(_)
        ));
        assert!(matches!(
            read(&[("x-api-key", b"\xff\xfe")]),
            Credential::Malformed(_)
        ));
        assert!(matches!(
            read(&[("x-api-key", b"a"), ("x-api-key", b"b")]),
            Credential::Malformed(_)
        ));
        assert!(matches!(
            read(&[("authorization", b"Bearer")]),
            Credential::Malformed(_)
        ));
        assert!(matches!(
            read(&[("authorization", b"Bearer ")]),
            Credential::Malformed(_)
        ));
        assert!(matches!(
            read(&[("authorization", b"Basic Zm9vOmJhcg==")]),
            Credential::Malformed(_)
        ));
        assert!(matches!(
            read(&[("authorization", b"\xc3\x28")]),
            Credential::Malformed(_)
        ));
    }
}
