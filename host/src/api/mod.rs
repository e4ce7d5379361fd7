//! The REST API beside the controller (issue 6), in rooms:
//! - [`auth`]: the TokenReview + SubjectAccessReview gate every API route sits behind;
//! - [`model`]: the answers (JSON field names, OpenAPI schema);
//! - [`query`]: filters and paging of Services (pure);
//! - [`table`]: kubectl-style tables for `dynamic-toolset get` (pure);
//! - [`page`]: the status page at `/` (pure HTML rendering);
//! - [`server`]: routes and handlers over the [`model::View`] the controller publishes, and
//!   `/openapi.json` generated from them.
//!
//! - [`client`]: `dynamic-toolset get`, the API's command-line reader.
//!
//! Not yet here: the controller publishing its View and serving discover requests.

pub mod auth;
pub mod build;
pub mod client;
pub mod model;
pub mod page;
pub mod query;
pub mod server;
pub mod table;
