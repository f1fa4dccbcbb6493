//! Framing: a provider's body, as it arrives in chunks, cut into Server-Sent Events or (Ollama)
//! NDJSON lines.
//!
//! The framer is incremental: each byte is looked at once. A chunk is scanned from where the
//! last one stopped, complete lines are folded into the pending event as they end, and only the
//! unfinished last line is kept, so a 1 MB event arriving in 16-byte chunks costs linear time,
//! not a rescan of the buffer per chunk. SSE lines end in LF, CRLF or a lone CR (a CRLF split
//! across two chunks counts once); a UTF-8 byte order mark at the start of the body is dropped.
//! Lines are decoded as UTF-8 only once complete, so a character split across chunks survives.
//!
//! We do not use the `eventsource-stream` crate: its parser rescans the unfinished line from its
//! start on every chunk (the same O(n²) this replaces), it is a push `Stream` adapter where the
//! gateway pulls chunks itself under an idle timeout, and it has no NDJSON mode.

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `event:` field, trimmed; `None` when the event had none.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n` (one leading space of each stripped).
    pub data: String,
}

/// A line buffer up to this size is reused for the next line; a larger one is freed.
const LINE_CAPACITY_KEPT: usize = 64 * 1024;

/// The UTF-8 encoding of U+FEFF.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits a byte stream into SSE events (blank-line separated; `data:` lines joined) or, in
/// NDJSON mode, into lines. An event is emitted when it has an `event:` or a `data:` field
/// (comments, `id:` and `retry:` are read and dropped: the gateway has no use for them).
#[derive(Debug, Default)]
pub struct Framer {
    ndjson: bool,
    /// The current line's bytes so far (no terminator).
    line: Vec<u8>,
    /// The last line ended in CR: an LF opening the next chunk belongs to it.
    after_cr: bool,
    /// The first line was seen (a BOM is only looked for in it).
    past_first_line: bool,
    /// The pending event's fields.
    event: Option<String>,
    data: Option<String>,
}

impl Framer {
    pub fn sse() -> Self {
        Framer::default()
    }

    pub fn ndjson() -> Self {
        Framer {
            ndjson: true,
            ..Framer::default()
        }
    }

    /// Feeds bytes; returns every frame they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(i) = rest.iter().position(|&b| self.ends_line(b)) {
            self.line.extend_from_slice(&rest[..i]);
            let mut next = i + 1;
            if rest[i] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The LF of a CRLF may open the next chunk.
                    None => self.after_cr = true,
                }
            }
            rest = &rest[next..];
            self.end_line(&mut out);
        }
        self.line.extend_from_slice(rest);
        out
    }

    /// What is left at the end of the body: an unterminated last line, and an event missing
    /// its closing blank line, are still delivered.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        if !self.ndjson {
            self.dispatch(&mut out);
        }
        out
    }

    /// NDJSON splits on LF alone (a CR there is JSON whitespace, trimmed with the line).
    fn ends_line(&self, b: u8) -> bool {
        b == b'\n' || (b == b'\r' && !self.ndjson)
    }

    /// The current line is complete: fold it into the pending event (or, for NDJSON, emit it).
    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if !self.past_first_line {
            self.past_first_line = true;
            if line.starts_with(BOM) {
                line.drain(..BOM.len());
            }
        }
        let text = String::from_utf8_lossy(&line);
        if self.ndjson {
            let text = text.trim();
            if !text.is_empty() {
                out.push(SseEvent {
                    event: None,
                    data: text.to_owned(),
                });
            }
        } else if text.is_empty() {
            self.dispatch(out);
        } else if !text.starts_with(':') {
            let (field, value) = text.split_once(':').unwrap_or((&text, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event = Some(value.trim().to_owned()),
                "data" => match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        // Keep the allocation for the next line, unless a large event left it large (it would
        // be held for the rest of the stream).
        if line.capacity() <= LINE_CAPACITY_KEPT {
            line.clear();
            self.line = line;
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let (event, data) = (self.event.take(), self.data.take());
        if event.is_some() || data.is_some() {
            out.push(SseEvent {
                event,
                data: data.unwrap_or_default(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(mut f: Framer, chunks: impl IntoIterator<Item = Vec<u8>>) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(f.push(&c));
        }
        out.extend(f.finish());
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    const TWO: &str = "event: a\ndata: {\"x\":1}\n\n: comment\nid: 7\ndata: line1\ndata:line2\n\n";

    #[test]
    fn one_byte_chunks_give_the_same_events_as_one_chunk() {
        let whole = frame(Framer::sse(), [TWO.as_bytes().to_vec()]);
        assert_eq!(
            whole,
            vec![ev(Some("a"), "{\"x\":1}"), ev(None, "line1\nline2")]
        );
        let bytes = frame(Framer::sse(), TWO.bytes().map(|b| vec![b]));
        assert_eq!(bytes, whole);
    }

    #[test]
    fn cr_only_and_crlf_line_ends_frame_like_lf() {
        let lf = frame(Framer::sse(), [TWO.as_bytes().to_vec()]);
        let cr = TWO.replace('\n', "\r");
        assert_eq!(frame(Framer::sse(), [cr.as_bytes().to_vec()]), lf);
        let crlf = TWO.replace('\n', "\r\n");
        assert_eq!(frame(Framer::sse(), [crlf.as_bytes().to_vec()]), lf);
        // A CRLF split across chunks is one line end, not a line end and a blank line.
        let split = frame(Framer::sse(), crlf.as_bytes().chunks(1).map(<[u8]>::to_vec));
        assert_eq!(split, lf);
        assert_eq!(
            frame(
                Framer::sse(),
                [b"data: a\r".to_vec(), b"\ndata: b\r\n\r\n".to_vec()]
            ),
            vec![ev(None, "a\nb")]
        );
        // An empty chunk between the CR and the LF changes nothing.
        assert_eq!(
            frame(
                Framer::sse(),
                [
                    b"data: a\r".to_vec(),
                    Vec::new(),
                    b"\ndata: b\r\n\r\n".to_vec()
                ]
            ),
            vec![ev(None, "a\nb")]
        );
    }

    #[test]
    fn a_leading_bom_is_dropped_even_split_across_chunks() {
        let body = [BOM, b"event: e\ndata: 1\n\n"].concat();
        assert_eq!(
            frame(Framer::sse(), [body.clone()]),
            vec![ev(Some("e"), "1")]
        );
        assert_eq!(
            frame(Framer::sse(), body.chunks(1).map(<[u8]>::to_vec)),
            vec![ev(Some("e"), "1")]
        );
        let nd = [BOM, b"{\"a\":1}\n"].concat();
        assert_eq!(
            frame(Framer::ndjson(), nd.chunks(2).map(<[u8]>::to_vec)),
            vec![ev(None, "{\"a\":1}")]
        );
        // Only at the start: a BOM later in the body is data.
        let later = [b"data: x\n\ndata: ".as_slice(), BOM, b"y\n\n"].concat();
        assert_eq!(
            frame(Framer::sse(), [later])[1].data,
            "\u{feff}y".to_owned()
        );
    }

    #[test]
    fn a_1_mb_event_in_16_byte_chunks_arrives_whole() {
        let payload: String = (0..1 << 20)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let body = format!("event: big\ndata: {payload}\n\ndata: [DONE]\n\n");
        let events = frame(
            Framer::sse(),
            body.as_bytes().chunks(16).map(<[u8]>::to_vec),
        );
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event.as_deref(), Some("big"));
        assert_eq!(events[0].data.len(), 1 << 20);
        assert!(events[0].data == payload);
        assert_eq!(events[1], ev(None, "[DONE]"));
    }

    #[test]
    fn a_multibyte_character_split_across_chunks_survives() {
        let body = "data: héllo ✓\n\n".as_bytes();
        assert_eq!(
            frame(Framer::sse(), body.chunks(1).map(<[u8]>::to_vec)),
            vec![ev(None, "héllo ✓")]
        );
    }

    #[test]
    fn the_end_of_the_body_delivers_what_is_pending() {
        assert_eq!(
            frame(Framer::sse(), [b"data: [DONE]".to_vec()]),
            vec![ev(None, "[DONE]")]
        );
        assert_eq!(
            frame(Framer::sse(), [b"event: e\n".to_vec()]),
            vec![ev(Some("e"), "")]
        );
        assert_eq!(frame(Framer::sse(), [b": ping\n\n".to_vec()]), vec![]);
        assert_eq!(
            frame(Framer::ndjson(), [b"{\"a\":1}\r\n\n{\"b\":2}".to_vec()]),
            vec![ev(None, "{\"a\":1}"), ev(None, "{\"b\":2}")]
        );
    }
}
