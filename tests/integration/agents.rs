//! Integration tests of the agents domain.
