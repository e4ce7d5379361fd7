//! The rank scheme shared by all bundled detectors.
//!
//! Within one (toolset, instance) group the host keeps the fragment with the highest
//! rank. Bundled detectors use these bands so that their choices compose:
//!
//! | rank | Service role |
//! |---|---|
//! | [`GATEWAY`] 300 | the front door: gateway, query-frontend, vmauth-like proxies |
//! | [`FRONTEND`] 250 | a caching/splitting query frontend behind a gateway |
//! | [`PRIMARY`] 200 | the backend's own query Service (server, single binary, query, read); also [`CUSTOM`] |
//! | [`SECONDARY`] 100 | a usable but less preferred path (querier, internal HTTP Service) |
//! | [`GENERIC`] 80 | matched on weaker signals (a bare `app.kubernetes.io/name`, a name) |
//! | [`HEADLESS`] 50 | headless twin / operator-governing Service (`*-operated`, `*-headless`) |
//!
//! A detector lowers a Service by [`HEADLESS`] rank when it is headless, so a ClusterIP
//! Service always wins over its headless twin.

/// Annotated Service (custom detector): no advantage over what a label-based detector
/// found (annotations can be written by whoever owns the Service, not only an admin).
/// The host clamps every rank to its top band (`gate::MAX_RANK`, 300) anyway.
pub const CUSTOM: u32 = PRIMARY;
/// Gateway / front door of an installation.
pub const GATEWAY: u32 = 300;
/// Query frontend (behind a gateway, in front of queriers).
pub const FRONTEND: u32 = 250;
/// The backend's main query Service.
pub const PRIMARY: u32 = 200;
/// A usable but less preferred Service.
pub const SECONDARY: u32 = 100;
/// Matched on weak signals only.
pub const GENERIC: u32 = 80;
/// Headless twins and operator-governing Services.
pub const HEADLESS: u32 = 50;

/// `rank`, or [`HEADLESS`] when the Service is headless (whatever its role).
pub fn unless_headless(svc: &crate::Service, rank: u32) -> u32 {
    if svc.headless {
        HEADLESS.min(rank)
    } else {
        rank
    }
}
