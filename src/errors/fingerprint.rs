//! Grouping: which reports are "the same error".
//!
//! SPEC.md keys a group on (error_type, message, source). Taken literally, every message that
//! embeds an id (`user 4711 not found`, `timeout after 1503 ms`) would be a group of its own, so,
//! like Sentry, the message is first *normalised*: the parts that vary between occurrences of one
//! bug are replaced by placeholders, and the key is a hash of (error_type, source, normalised
//! message). A client that knows better sends its own `fingerprint`, which replaces message and
//! source in the key, but never the error type: two different error types never merge.
//!
//! Replaced, in this order of preference at each position (leftmost match wins):
//! URLs `<url>`, e-mail addresses `<email>`, UUIDs `<uuid>`, dates and times `<date>`, IPv4
//! addresses (with port) `<ip>`, paths of two or more segments `<path>`, quoted values
//! (`'…'`, `"…"`, `` `…` ``) `'<str>'`, hex (`0x…`, or 8+ hex digits with a digit in them)
//! `<hex>`, and any other run of digits `<num>`.

use regex::{Captures, Regex};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Bumped if the rules change in a way that must not merge old and new keys.
const KEY_VERSION: &str = "v1";

/// Longest normalised message kept as a group's title (the hash covers all of it).
pub const MAX_TITLE: usize = 500;

static VARYING: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a constant pattern, covered by the tests below
    Regex::new(
        r#"(?x)
          (?P<url>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'"<>]+)
        | (?P<email>\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+)
        | (?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
        | (?P<date>\b\d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?)
        | (?P<ip>\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b)
        | (?P<path>(?:\b[A-Za-z]:|~|\.{1,2})?(?:[/\\][\w.\-@+]+){2,}[/\\]?)
        | (?P<quoted>(?:^|[^\w])(?:'[^'\n]*'|"[^"\n]*"|`[^`\n]*`))
        | (?P<hex>\b0[xX][0-9a-fA-F]+\b|\b[0-9a-fA-F]{8,}\b)
        | (?P<num>\d+(?:\.\d+)?)
        "#,
    )
    .expect("valid pattern")
});

fn placeholder(c: &Captures<'_>) -> String {
    let named = |n: &str| c.name(n).is_some();
    if named("url") {
        "<url>".into()
    } else if named("email") {
        "<email>".into()
    } else if named("uuid") {
        "<uuid>".into()
    } else if named("date") {
        "<date>".into()
    } else if named("ip") {
        "<ip>".into()
    } else if named("path") {
        "<path>".into()
    } else if let Some(q) = c.name("quoted") {
        // The match may start with the character before the quote (which is kept).
        let s = q.as_str();
        let quote_at = s.find(['\'', '"', '`']).unwrap_or(0);
        let (before, rest) = s.split_at(quote_at);
        let mark = rest.chars().next().unwrap_or('\'');
        format!("{before}{mark}<str>{mark}")
    } else if let Some(h) = c.name("hex") {
        let s = h.as_str();
        // A word of hex letters only ("deadbeef", "facade12" has a digit) is a word.
        if s.starts_with("0x") || s.starts_with("0X") || s.bytes().any(|b| b.is_ascii_digit()) {
            "<hex>".into()
        } else {
            s.to_string()
        }
    } else {
        "<num>".into()
    }
}

/// The message with its varying parts replaced by placeholders, whitespace runs collapsed.
pub fn normalise(message: &str) -> String {
    let replaced = VARYING.replace_all(message, placeholder);
    let mut out = String::with_capacity(replaced.len());
    for (i, word) in replaced.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    // 128 bits: collisions are not a practical concern for error groups.
    hex::encode(&h.finalize()[..16])
}

/// The group key of a report: from the client's fingerprint when given, else from the
/// normalised message and the source. The error type is always part of it.
pub fn fingerprint(
    error_type: &str,
    source: &str,
    normalised: &str,
    client: Option<&str>,
) -> String {
    match client {
        Some(fp) => digest(&[KEY_VERSION, "client", error_type, fp]),
        None => digest(&[KEY_VERSION, "message", error_type, source, normalised]),
    }
}

/// A title cut to [`MAX_TITLE`] characters (on a character boundary).
pub fn title(normalised: &str) -> String {
    match normalised.char_indices().nth(MAX_TITLE) {
        Some((i, _)) => format!("{}…", &normalised[..i]),
        None => normalised.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_values_become_placeholders() {
        let cases = [
            ("user 4711 not found", "user <num> not found"),
            ("timeout after 1503.5 ms", "timeout after <num> ms"),
            (
                "order 0b9a3f1e-5c7d-4e2a-9f00-1234567890ab failed",
                "order <uuid> failed",
            ),
            ("bad pointer 0x7ffe1234", "bad pointer <hex>"),
            ("commit 3f9a8c7d2e1b not found", "commit <hex> not found"),
            ("KeyError: 'user_id'", "KeyError: '<str>'"),
            (r#"no column named "email2""#, r#"no column named "<str>""#),
            ("can't open `cfg.toml`", "can't open `<str>`"),
            (
                "open /var/lib/app/data-17.db: permission denied",
                "open <path>: permission denied",
            ),
            (r"cannot read C:\Users\bob\a.txt", "cannot read <path>"),
            (
                "mail to bob.smith+x@example.co.uk bounced",
                "mail to <email> bounced",
            ),
            ("connect 10.0.0.12:5432 refused", "connect <ip> refused"),
            (
                "GET https://api.example.com/v1/users/12?x=1 -> 502",
                "GET <url> -> <num>",
            ),
            ("at 2026-11-26T13:17:10.123Z job died", "at <date> job died"),
            ("  many   spaces\there ", "many spaces here"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise(raw), want, "normalising {raw:?}");
        }
    }

    #[test]
    fn words_and_contractions_survive() {
        assert_eq!(
            normalise("can't connect: deadbeef"),
            "can't connect: deadbeef"
        );
        assert_eq!(
            normalise("and/or failed in utf-8 decoder"),
            "and/or failed in utf-<num> decoder"
        );
        assert_eq!(normalise("don't 'quote' me"), "don't '<str>' me");
    }

    #[test]
    fn id_only_variants_share_a_key_and_types_never_merge() {
        let key = |t: &str, m: &str| fingerprint(t, "api", &normalise(m), None);
        let a = key("NotFound", "user 12 missing in shard 3");
        assert_eq!(a, key("NotFound", "user 99812 missing in shard 7"));
        assert_ne!(a, key("Missing", "user 12 missing in shard 3"));
        assert_ne!(
            a,
            fingerprint(
                "NotFound",
                "web",
                &normalise("user 1 missing in shard 1"),
                None
            )
        );
        // A client fingerprint replaces message and source, never the type.
        let c1 = fingerprint("Timeout", "a", "x", Some("db-timeouts"));
        assert_eq!(c1, fingerprint("Timeout", "b", "y", Some("db-timeouts")));
        assert_ne!(c1, fingerprint("IoError", "a", "x", Some("db-timeouts")));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn titles_are_cut_on_character_boundaries() {
        let long = "é".repeat(MAX_TITLE + 10);
        let t = title(&long);
        assert_eq!(t.chars().count(), MAX_TITLE + 1);
        assert_eq!(title("short"), "short");
    }
}
