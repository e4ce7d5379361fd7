//! Third-party detectors as a product: declarations ([`declare`]), and loading them
//! with their grants.

pub mod declare;
