//! Secrets out of what a check shows: connection strings lose their
//! password before they reach an error, a `Debug` or a log line.

/// `target` as a check may show it: the `user:password@` (or token) of each
/// comma-separated URL replaced by `***@`, and the value of any
/// `password=` / `pass=` / `pwd=` / `secret=` / `token=` key, in a query
/// string or a libpq/ODBC-style `key=value` list, replaced by `***`.
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
    let userinfo_gone = target
        .split(',')
        .map(redact_userinfo)
        .collect::<Vec<_>>()
        .join(",");
    redact_keys(&userinfo_gone)
}

fn redact_userinfo(one: &str) -> String {
    let (scheme, rest) = match one.find("://") {
        Some(i) => one.split_at(i + 3),
        None => ("", one),
    };
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => one.to_owned(),
    }
}

const SECRET_KEYS: [&str; 6] = ["password", "passwd", "pass", "pwd", "secret", "token"];

/// Replaces the values of secret-looking keys in `k=v` lists separated by
/// `&`, `;` or whitespace.
fn redact_keys(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let before = &rest[..eq];
        let key_start = before
            .rfind(|c: char| c == '&' || c == ';' || c == '?' || c.is_whitespace())
            .map_or(0, |i| i + 1);
        let key = before[key_start..].trim().to_ascii_lowercase();
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        if SECRET_KEYS.contains(&key.as_str()) {
            // A quoted libpq value may hold spaces: `password='a b'`.
            let end = if let Some(quoted) = rest.strip_prefix('\'') {
                quoted.find('\'').map_or(rest.len(), |i| i + 2)
            } else {
                rest.find(|c: char| c == '&' || c == ';' || c == '#' || c.is_whitespace())
                    .unwrap_or(rest.len())
            };
            out.push_str("***");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
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
        ] {
            assert_eq!(redact(given), shown, "{given}");
        }
    }
}
