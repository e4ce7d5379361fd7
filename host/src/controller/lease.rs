//! Leader election on a `coordination.k8s.io/v1` Lease, with fencing: every successful
//! acquisition or renewal publishes a [`Leadership`] valid until the start of that
//! request plus [`state::write_window`] (monotonic clock), so a replica that stops
//! renewing (paused, partitioned, starved) stops writing before another one can take over.
//! Every Lease write carries a resourceVersion precondition.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use super::LeaderOptions;
use super::state::{self, Leadership, LeaseObserver, LeaseStep};

/// Field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "dynamic-toolset";

pub fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    }
}

/// One request's worth of time at most: a hung request must not keep a term alive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes a change of leadership (gained, lost, new term) to the loop; a renewal of
/// the same term only moves `valid_until`, without waking it.
fn publish(tx: &watch::Sender<Option<Leadership>>, next: Option<Leadership>) {
    tx.send_if_modified(|cur| {
        let changed = match (&*cur, &next) {
            (Some(a), Some(b)) => a.term != b.term,
            (None, None) => false,
            _ => true,
        };
        *cur = next;
        changed
    });
}

/// Holds (or waits for) the Lease until `shutdown`, then releases it if held.
pub async fn lead(
    client: kube::Client,
    opts: LeaderOptions,
    tx: watch::Sender<Option<Leadership>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &opts.lease_namespace);
    let window = state::write_window(opts.lease_duration, opts.renew_deadline);
    let mut observer = LeaseObserver::default();
    loop {
        let started = Instant::now();
        let attempt = tokio::time::timeout(REQUEST_TIMEOUT, step(&api, &opts, &mut observer));
        let next = tokio::select! {
            _ = shutdown.changed() => break,
            r = attempt => r,
        };
        match next {
            Ok(Ok(Some(term))) => publish(
                &tx,
                Some(Leadership {
                    identity: opts.identity.clone(),
                    term: Some(term),
                    valid_until: Some(started + window),
                }),
            ),
            Ok(Ok(None)) => publish(&tx, None),
            // Not renewed: the last term stays published and expires by itself.
            Ok(Err(e)) => tracing::warn!("leader lease: {e}"),
            Err(_) => tracing::warn!("leader lease: request timed out"),
        }
        // A term not renewed in time is withdrawn (writes were fenced already).
        let expired = tx
            .borrow()
            .as_ref()
            .is_some_and(|l| l.valid_until.is_some_and(|u| Instant::now() >= u));
        if expired {
            tracing::warn!("leader lease not renewed in time: stepping down");
            publish(&tx, None);
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tokio::time::sleep(opts.retry_period) => {}
        }
    }
    let held = tx.borrow().is_some();
    publish(&tx, None);
    if held {
        match tokio::time::timeout(REQUEST_TIMEOUT, release(&api, &opts)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot release the lease: {e}"),
            Err(_) => tracing::warn!("cannot release the lease: timed out"),
        }
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// One read-decide-write round. Ok(Some(term)): we hold the Lease, acquired at `term`.
async fn step(
    api: &Api<Lease>,
    opts: &LeaderOptions,
    observer: &mut LeaseObserver,
) -> Result<Option<String>, kube::Error> {
    let secs = i32::try_from(opts.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&opts.lease_name).await? else {
        let now = now_micro();
        let mut lease = Lease::default();
        lease.metadata.name = Some(opts.lease_name.clone());
        lease.metadata.namespace = Some(opts.lease_namespace.clone());
        lease.spec = Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(opts.identity.clone()),
            acquire_time: Some(now.clone()),
            renew_time: Some(now.clone()),
            lease_duration_seconds: Some(secs),
            lease_transitions: Some(0),
            ..Default::default()
        });
        return match api.create(&post_params(), &lease).await {
            Ok(_) => Ok(Some(now.0.to_string())),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let their_duration = Duration::from_secs(
        spec.lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(opts.lease_duration.as_secs()),
    );
    let renew = spec.renew_time.as_ref().map(|t| t.0.to_string());
    let decision = observer.step(
        &opts.identity,
        spec.holder_identity.as_deref(),
        renew.as_deref(),
        their_duration,
        Instant::now(),
    );
    let now = now_micro();
    match decision {
        LeaseStep::Follow => return Ok(None),
        LeaseStep::Renew => {
            spec.renew_time = Some(now);
            spec.lease_duration_seconds = Some(secs);
        }
        LeaseStep::Acquire => {
            spec.holder_identity = Some(opts.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            spec.lease_duration_seconds = Some(secs);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
    }
    let term = spec.acquire_time.as_ref().map(|t| t.0.to_string());
    // metadata.resourceVersion is kept: a concurrent change makes this a 409.
    match api.replace(&opts.lease_name, &post_params(), &lease).await {
        Ok(_) => Ok(Some(term.unwrap_or_default())),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Gives the Lease up (if still ours) so another replica takes over at once.
async fn release(api: &Api<Lease>, opts: &LeaderOptions) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&opts.lease_name).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(opts.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    spec.acquire_time = None;
    api.replace(&opts.lease_name, &post_params(), &lease)
        .await
        .map(|_| ())
}
