//! Sentry compatibility: a Sentry SDK configured with the DSN
//! `http://<ingest token>@<host>:<port>/<project id>` reports here. It posts envelopes to
//! `/api/<project>/envelope/` (current SDKs) or single events to `/api/<project>/store/`
//! (legacy); both become ordinary [`NewErrorReport`]s, grouped like any other report:
//! error type = the exception's type, message = its value, source = the culprit (the
//! innermost in-app frame, `module in function`), node = the event's `server_name`.
//!
//! Only `event` items carry errors; other items (sessions, transactions, client reports,
//! attachments) are accepted and dropped, as a Sentry server with those features off would.

use super::{ErrorLevel, NewErrorReport, MAX_STACK};
use serde_json::{Map, Value};

#[derive(Debug, PartialEq)]
pub struct BadEnvelope(pub String);

/// The key from `X-Sentry-Auth: Sentry sentry_key=<key>, ...` or the `sentry_key` query
/// parameter (browsers' SDKs send it there).
pub fn auth_key(header: Option<&str>, query: Option<&str>) -> Option<String> {
    if let Some(h) = header {
        let rest = h.trim().strip_prefix("Sentry").unwrap_or(h).trim();
        for part in rest.split(',') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k.trim() == "sentry_key" && !v.trim().is_empty() {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, v)| k == "sentry_key" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// The event payloads of an envelope, in order.
pub fn envelope_events(body: &[u8]) -> Result<Vec<Value>, BadEnvelope> {
    let bad = |m: &str| BadEnvelope(m.to_string());
    let mut rest = body;
    let header = next_line(&mut rest);
    serde_json::from_slice::<Map<String, Value>>(header)
        .map_err(|_| bad("the envelope header is not a JSON object"))?;
    let mut events = Vec::new();
    loop {
        // Items are separated by newlines; tolerate blank lines and a missing final newline.
        while let Some(r) = rest.strip_prefix(b"\n") {
            rest = r;
        }
        if rest.is_empty() {
            break;
        }
        let item_header = next_line(&mut rest);
        let h: Map<String, Value> = serde_json::from_slice(item_header)
            .map_err(|_| bad("an envelope item header is not a JSON object"))?;
        let payload = match h.get("length") {
            Some(len) => {
                let len = len
                    .as_u64()
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or_else(|| bad("an envelope item length is not a number"))?;
                if len > rest.len() {
                    return Err(bad("an envelope item is shorter than its length"));
                }
                let (p, r) = rest.split_at(len);
                rest = r;
                p
            }
            None => next_line(&mut rest),
        };
        if h.get("type").and_then(Value::as_str) == Some("event") {
            let v: Value = serde_json::from_slice(payload)
                .map_err(|_| bad("an event item is not valid JSON"))?;
            events.push(v);
        }
    }
    Ok(events)
}

fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    match rest.iter().position(|b| *b == b'\n') {
        Some(i) => {
            let line = &rest[..i];
            *rest = &rest[i + 1..];
            line
        }
        None => std::mem::take(rest),
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The primary exception: Sentry lists chained exceptions oldest first, the raised one last.
fn primary_exception(ev: &Value) -> Option<&Value> {
    let ex = ev.get("exception")?;
    let values = ex.get("values").unwrap_or(ex).as_array()?;
    values.last()
}

fn frames(exc: &Value) -> Vec<&Value> {
    exc.get("stacktrace")
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
        .map(|f| f.iter().collect())
        .unwrap_or_default()
}

/// Sentry's culprit: the innermost in-app frame (else the innermost frame).
fn culprit(frames: &[&Value]) -> Option<String> {
    let frame = frames
        .iter()
        .rev()
        .find(|f| f.get("in_app").and_then(Value::as_bool) == Some(true))
        .or_else(|| frames.last())?;
    let place = text(frame, "module").or_else(|| text(frame, "filename"))?;
    Some(match text(frame, "function") {
        Some(func) => format!("{place} in {func}"),
        None => place.to_string(),
    })
}

/// A Python-style traceback of the frames (oldest first), ending with `type: value`.
fn render_stack(frames: &[&Value], error_type: &str, value: &str) -> Option<String> {
    if frames.is_empty() {
        return None;
    }
    let mut s = String::from("Traceback (most recent call last):\n");
    for f in frames {
        let file = text(f, "filename")
            .or_else(|| text(f, "abs_path"))
            .or_else(|| text(f, "module"))
            .unwrap_or("?");
        let line = f.get("lineno").and_then(Value::as_i64).unwrap_or(0);
        let func = text(f, "function").unwrap_or("?");
        s.push_str(&format!("  File \"{file}\", line {line}, in {func}\n"));
        if let Some(code) = text(f, "context_line") {
            s.push_str(&format!("    {code}\n"));
        }
        if s.len() > MAX_STACK {
            break;
        }
    }
    s.push_str(&format!("{error_type}: {value}"));
    Some(s)
}

/// An identifier as Sentry sent it, made acceptable: control characters become spaces and it
/// is cut to the identifier limit (Sentry itself is lenient here, so a report is not lost).
fn ident(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(super::MAX_IDENT)
        .collect()
}

/// Turns a Sentry event into a report. `project` names the DSN's project, the fallback source.
pub fn report_from_event(ev: &Value, project: i64) -> NewErrorReport {
    let exc = primary_exception(ev);
    let (error_type, message, stack, culprit_frame) = match exc {
        Some(x) => {
            let t = text(x, "type").unwrap_or("Error").to_string();
            let v = text(x, "value").unwrap_or("").to_string();
            let fr = frames(x);
            let stack = render_stack(&fr, &t, &v);
            (t, v, stack, culprit(&fr))
        }
        None => {
            let logentry = ev.get("logentry");
            let msg = logentry
                .and_then(|l| text(l, "formatted").or_else(|| text(l, "message")))
                .or_else(|| text(ev, "message"))
                .or_else(|| ev.get("message").and_then(|m| text(m, "formatted")))
                .unwrap_or("")
                .to_string();
            let t = text(ev, "logger")
                .map(|l| format!("log:{l}"))
                .unwrap_or_else(|| "message".to_string());
            (t, msg, None, None)
        }
    };
    let source = text(ev, "culprit")
        .map(str::to_string)
        .or(culprit_frame)
        .or_else(|| text(ev, "transaction").map(str::to_string))
        .unwrap_or_else(|| format!("sentry project {project}"));
    // A custom fingerprint replaces the default grouping unless it extends it.
    let fingerprint = ev
        .get("fingerprint")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
        })
        .filter(|parts| !parts.is_empty() && !parts.iter().any(|p| p == "{{ default }}"))
        .map(|parts| ident(&parts.join("|")));
    let mut context = Map::new();
    context.insert("sentry_project".into(), Value::from(project));
    for key in [
        "event_id",
        "platform",
        "release",
        "environment",
        "logger",
        "transaction",
    ] {
        if let Some(v) = text(ev, key) {
            context.insert(key.into(), Value::from(v));
        }
    }
    if let Some(tags) = ev.get("tags").filter(|t| !t.is_null()) {
        context.insert("tags".into(), tags.clone());
    }
    if let Some(sdk) = ev.get("sdk").and_then(|s| text(s, "name")) {
        context.insert("sdk".into(), Value::from(sdk));
    }
    let level = text(ev, "level").map(ErrorLevel::lenient);
    NewErrorReport {
        node_id: ident(text(ev, "server_name").unwrap_or("unknown")),
        error_type: ident(&error_type),
        message,
        source: ident(&source),
        stack_trace: stack,
        level,
        context: Some(context),
        fingerprint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_come_from_the_header_or_the_query() {
        let h = "Sentry sentry_key=abc_DEF-1, sentry_version=7, sentry_client=sentry.python/2.75.0";
        assert_eq!(auth_key(Some(h), None).as_deref(), Some("abc_DEF-1"));
        assert_eq!(
            auth_key(None, Some("sentry_version=7&sentry_key=xyz")).as_deref(),
            Some("xyz")
        );
        assert_eq!(auth_key(Some("Sentry sentry_version=7"), None), None);
    }

    #[test]
    fn envelopes_yield_their_events_only() {
        let ev = br#"{"event_id":"a","level":"error"}"#;
        let mut body = Vec::new();
        body.extend_from_slice(b"{\"event_id\":\"a\",\"sent_at\":\"2026-01-01T00:00:00Z\"}\n");
        body.extend_from_slice(
            format!("{{\"type\":\"event\",\"length\":{}}}\n", ev.len()).as_bytes(),
        );
        body.extend_from_slice(ev);
        body.extend_from_slice(b"\n{\"type\":\"session\"}\n{\"sid\":\"x\"}\n");
        body.extend_from_slice(b"{\"type\":\"event\"}\n{\"level\":\"warning\"}");
        let events = envelope_events(&body).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1]["level"], "warning");
        assert!(envelope_events(b"not json\n").is_err());
        assert!(envelope_events(b"{}\n{\"type\":\"event\",\"length\":99}\n{}").is_err());
    }

    #[test]
    fn exceptions_map_to_type_value_and_culprit() {
        let ev = json!({
            "server_name": "web-1", "level": "fatal", "platform": "python",
            "exception": {"values": [
                {"type": "KeyError", "value": "'a'"},
                {"type": "ValueError", "value": "bad user 42", "stacktrace": {"frames": [
                    {"module": "app.main", "function": "run", "filename": "app/main.py", "lineno": 3, "in_app": true},
                    {"module": "app.users", "function": "load", "filename": "app/users.py", "lineno": 9, "in_app": true, "context_line": "raise ValueError(x)"},
                    {"module": "lib.x", "function": "deep", "filename": "lib/x.py", "lineno": 1, "in_app": false}
                ]}}
            ]}
        });
        let r = report_from_event(&ev, 7);
        assert_eq!(r.error_type, "ValueError");
        assert_eq!(r.message, "bad user 42");
        assert_eq!(r.source, "app.users in load");
        assert_eq!(r.node_id, "web-1");
        assert_eq!(r.level, Some(ErrorLevel::Fatal));
        let st = r.stack_trace.unwrap();
        assert!(
            st.contains("File \"app/users.py\", line 9, in load"),
            "{st}"
        );
        assert!(st.ends_with("ValueError: bad user 42"));
        assert_eq!(r.fingerprint, None);
        let msg = report_from_event(&json!({"message": "disk full", "logger": "ops"}), 7);
        assert_eq!(
            (msg.error_type.as_str(), msg.message.as_str()),
            ("log:ops", "disk full")
        );
        assert_eq!(msg.source, "sentry project 7");
        let odd = report_from_event(&json!({"message": "x", "server_name": "a\u{7}b"}), 1);
        assert_eq!(odd.node_id, "a b");
        let custom = report_from_event(
            &json!({"message": "x", "fingerprint": ["db", "timeout"]}),
            1,
        );
        assert_eq!(custom.fingerprint.as_deref(), Some("db|timeout"));
    }
}
