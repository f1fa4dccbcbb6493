//! Integration tests of the nodes domain.
