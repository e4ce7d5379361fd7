//! The REST API beside the controller (issue 6), in rooms:
//! - [`auth`]: the TokenReview + SubjectAccessReview gate every API route sits behind;
//! - [`model`]: the answers (JSON field names, OpenAPI schema);
//! - [`query`]: filters and paging of Services (pure);
//! - [`table`]: kubectl-style tables for `dynamic-toolset get` (pure);
//! - [`page`]: the status page at `/` (pure HTML rendering).
//!
//! Not yet here: the handlers and router serving a [`model::View`] the controller publishes,
//! `/openapi.json`, and the `get` command.

pub mod auth;
pub mod model;
pub mod page;
pub mod query;
pub mod table;
