//! How the dashboard shows values: times (`At`: relative text with the UTC instant in a
//! tooltip), statuses (`label`), money (`money`) and `<option selected>` (`selected`).

/// A stored time as the dashboard shows it everywhere: relative text ("3 min ago", "in 2 h")
/// in a `<time>` element whose `datetime` is the exact instant and whose tooltip is the
/// absolute UTC time. Askama writes it unescaped ([`askama::filters::HtmlSafe`]): the markup
/// is ours and every piece of text in it is escaped by `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The parsed instant, formatted: `2026-11-26T11:13:05Z`; `None` when the text was not a
    /// time (then `text` is shown as it was, escaped).
    iso: Option<String>,
    /// `2026-11-26 11:13:05 UTC`.
    absolute: String,
    /// "3 min ago", "in 2 h", "just now"; or the unparseable input.
    text: String,
}

impl At {
    /// The relative text alone ("5 min ago"), for places that cannot hold markup.
    pub fn relative(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.iso {
            Some(iso) => write!(
                f,
                r#"<time datetime="{}" title="{}">{}</time>"#,
                Escaped(iso),
                Escaped(&self.absolute),
                Escaped(&self.text)
            ),
            None => write!(f, "{}", Escaped(&self.text)),
        }
    }
}

impl askama::filters::HtmlSafe for At {}

/// Text with `& < > " '` escaped for HTML text and attribute values.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                c => std::fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// [`At`] for the stored time `t` as seen at `now`.
pub fn at(now: time::OffsetDateTime, t: &str) -> At {
    let Some(then) = crate::clock::parse(t) else {
        return At {
            iso: None,
            absolute: String::new(),
            text: t.to_string(),
        };
    };
    let then = then.to_offset(time::UtcOffset::UTC);
    let (date, clock) = (
        format!(
            "{:04}-{:02}-{:02}",
            then.year(),
            u8::from(then.month()),
            then.day()
        ),
        format!(
            "{:02}:{:02}:{:02}",
            then.hour(),
            then.minute(),
            then.second()
        ),
    );
    At {
        iso: Some(format!("{date}T{clock}Z")),
        absolute: format!("{date} {clock} UTC"),
        text: relative((then - now).whole_seconds()),
    }
}

/// "just now", "45 s ago", "3 min ago", "2 h ago", "4 d ago"; "in …" for the future.
pub(super) fn relative(delta_s: i64) -> String {
    let s = delta_s.unsigned_abs();
    let amount = match s {
        0..=4 => return "just now".to_string(),
        5..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    };
    if delta_s < 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// A status as people read it: `in_progress` → "In progress", `wont_fix` → "Won't fix".
pub fn label(status: impl std::fmt::Display) -> String {
    let raw = status.to_string();
    if raw == "wont_fix" {
        return "Won't fix".to_string();
    }
    let spaced = raw.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// US dollars for display: cents for amounts of a cent or more ("$12.35", "$0.50"), and two
/// significant digits below a cent ("$0.005", "$0.0012"), so a small budget never shows as
/// "$0.01" or "$0.00".
pub fn money(usd: impl std::borrow::Borrow<f64>) -> String {
    let usd = *usd.borrow();
    let sign = if usd < 0.0 { "-" } else { "" };
    let a = usd.abs();
    if a == 0.0 || a >= 0.01 || !a.is_finite() {
        return format!("{sign}${a:.2}");
    }
    // Decimals for two significant digits, e.g. 0.005 → 4 → "0.0050" → "0.005".
    let decimals = (1 - a.log10().floor() as i32).clamp(2, 12) as usize;
    let text = format!("{a:.decimals$}");
    let text = text.trim_end_matches('0');
    format!("{sign}${text}")
}

/// For `<option selected>` in templates: does the optional id `a` equal `b`? Takes values or
/// references, whichever the template has.
pub fn selected(a: impl std::borrow::Borrow<Option<i64>>, b: impl IdValue) -> bool {
    *a.borrow() == Some(b.value())
}

/// An `i64` behind any number of references (template loop variables are `&&i64`).
pub trait IdValue {
    fn value(&self) -> i64;
}
impl IdValue for i64 {
    fn value(&self) -> i64 {
        *self
    }
}
impl<T: IdValue + ?Sized> IdValue for &T {
    fn value(&self) -> i64 {
        (**self).value()
    }
}
