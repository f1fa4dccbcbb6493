//! House extractors: `Json`, `Path`, `Query` and `Form` that answer malformed input with our
//! JSON error body naming the problem (and the field, when there is one). The raw axum
//! extractors are banned in clippy.toml so a handler cannot bypass these.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Turns a serde error plus its path into a 422 naming the field.
fn data_error(path: &str, msg: &str) -> ApiError {
    // serde reports a missing field at the parent's path with the name in backticks.
    let field = if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        if path.is_empty() || path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    } else if let Some(rest) = msg.strip_prefix("unknown field `") {
        rest.split('`').next().unwrap_or("").to_string()
    } else {
        path.to_string()
    };
    let field = if field.is_empty() || field == "." {
        "body".to_string()
    } else {
        field
    };
    // Strip serde's " at line 1 column 9" suffix: it means nothing to an API user.
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    ApiError::invalid(field.clone(), format!("{field}: {msg}"))
}

/// Parses JSON bytes into `T`, mapping syntax errors to 400 and shape errors to 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut *de) {
        // One JSON value and nothing after it but whitespace: `{"a":1}}` is not a body we
        // half-read.
        Ok(v) => match de.end() {
            Ok(()) => Ok(v),
            Err(e) => Err(ApiError::bad_json(format!("malformed JSON: {e}"))),
        },
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    Err(ApiError::bad_json(format!("malformed JSON: {inner}")))
                }
                Category::Data => Err(data_error(&path, &inner.to_string())),
            }
        }
    }
}

/// Parses `application/x-www-form-urlencoded` (or a query string) into `T`.
pub fn parse_urlencoded<T: DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(raw));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|err| {
        let path = err.path().to_string();
        data_error(&path, &err.into_inner().to_string())
    })
}

fn form_urlencoded_parse(raw: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(raw.as_bytes())
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|rej: BytesRejection| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body is larger than the configured limit (ARCHITECT_MAX_BODY_BYTES)",
                )
            } else {
                ApiError::bad_request(format!("cannot read request body: {rej}"))
            }
        })
}

/// JSON body. Requires a JSON content type (415 otherwise).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let ct = ct.to_ascii_lowercase();
                ct.starts_with("application/json") || ct.contains("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected 'Content-Type: application/json'",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// `Option<Json<T>>`: a request without a body (no content type, nothing sent) is `None`, so
/// a call whose every field is optional may be sent bare; a body is read as [`Json`] reads it.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let empty = req.headers().get(CONTENT_TYPE).is_none()
            && req
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v.trim() == "0");
        if empty {
            return Ok(None);
        }
        <Json<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        #[allow(clippy::disallowed_types)]
        axum::Json(self.0).into_response()
    }
}

/// URL-encoded form body (dashboard forms without JavaScript).
#[derive(Debug, Clone, Copy, Default)]
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        let raw = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::bad_request("form body is not UTF-8"))?;
        parse_urlencoded(raw).map(Form)
    }
}

/// Query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // An empty value (`?status=`, what an HTML filter form sends for "any") means absent.
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let raw = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        parse_urlencoded(&raw).map(Query).map_err(|mut e| {
            e.message = format!("query parameter {}", e.message);
            e
        })
    }
}

/// Path parameters. A malformed id (`/api/projects/abc`) is a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        #[allow(clippy::disallowed_types)]
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(rej) => Err(ApiError::bad_request(format!(
                "invalid path: {}",
                rej.body_text()
            ))),
        }
    }
}

/// `?limit=&offset=` for every list: limit defaults to 100 and is capped at 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub limit: i64,
    pub offset: i64,
}

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

#[derive(Deserialize)]
struct RawPagination {
    limit: Option<i64>,
    offset: Option<i64>,
}

impl<S: Send + Sync> FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        // Only limit/offset matter here; other parameters belong to the handler's filter.
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
            .filter(|(k, _)| k == "limit" || k == "offset")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let p: RawPagination = parse_urlencoded(&encoded)?;
        let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = p.offset.unwrap_or(0);
        if offset < 0 {
            return Err(ApiError::invalid("offset", "offset must be 0 or more"));
        }
        Ok(Pagination { limit, offset })
    }
}

/// For PATCH-like updates: distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`). Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct P {
        name: String,
        n: Option<i64>,
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<P>(br#"{"n": 1}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.field.as_deref()), (422, Some("name")));
        let e = parse_json::<P>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = parse_json::<P>(br#"{"name": "x", "bogus": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("bogus"));
        let e = parse_json::<P>(br#"{"name": "#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"));
        // One value, then only whitespace: trailing characters are refused, not ignored.
        let e = parse_json::<P>(br#"{"name": "x"}}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"));
        assert!(e.message.contains("trailing characters"), "{}", e.message);
        assert!(parse_json::<P>(b"{\"name\": \"x\"} \n").is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.5, 10.0.0.2".parse().unwrap(),
        );
        let trusted = [ip("127.0.0.1"), ip("10.0.0.2")];
        // From an untrusted peer the header is ignored.
        assert_eq!(
            ClientAddr::resolve(Some(ip("192.0.2.7")), &h, &trusted),
            Some(ip("192.0.2.7"))
        );
        // From a trusted proxy: the nearest untrusted hop (a client cannot prepend its way out).
        assert_eq!(
            ClientAddr::resolve(Some(ip("127.0.0.1")), &h, &trusted),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(
            ClientAddr::resolve(Some(ip("127.0.0.1")), &Default::default(), &trusted),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn limits_count_ipv6_addresses_by_their_64_network() {
        assert_eq!(ClientAddr::limit_key("192.0.2.7"), "192.0.2.7");
        assert_eq!(ClientAddr::limit_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(
            ClientAddr::limit_key("2001:db8:1:2:aaaa::1"),
            ClientAddr::limit_key("2001:db8:1:2:bbbb::9")
        );
        assert_eq!(
            ClientAddr::limit_key("2001:db8:1:2::1"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            ClientAddr::limit_key("2001:db8:1:2::1"),
            ClientAddr::limit_key("2001:db8:1:3::1")
        );
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(crate::db::like_pattern("a%_b"), "%a\\%\\_b%");
    }
}

/// The client's address: the TCP peer, or, when the peer is one of the configured trusted
/// proxies, the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
/// Forwarding headers from anyone else are ignored.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub Option<String>);

/// The reverse proxies whose `X-Forwarded-For` is believed (ARCHITECT_TRUSTED_PROXIES).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<std::net::IpAddr>>);

impl ClientAddr {
    /// What rate limits and lockouts count an address under: an IPv4 address itself, an IPv6
    /// address's /64 network (one host is usually given a whole /64, so counting single IPv6
    /// addresses would let it step past any limit). IPv4-mapped IPv6 counts as the IPv4.
    pub fn limit_key(addr: &str) -> String {
        match addr.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            _ => addr.to_string(),
        }
    }

    /// Applies the trust rule to a peer address and the request's headers.
    pub fn resolve(
        peer: Option<std::net::IpAddr>,
        headers: &axum::http::HeaderMap,
        trusted: &[std::net::IpAddr],
    ) -> Option<std::net::IpAddr> {
        let peer = peer?;
        if !trusted.contains(&peer) {
            return Some(peer);
        }
        // Walk the chain from the nearest hop outwards; the first untrusted hop is the client.
        let hops: Vec<std::net::IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        Some(
            hops.into_iter()
                .rev()
                .find(|h| !trusted.contains(h))
                .unwrap_or(peer),
        )
    }
}

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    TrustedProxies: axum::extract::FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let trusted = <TrustedProxies as axum::extract::FromRef<S>>::from_ref(state);
        Ok(ClientAddr(
            Self::resolve(peer, &parts.headers, &trusted.0).map(|ip| ip.to_string()),
        ))
    }
}
