//! placeholder: filled in a later commit
