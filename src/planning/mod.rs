//! Planning (issue 16, in progress): the work a project's repository writes down about itself.
//! [`scan`] finds the items (TODO-style comments, unchecked boxes in planning Markdown) and
//! decides what a rescan changed; milestone plans, suggestions and the review queue build on it.

pub mod scan;
