//! The one validation failure every domain returns: which field is wrong and why. Domains
//! check input in their `mod.rs` rules before any SQL runs; the HTTP layer turns an
//! [`Invalid`] into a 422 naming the field (see `http::error`).

/// A validation failure: the field and what is wrong with it. Never carries the value itself
/// (it may be a secret).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}
