//! Secrets out of what a check shows: connection strings lose their
//! password before they reach an error, a `Debug` or a log line.

/// `target` (a URL, a connection string, or an error text holding them) as
/// a check may show it: the `user:password@` (or token) of every URL
/// replaced by `***@`, and the value of every key naming a secret
/// (`password`, `pwd`, `sslpassword`, `secret`, `client_secret`, `token`,
/// `access_token`, `api_key`, ...) in a URL's query or a libpq/ODBC-style
/// `key=value` list replaced by `***`. When in doubt it hides more.
///
/// ```
/// # use tower_status::check::redact;
/// assert_eq!(redact("postgres://app:s3cret@db:5432/app"), "postgres://***@db:5432/app");
/// assert_eq!(redact("host=db user=app password=s3cret"), "host=db user=app password=***");
/// assert_eq!(redact("redis://:s3cret@cache:6379/0?timeout=1"), "redis://***@cache:6379/0?timeout=1");
/// assert_eq!(redact("mysql://db/app?password=s3cret&ssl-mode=required"), "mysql://db/app?password=***&ssl-mode=required");
/// assert_eq!(redact("127.0.0.1:5432"), "127.0.0.1:5432");
/// ```
#[must_use]
pub fn redact(target: &str) -> String {
    redact_keys(&redact_userinfo(target))
}

/// Every `scheme://user:password@` in `text` becomes `scheme://***@`. The
/// userinfo ends at the last `@` before the URL ends (or the next `://`),
/// so a password holding `/`, `?`, `#` or `@` goes whole; an `@` later in
/// a path without a `:` before it (`http://h/x@y`) is left. A text that is
/// a single word without `://` (`token@host:4222,host2:4222`) loses what
/// precedes the `@` of each comma-separated server.
fn redact_userinfo(text: &str) -> String {
    if !text.contains("://") {
        if text.contains(char::is_whitespace) {
            return text.to_owned();
        }
        return text
            .split(',')
            .map(|one| match one.rfind('@') {
                Some(at) => format!("***{}", &one[at..]),
                None => one.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let after = found + 3;
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let mut end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if let Some(next) = rest[..end].find("://") {
            end = next;
        }
        if let Some(at) = rest[..end].rfind('@') {
            let userinfo = &rest[..at];
            if userinfo.contains(':') || !userinfo.contains('/') {
                out.push_str("***");
                rest = &rest[at..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether a `key=` names a secret: `password`, `PGPASSWORD`,
/// `sslpassword`, `pwd`, `client_secret`, `access_token`, `api_key`, ...
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api_key", "api-key",
    ]
    .iter()
    .any(|secret| key.ends_with(secret))
}

/// Replaces the values of secret keys in `k=v` lists: a URL's query, a
/// libpq list (whitespace) or an ODBC one (`;`) (spaces around `=` allowed, as libpq takes them);
/// a value quoted with `'` or `"` (with `\` escapes) or braced `{...}`
/// (ODBC) goes whole.
fn redact_keys(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let before = rest[..eq].trim_end();
        let separator = before
            .char_indices()
            .rev()
            .find(|&(_, c)| matches!(c, '&' | ';' | '?' | ',') || c.is_whitespace());
        let key_start = separator.map_or(0, |(i, c)| i + c.len_utf8());
        let secret = is_secret_key(&before[key_start..]);
        // In a URL's query `&` and `#` end a value; in a libpq or ODBC
        // list they may be part of it, and only whitespace or `;` end it.
        let in_query = matches!(separator, Some((_, '?' | '&')));
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        if !secret {
            continue;
        }
        let spaces = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..spaces]);
        rest = &rest[spaces..];
        out.push_str("***");
        rest = &rest[value_len(rest, in_query)..];
    }
    out.push_str(rest);
    out
}

/// The length of the value at the start of `s`.
fn value_len(s: &str, in_query: bool) -> usize {
    let mut chars = s.char_indices();
    let close = match chars.next() {
        Some((_, '\'')) => '\'',
        Some((_, '"')) => '"',
        Some((_, '{')) => '}',
        _ => {
            let ends = |c: char| {
                c.is_whitespace()
                    || if in_query {
                        matches!(c, '&' | '#')
                    } else {
                        c == ';'
                    }
            };
            return s.find(ends).unwrap_or(s.len());
        }
    };
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            escaped = false;
        } else if c == '\\' && close != '}' {
            escaped = true;
        } else if c == close {
            return i + c.len_utf8();
        }
    }
    // Unterminated: everything left is the value.
    s.len()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_survive() {
        for (given, shown) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://u:p@h:4222", "nats://***@h:4222"),
            ("tok@h:4222", "***@h:4222"),
            ("nats://a:b@h1:1,nats://h2:2", "nats://***@h1:1,nats://h2:2"),
            ("nats://h/x@y", "nats://h/x@y"),
            (
                "postgres://u:p%40ss@h/db?sslmode=require",
                "postgres://***@h/db?sslmode=require",
            ),
            (
                "host=h password='a b c' dbname=x",
                "host=h password=*** dbname=x",
            ),
            ("Server=h;Pwd=p;Database=x", "Server=h;Pwd=***;Database=x"),
            ("http://h/status?token=abc#x", "http://h/status?token=***#x"),
            ("password=", "password=***"),
            ("postgres://u:pa/ss@h/db", "postgres://***@h/db"),
            ("redis://:pa#ss@h:6379", "redis://***@h:6379"),
            ("postgres://u:p,ss@h/db", "postgres://***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://***@h/db"),
            (
                "host=h password = s3cret user=u",
                "host=h password = *** user=u",
            ),
            (
                "host=h password='a\\' b' user=u",
                "host=h password=*** user=u",
            ),
            (
                "host=h PASSWORD=\"a b\" user=u",
                "host=h PASSWORD=*** user=u",
            ),
            ("Server=h;Pwd={a;b};Db=x", "Server=h;Pwd=***;Db=x"),
            (
                "http://h/s?access_token=t&api_key=k&sslpassword=p&x=1",
                "http://h/s?access_token=***&api_key=***&sslpassword=***&x=1",
            ),
            (
                "proxy http://p:3128 refused; to http://u:s3cret@h:1 too",
                "proxy http://p:3128 refused; to http://***@h:1 too",
            ),
            (
                "Access denied for user 'app'@'127.0.0.1' (using password: YES)",
                "Access denied for user 'app'@'127.0.0.1' (using password: YES)",
            ),
            (
                "a\u{a0}password=x\u{3000}b=c",
                "a\u{a0}password=***\u{3000}b=c",
            ),
            (
                "host=h password=a&b#c,d user=u",
                "host=h password=*** user=u",
            ),
            ("http://h/x@y", "http://h/x@y"),
        ] {
            assert_eq!(redact(given), shown, "{given}");
        }
    }
}
