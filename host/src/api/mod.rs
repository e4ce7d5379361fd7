//! The REST API beside the controller (issue 6). So far: [`auth`], the TokenReview +
//! SubjectAccessReview gate every API route sits behind.

pub mod auth;
