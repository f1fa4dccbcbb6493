//! Integration tests of the errors domain.
